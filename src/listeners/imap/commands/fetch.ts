/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2; CONDSTORE MODSEQ and CHANGEDSINCE, RFC 7162
 * §3.1.4; QRESYNC VANISHED, §3.2.6). Responses are written message by message through a coalescing writer that waits
 * for the socket (backpressure): `1:* BODY[]` never builds one giant string.
 *
 * Invariants:
 * - A message's file is read at most once per command, and only when an attribute needs its
 *   bytes; FLAGS, UID, RFC822.SIZE, INTERNALDATE and MODSEQ come from the session's view.
 * - A file with bare LFs is served with CRLF line ends so that the octets match RFC822.SIZE.
 * - `\Seen` is set durably (one `setFlags` for the whole command) before any response, unless
 *   PEEK or EXAMINE; the FETCH responses then carry the new FLAGS.
 * - A message expunged meanwhile by another writer is left out of the responses.
 */
import type { MailboxMessage } from '../../../cache/mailboxes.js';
import type { Command } from '../command-reader.js';
import { type FetchAtt, parseFetch, sectionLabel } from '../fetch-args.js';
import { hostOffsetMinutes } from '../imap-date.js';
import { bodyStructure, envelope, type MimePart, parseMessage, partial, section } from '../mime/index.js';
import { vanishedEarlier } from '../qresync.js';
import { internalDate } from '../response.js';
import { flagsItem } from '../responses.js';
import { BadCommand, type HandlerResult, ok, parsed, type SessionContext } from '../types.js';
import { Coalescer } from '../writer.js';
import { storeOf } from './folders.js';
import { indexes, selectedOf } from './messages.js';

const BYTES_ATTS = new Set(['RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'BODY[]']);

/** Whether fetching `a` sets `\Seen` (RFC 3501 §6.4.5: BODY[...] without PEEK, RFC822, RFC822.TEXT). */
const setsSeen = (a: FetchAtt): boolean =>
  a.kind === 'RFC822' || a.kind === 'RFC822.TEXT' || (a.kind === 'BODY[]' && !a.section.peek);

/** Message bytes with CRLF line ends (bare LF → CRLF) when the file has bare LFs. */
function wireBytes(bytes: Buffer, size: number): Buffer {
  if (bytes.length === size) return bytes;
  return Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** `NAME {n}\r\n` + bytes, as pieces. */
function literalItem(name: string, bytes: Buffer): Array<string | Buffer> {
  return [`${name} {${bytes.length}}\r\n`, bytes];
}

export async function fetch(s: SessionContext, cmd: Command): Promise<HandlerResult> {
  const f = parsed(parseFetch(cmd.args));
  if (f.vanished) {
    // RFC 7162 §3.2.6: UID FETCH only, once QRESYNC is enabled.
    if (!cmd.uid) throw new BadCommand('VANISHED is a UID FETCH modifier');
    if (!s.qresync) throw new BadCommand('QRESYNC not enabled');
  }
  const box = selectedOf(s);
  const idx = indexes(box, cmd, f.set);
  const atts = f.atts.filter((a) => a.kind !== 'UID');
  if (atts.some((a) => a.kind === 'MODSEQ')) s.condstore = true;
  const wantUid = cmd.uid || f.atts.some((a) => a.kind === 'UID');
  const wantFlags = atts.some((a) => a.kind === 'FLAGS');
  const needsBytes = atts.some((a) => BYTES_ATTS.has(a.kind));
  const since = f.changedSince === undefined ? undefined : Number(f.changedSince);
  const st = storeOf(s);

  // \Seen first, durably, in one step for the whole command.
  const seenNow = new Set<number>();
  if (!box.readOnly && atts.some(setsSeen)) {
    const unseen = idx.map((i) => box.msgs[i] as MailboxMessage).filter((m) => !m.flags.includes('\\Seen'));
    if (unseen.length) {
      const r = await st.setFlags(
        box.name,
        unseen.map((m) => m.uid),
        { op: 'add', flags: ['\\Seen'] },
      );
      for (const m of r.changed) {
        box.applyOwn(m);
        seenNow.add(m.uid);
      }
    }
  }

  const out = new Coalescer(s);
  const folder = f.vanished ? st.folder(box.name) : undefined;
  if (folder && f.changedSince !== undefined) {
    const vanished = vanishedEarlier(box, f.set.resolve(box.uids.at(-1) ?? 0), f.changedSince, folder);
    if (vanished) out.add(vanished);
  }
  let vanished = 0;
  for (const i of idx) {
    const m = box.msgs[i];
    if (!m || (since !== undefined && (m.modseq || 1) <= since)) continue;
    let bytes: Buffer | undefined;
    if (needsBytes) {
      try {
        bytes = wireBytes(await st.read(box.name, m.uid), m.size);
      } catch {
        vanished++;
        continue;
      }
    }
    let root: MimePart | undefined;
    const mime = (): MimePart => {
      root ??= parseMessage(bytes as Buffer);
      return root;
    };
    const items: Array<string | Buffer> = [];
    const sep = (): void => {
      if (items.length) items.push(' ');
    };
    if (wantUid) items.push(`UID ${m.uid}`);
    if (!wantFlags && seenNow.has(m.uid)) {
      sep();
      items.push(flagsItem(m, box.isRecent(m.uid)));
    }
    for (const a of atts) {
      sep();
      const b = bytes as Buffer;
      switch (a.kind) {
        case 'FLAGS':
          items.push(flagsItem(m, box.isRecent(m.uid)));
          break;
        case 'MODSEQ':
          items.push(`MODSEQ (${m.modseq || 1})`);
          break;
        case 'RFC822.SIZE':
          items.push(`RFC822.SIZE ${m.size}`);
          break;
        case 'INTERNALDATE':
          items.push(`INTERNALDATE ${internalDate(m.internalDate, hostOffsetMinutes(m.internalDate))}`);
          break;
        case 'ENVELOPE':
          items.push('ENVELOPE ', envelope(b, mime()));
          break;
        case 'BODY':
        case 'BODYSTRUCTURE':
          items.push(`${a.kind} `, bodyStructure(b, mime(), a.kind === 'BODYSTRUCTURE'));
          break;
        case 'RFC822':
          items.push(...literalItem('RFC822', b));
          break;
        case 'RFC822.HEADER':
          items.push(...literalItem('RFC822.HEADER', section(b, mime(), { path: [], kind: 'HEADER' })));
          break;
        case 'RFC822.TEXT':
          items.push(...literalItem('RFC822.TEXT', section(b, mime(), { path: [], kind: 'TEXT' })));
          break;
        case 'BODY[]': {
          const sec = a.section;
          const whole = sec.part.length === 0 && sec.kind === '';
          const spec = sec.fields
            ? { path: sec.part, kind: sec.kind, fields: sec.fields }
            : { path: sec.part, kind: sec.kind };
          let data = whole ? b : section(b, mime(), spec);
          if (sec.partial) data = partial(data, sec.partial.start, sec.partial.length);
          items.push(...literalItem(sectionLabel(sec), data));
          break;
        }
        default:
          break;
      }
    }
    const pieces = needsBytes
      ? [`* ${i + 1} FETCH (`, ...items, ')\r\n']
      : [`* ${i + 1} FETCH (${items.join('')})\r\n`];
    for (const piece of pieces) {
      const wrote = out.add(piece);
      if (wrote) await wrote;
    }
  }
  await out.flush();
  if (vanished) return ok('FETCH completed; some messages were expunged meanwhile');
  return ok(`${cmd.uid ? 'UID ' : ''}FETCH completed`);
}
