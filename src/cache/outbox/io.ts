/**
 * The file operations of the outbox's acceptance path, and their real implementation.
 *
 * Why not fs/promises: every call there is a hop through libuv's thread pool, and on a busy
 * machine each hop costs the event loop far more than the call itself (a worker wakes, the
 * loop is preempted). An acceptance made of open, write, fsync, close for two files, two
 * renames and a directory fsync was thirteen hops. Here only the waits for the disk (the
 * fsyncs) go to the thread pool; open, write, close and rename are synchronous calls that touch
 * the page cache and the directory in memory, so an acceptance costs two hops plus its share of
 * one directory fsync. The durability steps are unchanged: each file is fsynced, renamed, and
 * its directory fsynced before the caller may answer 250.
 */
import { closeSync, constants, fsync, openSync, renameSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { FileExistsError } from '../../shared/durable-fs.js';

/** A file being written by `accept`. */
export interface OutboxWriteHandle {
  write(b: Buffer): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file operations of the acceptance path, replaceable to inject faults in tests. */
export interface OutboxIo {
  /** Create a new file (it must not exist). */
  create(file: string): Promise<OutboxWriteHandle>;
  rename(from: string, to: string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
}

const fsyncAsync = promisify(fsync);
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/** Write every byte of `bufs` at the file's position. */
function writeAllSync(fd: number, bufs: Buffer[]): void {
  const data = bufs.length === 1 && bufs[0] ? bufs[0] : Buffer.concat(bufs);
  for (let off = 0; off < data.length; ) {
    const n = writeSync(fd, data, off);
    if (n === 0) throw new Error('write returned 0 bytes');
    off += n;
  }
}

/** Small writes are gathered up to this size before one write(2). */
const GATHER = 256 * 1024;

/** A new file (O_EXCL, mode 0600, never through a symlink): buffered writes, fsync in the thread pool. */
function createFile(file: string): OutboxWriteHandle {
  let fd: number | undefined;
  try {
    fd = openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(file, { cause: err });
    throw err;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const open = (): number => {
    if (fd === undefined) throw new Error(`${file} is closed`);
    return fd;
  };
  const flush = () => {
    if (!pendingBytes) return;
    const bufs = pending;
    pending = [];
    pendingBytes = 0;
    writeAllSync(open(), bufs);
  };
  return {
    async write(b) {
      pending.push(b);
      pendingBytes += b.length;
      if (pendingBytes >= GATHER) flush();
    },
    async sync() {
      flush();
      await fsyncAsync(open());
    },
    async close() {
      // idempotent: a second close must not close a descriptor the process reused
      if (fd === undefined) return;
      const f = fd;
      fd = undefined;
      closeSync(f);
    },
  };
}

/** fsync a directory: one thread-pool hop (the open and close are synchronous). */
async function fsyncDirOnce(dir: string): Promise<void> {
  const fd = openSync(dir, O_RDONLY);
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The real file operations. */
export const defaultIo: OutboxIo = {
  create: async (file) => createFile(file),
  rename: async (from, to) => renameSync(from, to),
  fsyncDir: fsyncDirOnce,
};
