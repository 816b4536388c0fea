/**
 * Durability in one module, so every writer does it alike. A file becomes durable by: write it in a temp
 * directory on the same filesystem, fsync the file, rename it into place, fsync the directory.
 * Every writer of message files, outbox entries and state goes through these helpers.
 */
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** fsync a directory so that renames and creations inside it survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync an existing file by path. */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write `data` to `target` atomically and durably: `<target>.tmp-<pid>-<n>` in the same
 * directory, fsync, rename, fsync the directory. A crash leaves either the old file or the new
 * one, never a torn one (a stray `.tmp-` file at worst, which start-up recovery removes).
 */
let tmpCounter = 0;
export async function writeFileDurable(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}-${++tmpCounter}`;
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/** Rename `from` to `to` and fsync the directories involved. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to);
  const a = path.dirname(from);
  const b = path.dirname(to);
  await fsyncDir(b);
  if (a !== b) await fsyncDir(a);
}

/**
 * Coalesces the fsyncs of one directory: callers that ask while an fsync is running share the
 * next one, which starts after it (so it covers every change made before they asked). Under
 * concurrent writers this turns one directory fsync per file into one per batch.
 */
export class DirSyncer {
  private current?: Promise<void>;
  private queued?: Promise<void>;

  constructor(
    readonly dir: string,
    private readonly fsync: (dir: string) => Promise<void> = fsyncDir,
  ) {}

  /** Resolves once an fsync of the directory that started after this call has completed. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.current) {
      this.current = this.run();
      return this.current;
    }
    this.queued = this.current
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        this.current = this.run();
        return this.current;
      });
    return this.queued;
  }

  private async run(): Promise<void> {
    try {
      await this.fsync(this.dir);
    } finally {
      this.current = undefined;
    }
  }
}
