/**
 * Single-instance lock on the data directory. A second daemon (or an in-process `sync` or
 * `outbox` while a daemon runs) on the same dataDir is refused with a message naming the running
 * pid; a lock left by a crash, a kill -9, a power cut or a reboot never blocks a start.
 *
 * The lock is a kernel file lock, not a file's content: the holder keeps an SQLite connection
 * to `<dataDir>/localpost.lock` open in `locking_mode = EXCLUSIVE` after a `BEGIN EXCLUSIVE`,
 * so SQLite holds an fcntl() write lock on the file for as long as the connection is open. The
 * kernel drops that lock when the process exits, however it exits, so there is nothing to judge
 * stale: no pid, start time or boot id to compare, and pid reuse cannot fool it. A second taker
 * gets SQLITE_BUSY (after BUSY_MS, see below) and is refused.
 *
 * Invariants:
 * - Held means the fcntl lock is held. `localpost.lock` itself stays after a release (deleting
 *   a lock file races with a taker that opened it just before); its existence means nothing.
 * - `<dataDir>/localpost.pid` names the holder, for messages and `status` only. The holder
 *   writes it (atomically, durable-fs) right after taking the lock and removes it before
 *   releasing, so only the holder ever writes it. A pid file with no lock held means no daemon,
 *   whatever process has that pid now.
 * - Nothing in a process may open `localpost.lock` other than through SQLite: closing any file
 *   descriptor on it would drop the process's fcntl locks (SQLite's own connections share
 *   the locks of one file within a process and defer such closes).
 * - A lock file that is not a database (see below, or a torn write) is emptied in place, never
 *   replaced: everyone keeps locking the same inode, and a taker that already holds it is not
 *   affected (it never reads the file again).
 *
 * Reading (`lockHolder`): a read-only connection (it creates nothing, not even the file; a
 * missing data dir is just "no daemon") with busy_timeout 0 reads the schema, which needs a
 * shared lock: SQLITE_BUSY means a holder has the exclusive lock (or a taker is just getting
 * it), and the pid file then names it. A shared lock rather than a trial `BEGIN EXCLUSIVE`: two
 * `status` runs at once would take each other for a daemon, and a reader holds nothing a taker
 * needs for longer than the read of one page. A taker that meets such a reader (or another
 * taker) waits up to BUSY_MS in SQLite's busy handler, so a `status` at the moment of a start
 * does not make it fail; the price is that a refused start answers after twice BUSY_MS (two busy tries must agree on the pid). A refused
 * taker that finds no live pid in the pid file (the holder has only just locked), or not the
 * same one twice in a row (a file left by a crash, removed by the winner), tries again.
 *
 * A lock file of an older localpost (a JSON or bare-pid record) is taken over at once: an older
 * daemon still running on the same data dir during an upgrade is not detected.
 *
 * Filesystems: this needs fcntl() locks on the data directory, as SQLite itself does for
 * state.db. Where they fail (some network or FUSE mounts), SQLite reports an I/O error and the
 * start fails with it; where they are silently local to one client (NFS mounted `nolock`), two
 * machines sharing a data dir are not kept apart, one machine still is.
 */
