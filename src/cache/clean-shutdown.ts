/**
 * The clean-shutdown record of one account, `accounts/<id>/clean-shutdown`: lets start-up
 * recovery (invariant 8) skip reading and parsing every name in `new/` and `cur/` when state.db
 * and the Maildir are known to agree. It holds a stamp of each folder's `new/` and `cur/`
 * directory and of the Maildir itself (inode, mtime, ctime, size) and the account's row count,
 * highest UID and next UID.
 *
 * - Written only by `Cache.shutdown()`, once no write of the account is in flight (no message
 *   begun, no batch waiting, no commit or removal running), after the last write; removed
 *   durably by the next open before anything is written. So a crash never leaves one: the
 *   process that crashed had removed it at its own open, and full recovery runs.
 * - A file added, removed, renamed or flagged in `new/`/`cur/` while the daemon is stopped (another
 *   Maildir reader) changes that directory's mtime and ctime; a folder created or removed changes
 *   the Maildir's. A state.db moved aside as corrupt, replaced or rolled back differs in its row
 *   count, highest UID or next UID. Any difference means full recovery.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileDurable } from '../shared/durable-fs.js';
import type { Ledger } from './ledger.js';
import { accountDir, folderDir, maildirPath } from './maildir.js';

/** Name of the record in the account's directory. */
export const CLEAN_SHUTDOWN_FILE = 'clean-shutdown';

/** What the record holds; compared whole with the state found at open. */
interface CleanState {
  dirs: Record<string, string>;
  messages: number;
  maxUid: number;
  nextUid: number;
}

interface Where {
  dataDir: string;
  account: string;
  ledger: Ledger;
  /** The account's folders (`listFolders` of recovery.ts). */
  folders: readonly string[];
}

async function dirStamp(dir: string): Promise<string> {
  try {
    const st = await stat(dir, { bigint: true });
    return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
}

async function currentState(w: Where): Promise<CleanState> {
  const maildir = maildirPath(w.dataDir, w.account);
  const dirs: Record<string, string> = { '': await dirStamp(maildir) };
  for (const folder of [...w.folders].sort())
    for (const sub of ['new', 'cur'])
      dirs[`${folder}\0${sub}`] = await dirStamp(path.join(folderDir(maildir, folder), sub));
  // covered by the index on (account, folder, uid): no table scan
  const r = w.ledger.db
    .prepare<[string], { n: number; maxUid: number }>(
      'SELECT count(*) AS n, coalesce(max(uid), 0) AS maxUid FROM messages WHERE account = ?',
    )
    .get(w.account);
  return { dirs, messages: r?.n ?? 0, maxUid: r?.maxUid ?? 0, nextUid: w.ledger.nextUid(w.account) };
}

/** Write the record (durably); call only once no write of the account can follow. */
export async function writeCleanRecord(w: Where): Promise<void> {
  const file = path.join(accountDir(w.dataDir, w.account), CLEAN_SHUTDOWN_FILE);
  await writeFileDurable(file, `${JSON.stringify(await currentState(w))}\n`);
}

/**
 * Read and remove (durably) the account's record; undefined when there is none or it is
 * unreadable. Must run before the first write of the account.
 */
export async function takeCleanRecord(dataDir: string, account: string): Promise<string | undefined> {
  const dir = accountDir(dataDir, account);
  const file = path.join(dir, CLEAN_SHUTDOWN_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    text = '';
  }
  await rm(file, { force: true });
  await fsyncDir(dir);
  return text;
}

/** True when `record` (from `takeCleanRecord`) still describes the Maildir and state.db exactly. */
export async function stillClean(record: string, w: Where): Promise<{ clean: boolean; messages: number }> {
  const now = await currentState(w);
  return { clean: record.trim() === JSON.stringify(now), messages: now.messages };
}
