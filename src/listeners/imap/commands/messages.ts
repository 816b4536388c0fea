/**
 * Commands that change messages (RFC 3501 §6.3.11, §6.4; UIDPLUS RFC 4315; MOVE RFC 6851;
 * CONDSTORE STORE UNCHANGEDSINCE RFC 7162 §3.1.3): APPEND, CLOSE, UNSELECT, EXPUNGE and
 * UID EXPUNGE, STORE, COPY, MOVE. Every change is durable in the store before the OK; this
 * session's own expunges are reported through the same queue as anyone else's (as VANISHED once
 * QRESYNC is enabled, RFC 7162 §3.2.10).
 */
import { NoSuchFolderError, type UidPair } from '../../../cache/mailboxes.js';
import { parseAppend, parseCopyMove, parseNoArgs, parseStore, parseUidExpunge } from '../command-args.js';
import type { Command } from '../command-reader.js';
import { flagsFetchLine } from '../responses.js';
import type { SelectedMailbox } from '../selected.js';
import { formatNumbers } from '../sequence-set.js';
import { BadCommand, NoReply, no, ok, parsed, type Reply, type SessionContext } from '../types.js';
import { storeOf } from './folders.js';

/** The selected mailbox: the table lets these run only in SELECTED. */
export function selectedOf(s: SessionContext): SelectedMailbox {
  if (!s.selected) throw new Error('no mailbox selected');
  return s.selected;
}

function writable(box: SelectedMailbox): void {
  if (box.readOnly) throw new NoReply('mailbox is read-only (EXAMINE)', 'READ-ONLY');
}

/** `\Recent` is session state: a client may send it, it is never stored. */
const storable = (flags: readonly string[]): string[] => flags.filter((f) => f.toLowerCase() !== '\\recent');

export async function append(s: SessionContext, cmd: Command): Promise<Reply> {
  const a = parsed(parseAppend(cmd.args));
  const opts = a.date === undefined ? { flags: storable(a.flags) } : { flags: storable(a.flags), internalDate: a.date };
  try {
    const { uid, uidValidity } = await storeOf(s).append(a.mailbox, a.message, opts);
    return ok('APPEND completed', `APPENDUID ${uidValidity} ${uid}`);
  } catch (err) {
    if (err instanceof NoSuchFolderError) return no('no such mailbox', 'TRYCREATE');
    throw err;
  }
}

/** CLOSE expunges `\Deleted` messages silently (not under EXAMINE); UNSELECT does not. */
export async function close(s: SessionContext, cmd: Command): Promise<Reply> {
  parsed(parseNoArgs(cmd.args));
  const box = selectedOf(s);
  s.setSelected(undefined);
  if (cmd.name === 'CLOSE' && !box.readOnly) {
    const uids = box.msgs.filter((m) => m.flags.includes('\\Deleted')).map((m) => m.uid);
    if (uids.length) await storeOf(s).expunge(box.name, uids);
  }
  return ok(`${cmd.name} completed`);
}

export async function expunge(s: SessionContext, cmd: Command): Promise<Reply> {
  const box = selectedOf(s);
  const only = cmd.uid ? parsed(parseUidExpunge(cmd.args)) : (parsed(parseNoArgs(cmd.args)) ?? undefined);
  writable(box);
  const within = only ? new Set(box.select(only, true)) : undefined;
  const uids: number[] = [];
  box.msgs.forEach((m, i) => {
    if (m.flags.includes('\\Deleted') && (!within || within.has(i))) uids.push(m.uid);
  });
  if (uids.length) box.noteExpunged(await storeOf(s).expunge(box.name, uids));
  await s.flushUpdates(true);
  return ok(`${cmd.uid ? 'UID ' : ''}EXPUNGE completed`);
}

/** Sequence-number sets past the last message are BAD (RFC 3501 §9 seq-number); UID sets are not. */
export function indexes(box: SelectedMailbox, cmd: Command, set: Parameters<SelectedMailbox['select']>[0]): number[] {
  if (!cmd.uid && box.outOfRange(set)) throw new BadCommand('no such message');
  return box.select(set, cmd.uid);
}

export async function store(s: SessionContext, cmd: Command): Promise<Reply> {
  const a = parsed(parseStore(cmd.args));
  const box = selectedOf(s);
  writable(box);
  if (a.unchangedSince !== undefined) s.condstore = true;
  const idx = indexes(box, cmd, a.set);
  const uids = idx.map((i) => box.uids[i] as number);
  const change = {
    op: a.mode,
    flags: storable(a.flags),
    ...(a.unchangedSince === undefined ? {} : { unchangedSince: Number(a.unchangedSince) }),
  };
  const result = uids.length ? await storeOf(s).setFlags(box.name, uids, change) : { changed: [], modified: [] };
  for (const m of result.changed) box.applyOwn(m);
  const refused = new Set(result.modified);
  const changed = new Set(result.changed.map((m) => m.uid));
  let out = '';
  for (const i of idx) {
    const m = box.msgs[i];
    if (!m || refused.has(m.uid)) continue;
    // .SILENT: nothing, except the new MODSEQ under CONDSTORE (RFC 7162 §3.1.3).
    if (!a.silent) out += flagsFetchLine(i + 1, m, cmd.uid, s.condstore, box.isRecent(m.uid));
    else if (s.condstore && changed.has(m.uid))
      out += `* ${i + 1} FETCH (${cmd.uid ? `UID ${m.uid} ` : ''}MODSEQ (${m.modseq || 1}))\r\n`;
  }
  if (out) await s.write(out);
  if (refused.size) {
    const nums = cmd.uid
      ? [...refused].sort((x, y) => x - y)
      : [...refused].map((u) => box.indexOf(u) + 1).sort((x, y) => x - y);
    return ok('conditional STORE failed for some messages', `MODIFIED ${formatNumbers(nums)}`);
  }
  return ok(`${cmd.uid ? 'UID ' : ''}STORE completed`);
}

/** COPY and MOVE with COPYUID (RFC 4315 §3); MOVE reports it untagged before its EXPUNGEs. */
export async function copy(s: SessionContext, cmd: Command): Promise<Reply> {
  const a = parsed(parseCopyMove(cmd.args));
  const box = selectedOf(s);
  const move = cmd.name === 'MOVE';
  if (move) writable(box);
  const uids = indexes(box, cmd, a.set).map((i) => box.uids[i] as number);
  const st = storeOf(s);
  const target = st.folder(a.mailbox);
  if (!target?.selectable) return no('no such mailbox', 'TRYCREATE');
  if (!uids.length) return ok(`${cmd.name} completed (nothing to do)`);
  let pairs: UidPair[];
  try {
    pairs = move ? await st.move(box.name, uids, a.mailbox) : await st.copy(box.name, uids, a.mailbox);
  } catch (err) {
    if (err instanceof NoSuchFolderError && err.folder !== box.name) return no('no such mailbox', 'TRYCREATE');
    throw err;
  }
  const validity = st.folder(a.mailbox)?.uidValidity ?? target.uidValidity;
  const code = pairs.length
    ? `COPYUID ${validity} ${formatNumbers(pairs.map((p) => p.from))} ${formatNumbers(pairs.map((p) => p.to))}`
    : undefined;
  if (!move) return ok('COPY completed', code);
  if (code) await s.send(`* OK [${code}] moved`);
  box.noteExpunged(pairs.map((p) => p.from));
  await s.flushUpdates(true);
  return ok('MOVE completed');
}
