/**
 * What makes an APPEND, COPY or MOVE replayed upstream safe to retry after a crash
 * (docs/imap-server.md, design of the replay): before sending it, the replay notes the target
 * folder's UIDVALIDITY and UIDNEXT and the content identity of every message it is about to add
 * (`cache/content-identity.ts`: Message-ID + size, else a digest of the bytes), durably, with
 * `markInflight`. After a crash, or when the server gave no APPENDUID/COPYUID, the messages at
 * or above the noted UIDNEXT are matched by identity: what landed is adopted, never sent twice.
 *
 * imapflow rule: no IMAP command inside a fetch() loop — listings are collected first.
 */
import type { ImapFlow } from 'imapflow';
import { identityOf, messageIdOfHeader } from '../../cache/content-identity.js';
import { digests } from './rekey.js';

/** The durable note of a non-idempotent change (JSON in `JournalEntry.inflightNote`). */
export interface LandingNote {
  /** The target's UIDVALIDITY upstream when the note was taken. */
  uv: string;
  /** The target's UIDNEXT then: whatever the change adds gets a UID at or above it. */
  next: number;
  /** Content identity of each message the change adds, by a number of the caller's choosing (local or source UID). */
  ids: Record<string, string>;
  /** A move: the upstream UID of each message's source, and the source folder's UIDVALIDITY. */
  src?: Record<string, number>;
  srcUv?: string;
}

/** The note as stored, or undefined when absent or unreadable. */
export function parseNote(text: string | undefined): LandingNote | undefined {
  if (!text) return undefined;
  try {
    const n = JSON.parse(text) as LandingNote;
    return typeof n.uv === 'string' && typeof n.next === 'number' && n.ids && typeof n.ids === 'object' ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The target folder's UIDVALIDITY and UIDNEXT (STATUS), for a note. */
export async function targetStatus(client: ImapFlow, path: string): Promise<{ uv: string; next: number }> {
  const st = await client.status(path, { uidNext: true, uidValidity: true });
  if (!st || st.uidNext === undefined || st.uidValidity === undefined)
    throw new Error(`IMAP STATUS of ${path} gave no UIDNEXT/UIDVALIDITY`);
  return { uv: String(st.uidValidity), next: st.uidNext };
}

/**
 * The messages of `note.ids` that are in `path` upstream, by identity, among the UIDs at or above
 * the noted UIDNEXT (the whole folder when its UIDVALIDITY changed since). Each upstream message
 * is adopted once. Returns the caller's number → upstream UID, and the folder's UIDVALIDITY.
 */
export async function findLanded(
  client: ImapFlow,
  path: string,
  note: LandingNote,
): Promise<{ uv: string; found: Map<string, number> }> {
  const found = new Map<string, number>();
  const lock = await client.getMailboxLock(path);
  try {
    const mb = client.mailbox;
    if (!mb) throw new Error(`could not open folder ${path}`);
    const uv = String(mb.uidValidity);
    if (mb.exists === 0) return { uv, found };
    const from = uv === note.uv ? note.next : 1;
    const listed: Array<{ uid: number; ident?: string; size: number }> = [];
    for await (const m of client.fetch(
      `${from}:*`,
      { uid: true, size: true, headers: ['message-id'] },
      { uid: true },
    )) {
      if (m.uid < from) continue; // `n:*` always matches the last message
      listed.push({
        uid: m.uid,
        size: m.size ?? 0,
        ident: identityOf(m.headers && messageIdOfHeader(m.headers), m.size ?? 0),
      });
    }
    const wanted = Object.values(note.ids);
    const noId = listed.filter((m) => !m.ident);
    if (noId.length && wanted.some((w) => w.startsWith('sha256:')))
      for (const d of await digests(client, noId)) {
        const m = listed.find((l) => l.uid === d.uid);
        if (m) m.ident = d.ident;
      }
    const taken = new Set<number>();
    for (const [n, ident] of Object.entries(note.ids)) {
      const m = listed.find((l) => l.ident === ident && !taken.has(l.uid));
      if (!m) continue;
      taken.add(m.uid);
      found.set(n, m.uid);
    }
    return { uv, found };
  } finally {
    lock.release();
  }
}

/** Bytes with bare LFs turned into CRLF (IMAP APPEND takes CRLF lines); the same buffer when there are none. */
export function toCrlf(bytes: Buffer): Buffer {
  let bare = false;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1))
    if (i === 0 || bytes[i - 1] !== 13) {
      bare = true;
      break;
    }
  if (!bare) return bytes;
  return Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}
