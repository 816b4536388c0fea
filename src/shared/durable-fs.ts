/**
 * Durability in one module: every file localpost keeps (messages, outbox entries, state, OAuth
 * tokens and keys, the config `init` writes) is written through these helpers, and every
 * creation or rename of one is made durable by their directory fsync. A file becomes durable by:
 * write it under a temp name in the same directory, fsync it, rename (or link) it into place,
 * fsync the directory.
 *
 * Two ways to create a file:
 * - replace whatever is there: `writeFileDurable` (atomic: the old file or the new one);
 * - never replace: `createExclusive` (O_CREAT|O_EXCL, for a file written as a stream) and
 *   `writeFileExclusive` (whole contents, complete or absent). An existing file is reported one
 *   way, as a FileExistsError (code EEXIST), whichever step found it.
 * New files get mode 0600 unless told otherwise, and no helper follows a symbolic link at the
 * final name (O_EXCL or O_NOFOLLOW; docs/security.md).
 *
 * The `*Fd` helpers work on raw descriptors through the callback API: one thread-pool job each,
 * without a FileHandle's own bookkeeping (the message write path runs thousands of them).
 */
import { close, constants, fsync, open as openFd, writev } from 'node:fs';
import { type FileHandle, link, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

let tmpCounter = 0;
/** A temp name beside `target`, unique within this process. */
const tmpPath = (target: string): string => `${target}.tmp-${process.pid}-${++tmpCounter}`;

/** fsync a directory so that renames and creations inside it survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** mkdir -p, then fsync every parent whose entries changed, so the new directories survive a crash. */
export async function mkdirDurable(dir: string, mode = 0o700): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  if (!first) return;
  const chain: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    chain.push(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
  for (const d of chain) await fsyncDir(d);
}

/** open(2) flags: the final name must not be a symbolic link (ELOOP otherwise). */
const { O_CREAT, O_NOFOLLOW, O_RDONLY, O_TRUNC, O_WRONLY } = constants;

/**
 * Makes sure `file`, which another library opens by name (SQLite), is a regular file of mode
 * 0600 and not a symbolic link: created empty (`create`) when missing, else left absent; group
 * and other permissions removed. Throws ELOOP for a symlink.
 */
export async function claimPrivateFile(file: string, create: boolean): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(file, (create ? O_WRONLY | O_CREAT : O_RDONLY) | O_NOFOLLOW, 0o600);
  } catch (err) {
    if (!create && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`${file} is not a regular file`);
    if (st.mode & 0o077) await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
}

/** A file that must be new exists already; nothing was replaced. */
export class FileExistsError extends Error {
  override name = 'FileExistsError';
  readonly code = 'EEXIST';
  constructor(
    readonly file: string,
    options?: ErrorOptions,
  ) {
    super(`${file} already exists`, options);
  }
}

const isExists = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'EEXIST';

/**
 * Creates `file`, which must not exist, open for writing with `mode` (less what the umask
 * removes). The caller writes, fsyncs and closes it; its name is durable once the directory is
 * fsynced. Throws FileExistsError when `file` exists.
 */
export async function createExclusive(file: string, mode = 0o600): Promise<FileHandle> {
  try {
    return await open(file, 'wx', mode);
  } catch (err) {
    throw isExists(err) ? new FileExistsError(file, { cause: err }) : err;
  }
}

/** `createExclusive` returning a raw descriptor (close it with `closeFd`). */
export function createExclusiveFd(file: string, mode = 0o600): Promise<number> {
  return new Promise((resolve, reject) =>
    openFd(file, 'wx', mode, (err, fd) => {
      if (!err) resolve(fd);
      else reject(isExists(err) ? new FileExistsError(file, { cause: err }) : err);
    }),
  );
}

const done =
  (resolve: () => void, reject: (e: Error) => void) =>
  (err: Error | null): void =>
    err ? reject(err) : resolve();

/** fsync(2) of a raw descriptor. */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, done(resolve, reject)));
}

/** close(2) of a raw descriptor. */
export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => close(fd, done(resolve, reject)));
}

/** One writev(2) at the descriptor's position; resolves with the bytes written (maybe fewer). */
export function writevFd(fd: number, bufs: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n))));
}

/** `createExclusive`, then `data` written, chmod to `mode` exactly and fsync; removed again on a failure. */
async function writeNew(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await createExclusive(file, mode);
  try {
    try {
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/** Error codes of a filesystem without hard links. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Writes `data` to the new file `target` (mode exactly `mode`, whatever the umask) and never
 * replaces one: a temp file beside it, fsynced, is hard-linked into place, which fails if the name
 * exists, so a file created meanwhile is not replaced either; then the directory is fsynced. A
 * crash leaves no `target` or a complete one. On a filesystem without hard links the target is
 * created exclusively and written in place (complete once this resolves). Throws
 * FileExistsError when `target` exists.
 */
export async function writeFileExclusive(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tmpPath(target);
  await rm(tmp, { force: true }); // left by a crashed process that had this pid
  try {
    await writeNew(tmp, data, mode);
    try {
      await link(tmp, target);
    } catch (err) {
      if (isExists(err)) throw new FileExistsError(target, { cause: err });
      if (!NO_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await writeNew(target, data, mode);
    }
  } finally {
    await rm(tmp, { force: true });
  }
  await fsyncDir(path.dirname(target));
}

/**
 * Write `data` to `target` atomically and durably: `<target>.tmp-<pid>-<n>` in the same
 * directory, fsync, rename, fsync the directory. A crash leaves either the old file or the new
 * one, never a torn one (a stray `.tmp-` file at worst, which start-up recovery removes).
 */
export async function writeFileDurable(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = tmpPath(target);
  try {
    const fh = await open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode);
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
  /** `current` has not started its fsync yet (gather): a caller now still shares it. */
  private waiting = false;

  /**
   * With `gather`, an fsync starts at the end of the event loop's turn rather than at once, so
   * that callers that finish their changes in the same turn share it.
   */
  constructor(
    readonly dir: string,
    private readonly fsync: (dir: string) => Promise<void> = fsyncDir,
    private readonly gather = false,
  ) {}

  /** Resolves once an fsync of the directory that started after this call has completed. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (this.waiting && this.current) return this.current;
    if (!this.current) {
      this.current = this.gather ? this.gathered() : this.run();
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

  private async gathered(): Promise<void> {
    this.waiting = true;
    await new Promise((r) => setImmediate(r));
    this.waiting = false;
    return this.run();
  }

  private async run(): Promise<void> {
    try {
      await this.fsync(this.dir);
    } finally {
      this.current = undefined;
    }
  }
}
