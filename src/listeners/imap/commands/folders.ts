/**
 * AUTHENTICATED-state commands on folders (RFC 3501 §6.3): SELECT, EXAMINE (with CONDSTORE and
 * QRESYNC, RFC 7162 §3.1.8, §3.2.5), CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (LIST, LSUB
 * and STATUS are in `list.ts`). Folder names are decoded from modified UTF-7 by the parsers and encoded again on
 * the way out.
 */
import type { MailboxStore } from '../../../cache/mailboxes.js';
import { parseMailboxArg, parseRename, parseSelect } from '../command-args.js';
import type { Command } from '../command-reader.js';
import { writeResync } from '../qresync.js';
import { recentFloors } from '../recent.js';
import { flagList } from '../response.js';
import { BASE_FLAGS } from '../responses.js';
import { SelectedMailbox } from '../selected.js';
import { BadCommand, NoReply, no, ok, parsed, type Reply, type SessionContext } from '../types.js';

/** The account's store: the table lets these run only once logged in. */
export function storeOf(s: SessionContext): MailboxStore {
  if (!s.store) throw new Error('no account open');
  return s.store;
}

export async function select(s: SessionContext, cmd: Command): Promise<Reply> {
  const args = parsed(parseSelect(cmd.args));
  const readOnly = cmd.name === 'EXAMINE';
  if (args.qresync && !s.qresync) throw new BadCommand('QRESYNC not enabled');
  // RFC 7162 §3.2.11: the boundary between the closed mailbox's responses and the new one's.
  if (s.selected) await s.send('* OK [CLOSED] Previous mailbox closed.');
  s.setSelected(undefined); // RFC 3501 §6.3.1: a failed SELECT leaves no mailbox selected
  const snapshot = storeOf(s).select(args.mailbox);
  if (!snapshot.info.selectable) return no('not a selectable mailbox', 'NONEXISTENT');
  if (args.condstore) s.condstore = true;
  const box = new SelectedMailbox(snapshot, readOnly, recentFloors(storeOf(s)));
  s.setSelected(box); // from now on changes queue in the view: none is lost while the responses go out
  const keywords = new Set<string>();
  let firstUnseen = 0;
  const { msgs } = box;
  for (let i = 0; i < msgs.length; i++) {
    const flags = (msgs[i] as (typeof msgs)[number]).flags;
    let seen = false;
    for (const f of flags) {
      if (f === '\\Seen') seen = true;
      else if (!f.startsWith('\\')) keywords.add(f);
    }
    if (!seen && !firstUnseen) firstUnseen = i + 1;
  }
  const all = [...BASE_FLAGS, ...[...keywords].sort()];
  const { info } = snapshot;
  const lines = [
    `* FLAGS ${flagList(all)}`,
    `* OK [PERMANENTFLAGS ${readOnly ? '()' : flagList([...all, '\\*'])}] flags permitted`,
    `* ${box.exists} EXISTS`,
    `* ${box.recentCount} RECENT`,
  ];
  if (firstUnseen) lines.push(`* OK [UNSEEN ${firstUnseen}] first unseen`);
  lines.push(`* OK [UIDVALIDITY ${info.uidValidity}] UIDs valid`, `* OK [UIDNEXT ${info.uidNext}] next UID`);
  lines.push(`* OK [HIGHESTMODSEQ ${Math.max(1, info.highestModseq)}] highest`);
  await s.write(`${lines.join('\r\n')}\r\n`);
  if (args.qresync) await writeResync(s, box, args.qresync, info);
  return ok(`${cmd.name} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

export async function create(s: SessionContext, cmd: Command): Promise<Reply> {
  const name = parsed(parseMailboxArg(cmd.args)).replace(/\/+$/, '');
  if (name === 'INBOX' || storeOf(s).folder(name)?.selectable) throw new NoReply('mailbox exists', 'ALREADYEXISTS');
  await storeOf(s).createFolder(name);
  return ok('CREATE completed');
}

export async function del(s: SessionContext, cmd: Command): Promise<Reply> {
  const name = parsed(parseMailboxArg(cmd.args));
  if (name === 'INBOX') return no('INBOX cannot be deleted', 'CANNOT');
  if (!storeOf(s).folder(name)) return no('no such mailbox', 'NONEXISTENT');
  await storeOf(s).deleteFolder(name);
  return ok('DELETE completed');
}

export async function rename(s: SessionContext, cmd: Command): Promise<Reply> {
  const { from, to } = parsed(parseRename(cmd.args));
  if (!storeOf(s).folder(from)) return no('no such mailbox', 'NONEXISTENT');
  if (storeOf(s).folder(to)?.selectable) return no('target mailbox exists', 'ALREADYEXISTS');
  await storeOf(s).renameFolder(from, to);
  return ok('RENAME completed');
}

export async function subscribe(s: SessionContext, cmd: Command): Promise<Reply> {
  const name = parsed(parseMailboxArg(cmd.args));
  const on = cmd.name === 'SUBSCRIBE';
  if (on && !storeOf(s).folder(name)) return no('no such mailbox', 'NONEXISTENT');
  await storeOf(s).subscribe(name, on);
  return ok(`${cmd.name} completed`);
}
