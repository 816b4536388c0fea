/**
 * Moving messages into the account's local Trash folder: a POP3 deletion committed by QUIT
 * (docs/architecture.md, "Serve" and invariant 5). The message placed in Trash is a new message
 * there: a new local UID, so it sits at or above Trash's UIDNEXT (RFC 3501: UIDs ascend as
 * messages are added; a client fetching `UIDNEXT:*` sees it), under a name with that UID in
 * `cur/` (S=, W=, K=, U= kept, flags plus S). Its key, sizes, identity, flags, keywords and
 * INTERNALDATE are kept; so is its `uidl` column: a message served with the provider's UIDL keeps
 * it, one served with its local UID has the new UID's UIDL in Trash, which POP3 never serves (it
 * serves INBOX). Its key is tombstoned in its old folder (`deleteUpstream`: the next pull deletes
 * it upstream too), so it is never fetched again.
 *
 * Order (`mailbox-intent.ts`, as MOVE in `mailbox-writes.ts`): intent recorded → hard link (or
 * fsynced copy) into Trash's `cur/` under the new name, `cur/` fsynced → ONE transaction (new
 * rows, old rows deleted, tombstones, next UID, Trash's UIDNEXT and HIGHESTMODSEQ, the source
 * folders' HIGHESTMODSEQ) → source files unlinked, their directories fsynced → intent cleared.
 * A crash before the transaction removes the links at start-up (the message is where it was);
 * after it, the unlinks are finished (the message is in Trash once). Runs in the serial queue.
 */
import path from 'node:path';
import { fsyncDir } from '../shared/durable-fs.js';
import type { AccountStoreDeps } from './account-reader.js';
import { identitiesOf } from './known-messages.js';
import type { MessageRow } from './ledger.js';
import { clearIntent, linkOrCopy, removePaths, writeIntent } from './mailbox-intent.js';
import type { ImapRow, MailboxRows } from './mailbox-rows.js';
import { folderDir, locateFile, replaceUid, splitInfo, uidl } from './maildir.js';
import { TRASH } from './message-store.js';

/** What the move needs of the account store (`MailboxAccountStore`). */
export interface TrashHost {
  readonly accountId: string;
  readonly deps: AccountStoreDeps;
  readonly rows: MailboxRows;
  readonly uidFloor: number;
  allocUid(): number;
  folderDirReady(folder: string): Promise<string>;
  ensureFolderRow(folder: string): boolean;
  noteKeys(folder: string, c: { added?: string[]; removed?: string[]; tombed?: string[] }): void;
}

/** What moved: per source folder the old UIDs, and the new Trash rows. */
export interface Trashed {
  expunged: Map<string, number[]>;
  added: ImapRow[];
}

/** One message to move: its old row, its file (relative to the Maildir) and its new UID, name and flags. */
interface Planned {
  row: MessageRow;
  imap: ImapRow;
  srcRel: string;
  uid: number;
  file: string;
  flags: string;
  ident: string | null;
}

/** Move the messages with these UIDs (not already in Trash) into Trash; see the module comment. */
export async function moveToTrash(
  s: TrashHost,
  uids: readonly number[],
  opts: { deleteUpstream: boolean },
): Promise<Trashed> {
  const { ledger, maildir, dataDir, clock, log } = s.deps;
  const account = s.accountId;
  const rows = [...new Set(uids)]
    .sort((a, b) => a - b)
    .map((u) => ledger.message(account, u))
    .filter((r): r is MessageRow => !!r && r.folder !== TRASH);
  if (!rows.length) return { expunged: new Map(), added: [] };
  const trashDir = await s.folderDirReady(TRASH);
  const mailRel = (folder: string, file: string) => path.join(path.relative(maildir, folderDir(maildir, folder)), file);
  const located = await Promise.all(rows.map((r) => locateFile(maildir, r)));
  const idents = await identitiesOf(maildir, rows, located);
  const plan: Planned[] = [];
  for (const [i, row] of rows.entries()) {
    const found = located[i];
    const imap = s.rows.message(account, row.uid);
    if (!found || !imap) {
      // another Maildir reader removed it: the row goes, the key stays tombstoned
      log.warn({ account, uid: uidl(row.uid) }, 'message file vanished before it could be moved to Trash');
      continue;
    }
    const uid = s.allocUid();
    const flags = [...new Set(`${row.flags}S`)].sort().join('');
    const file = `cur/${replaceUid(splitInfo(path.basename(found)).base, uid)}:2,${flags}`;
    plan.push({ row, imap, srcRel: mailRel(row.folder, found), uid, file, flags, ident: idents[i] ?? null });
  }
  if (plan.length) {
    await writeIntent(dataDir, account, {
      check: { rows: [plan[0]?.uid as number] },
      created: plan.map((p) => mailRel(TRASH, p.file)),
      obsolete: plan.map((p) => p.srcRel),
    });
    for (const p of plan) await linkOrCopy(path.join(maildir, p.srcRel), path.join(trashDir, p.file));
    await fsyncDir(path.join(trashDir, 'cur'));
  }
  const now = clock.now();
  const upstream = opts.deleteUpstream ? 'pending' : null;
  const added: ImapRow[] = [];
  const expunged = new Map<string, number[]>();
  for (const r of rows) expunged.set(r.folder, [...(expunged.get(r.folder) ?? []), r.uid]);
  ledger.transaction(() => {
    const modseq = s.rows.nextModseq(account);
    if (plan.length) s.ensureFolderRow(TRASH);
    for (const p of plan) {
      ledger.insertMessage({ ...p.row, uid: p.uid, folder: TRASH, file: p.file, flags: p.flags, ident: p.ident });
      s.rows.setImap(account, p.uid, p.imap.keywords, modseq, p.imap.internalDate);
      added.push({ ...p.imap, uid: p.uid, folder: TRASH, file: p.file, flags: p.flags, modseq });
    }
    for (const [i, r] of rows.entries()) {
      ledger.deleteMessage(account, r.uid);
      ledger.addTombstoneUpstream(account, r.folder, r.key, now, upstream, idents[i]);
    }
    ledger.raiseNextUid(account, s.uidFloor);
    if (plan.length) s.rows.raiseFolder(account, TRASH, (plan.at(-1)?.uid ?? 0) + 1, modseq);
    for (const f of expunged.keys()) s.rows.raiseFolder(account, f, 0, modseq);
  });
  for (const f of expunged.keys()) {
    const keys = rows.filter((r) => r.folder === f).map((r) => r.key);
    s.noteKeys(f, { removed: keys, tombed: keys });
  }
  s.noteKeys(TRASH, { added: plan.map((p) => p.row.key) });
  if (plan.length) {
    await removePaths(
      maildir,
      plan.map((p) => p.srcRel),
    );
    await clearIntent(dataDir, account);
  }
  return { expunged, added };
}