import { rmSync } from 'node:fs';
import { readFile, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { writeFileDurable } from '../shared/durable-fs.js';

export class LockedError extends Error {
  override name = 'LockedError';
  constructor(
    readonly pid: number,
    readonly dataDir: string,
  ) {
    super(`another localpost (pid ${pid}) is already using ${dataDir}`);
  }
}

/** The lock file's name inside the data directory. */
const LOCK_FILE = 'localpost.lock';
/** The holder's pid, informative only. */
const PID_FILE = 'localpost.pid';

/** The held lock; `release()` removes the pid file and drops the lock. */
export interface InstanceLock {
  readonly file: string;
  release(): Promise<void>;
}

/** How long a taker waits for a reader or another taker to let go of the lock file. */
const BUSY_MS = 500;
/** How long a refused taker waits for the holder to write its pid (it does so right after locking). */
const PID_WAIT_MS = 5_000;

/** Lock files held by this process (resolved paths): a second taker here is refused at once. */
const ours = new Set<string>();
/**
 * Lock files this process is taking. In-process takers go one at a time: the descriptor that
 * truncate() opens and closes would drop a lock this process had just taken.
 */
const taking = new Map<string, Promise<InstanceLock>>();

const code = (err: unknown) => (err as { code?: unknown } | undefined)?.code;

/** True when a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

/** The pid in the pid file of `dataDir` if it names a live process. */
async function pidOf(dataDir: string): Promise<number | undefined> {
  const text = (await readFile(path.join(dataDir, PID_FILE), 'utf8').catch(() => '')).trim();
  const pid = /^\d{1,10}$/.test(text) ? Number(text) : 0;
  return pid > 0 && alive(pid) ? pid : undefined;
}

/** Take the exclusive lock on `file`: the open connection, or why not. Blocks up to BUSY_MS. */
function tryLock(file: string): Database.Database | 'busy' | 'not-a-database' {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: BUSY_MS });
    db.pragma('journal_mode = MEMORY'); // no -journal file beside the lock
    db.pragma('locking_mode = EXCLUSIVE'); // after the pragma above: keep no shared lock before BEGIN
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT'); // in exclusive locking mode the lock stays until close()
    return db;
  } catch (err) {
    db?.close();
    if (code(err) === 'SQLITE_BUSY') return 'busy';
    if (code(err) === 'SQLITE_NOTADB' || code(err) === 'SQLITE_CORRUPT') return 'not-a-database';
    throw err;
  }
}

/** True when some process holds the lock on `file`; never takes it, never creates the file. */
function heldByOther(file: string): boolean {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (err) {
    return code(err) === 'SQLITE_BUSY'; // missing, not a database, unreadable: nobody holds it
  } finally {
    db?.close();
  }
}

/** The pid of the process holding the lock on `dataDir`, or undefined (also while it is unknown). */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  const file = path.join(dataDir, LOCK_FILE);
  if (ours.has(path.resolve(file))) return process.pid;
  return heldByOther(file) ? pidOf(dataDir) : undefined;
}

/** Try until the lock on `file` is taken, or throw LockedError naming the holder. */
async function lockLoop(file: string, dataDir: string): Promise<Database.Database> {
  const deadline = Date.now() + PID_WAIT_MS;
  let emptied = false;
  let named: number | undefined;
  for (;;) {
    const r = tryLock(file);
    if (typeof r !== 'string') {
      // at once, before yielding: a refused taker must not read a pid file a crash left behind
      // (it may name a live process that reused the pid); it waits for ours instead
      rmSync(path.join(dataDir, PID_FILE), { force: true });
      return r;
    }
    if (r === 'not-a-database') {
      // nobody held it when it was read; emptied, it is a valid (empty) database
      if (emptied) throw new Error(`${file} is not an SQLite database`);
      emptied = true;
      await truncate(file, 0);
      continue;
    }
    // Named by two busy tries in a row: a busy try may meet only other takers or readers, and
    // the pid file then is one a crash left (the winner removes it as it takes the lock).
    const pid = await pidOf(dataDir);
    if (pid !== undefined && pid === named) throw new LockedError(pid, dataDir);
    named = pid;
    // the holder is starting and writes its pid next (each try waits BUSY_MS)
    if (Date.now() > deadline) throw new Error(`${file} is locked by a process that names itself in no ${PID_FILE}`);
  }
}

/** Take the lock on `dataDir` (which must exist) or throw LockedError. */
export async function acquireLock(dataDir: string): Promise<InstanceLock> {
  const key = path.resolve(dataDir, LOCK_FILE);
  for (let t = taking.get(key); t; t = taking.get(key)) await t.catch(() => undefined);
  if (ours.has(key)) throw new LockedError(process.pid, dataDir);
  const attempt = take(dataDir, key);
  taking.set(key, attempt);
  try {
    return await attempt;
  } finally {
    taking.delete(key);
  }
}

async function take(dataDir: string, key: string): Promise<InstanceLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const pidFile = path.join(dataDir, PID_FILE);
  const db = await lockLoop(file, dataDir);
  ours.add(key);
  const drop = () => {
    ours.delete(key);
    db.close();
  };
  try {
    await writeFileDurable(pidFile, `${process.pid}\n`);
  } catch (err) {
    drop();
    throw err;
  }
  let released = false;
  return {
    file,
    release: async () => {
      if (released) return;
      released = true;
      // removed while still held: a later holder's pid file is never removed by us
      await rm(pidFile, { force: true }).catch(() => undefined);
      drop();
    },
  };
}
