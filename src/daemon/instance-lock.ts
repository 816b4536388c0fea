/**
 * Single-instance lock on the data directory: `<dataDir>/localpost.lock` holds the owner's pid.
 * Created with O_EXCL; a lock whose pid is no longer alive is stale and taken over. A second
 * daemon (or an in-process `sync` while a daemon runs) on the same dataDir is refused with a
 * message naming the running pid.
 */
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export class LockedError extends Error {
  override name = 'LockedError';
  constructor(readonly pid: number, readonly dataDir: string) {
    super(`another localpost (pid ${pid}) is already using ${dataDir}`);
  }
}

/** True when a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The held lock; `release()` removes the file. */
export interface InstanceLock {
  readonly file: string;
  release(): Promise<void>;
}

/** The pid of the live process holding the lock on `dataDir`, or undefined. */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path.join(dataDir, 'localpost.lock'), 'utf8').catch(() => ''), 10);
  return Number.isFinite(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/** Take the lock on `dataDir` or throw LockedError. */
export async function acquireLock(dataDir: string): Promise<InstanceLock> {
  const file = path.join(dataDir, 'localpost.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.sync();
      await fh.close();
      return {
        file,
        release: async () => {
          const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
          if (owner === process.pid) await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isFinite(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new LockedError(pid, dataDir);
      await rm(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new Error(`could not take the lock ${file}`);
}
