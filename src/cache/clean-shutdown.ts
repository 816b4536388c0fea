/**
 * The clean-shutdown record of one account, `accounts/<id>/clean-shutdown`: lets start-up
 * recovery (invariant 8) skip reading and parsing every name in `new/` and `cur/` when state.db
 * and the Maildir are known to agree. It holds a stamp of each folder's `new/` and `cur/`
 * directory and of the Maildir itself (inode, mtime, ctime, size), the same of state.db (taken
 * after it was closed) and the account's next UID: all O(1) to check, however many messages.
 *
 * - Written only by `Cache.shutdown()`, once no write of the account is in flight (no message
 *   begun, no batch waiting, no commit or removal running), after the last write; removed
 *   durably by the next open before anything is written. So a crash never leaves one: the
 *   process that crashed had removed it at its own open, and full recovery runs.
 * - A file added, removed, renamed or flagged in `new/`/`cur/` while the daemon is stopped (another
 *   Maildir reader) changes that directory's mtime and ctime; a folder created or removed changes
 *   the Maildir's. A state.db moved aside as corrupt, replaced, restored or written by anyone else
 *   has another inode, mtime or size (or a `-wal` file). Any difference means full recovery.
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
  db: string;
  dirs: Record<string, string>;
  nextUid: number;
}

/** One account's part, taken while state.db is still open. */
export interface AccountPart {
  account: string;
  dirs: Record<string, string>;
  nextUid: number;
}

async function stamp(file: string): Promise<string> {
  try {
    const st = await stat(file, { bigint: true });
    return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
}

/** Stamp of state.db and its `-wal`: taken before it is opened, and after it is closed. */
export async function stateDbStamp(file: string): Promise<string> {
  return `${await stamp(file)}/${await stamp(`${file}-wal`)}`;
}

/** The account's part of its record: `folders` from `listFolders` of recovery.ts. */
export async function accountPart(
  dataDir: string,
  account: string,
  ledger: Ledger,
  folders: readonly string[],
): Promise<AccountPart> {
  const maildir = maildirPath(dataDir, account);
  const dirs: Record<string, string> = { '': await stamp(maildir) };
  for (const folder of [...folders].sort())
    for (const sub of ['new', 'cur'])
      dirs[`${folder}\0${sub}`] = await stamp(path.join(folderDir(maildir, folder), sub));
  return { account, dirs, nextUid: ledger.nextUid(account) };
}

const encode = (part: AccountPart, db: string): string =>
  JSON.stringify({ db, dirs: part.dirs, nextUid: part.nextUid } satisfies CleanState);

/** Write the record (durably), once state.db is closed and no write of the account can follow. */
export async function writeCleanRecord(dataDir: string, part: AccountPart, db: string): Promise<void> {
  const file = path.join(accountDir(dataDir, part.account), CLEAN_SHUTDOWN_FILE);
  await writeFileDurable(file, `${encode(part, db)}\n`);
}

/**
 * Read and remove (durably) the account's record; undefined when there is none. Must run before
 * the first write of the account.
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

/**
 * True when `record` (from `takeCleanRecord`) still describes the Maildir and state.db exactly;
 * `db` is the stamp of state.db taken before this process opened it.
 */
export async function stillClean(
  record: string,
  db: string,
  w: { dataDir: string; account: string; ledger: Ledger; folders: readonly string[] },
): Promise<boolean> {
  return record.trim() === encode(await accountPart(w.dataDir, w.account, w.ledger, w.folders), db);
}
