/**
 * Where the control socket lives. A Unix socket's path must fit the kernel's `sun_path` (108
 * bytes on Linux, 104 on macOS, the terminating NUL included) and Node does not check: a longer
 * path is silently truncated, so the server would bind at a shorter path (a stray socket file
 * somewhere above the data directory) and clients would connect to yet another one. So:
 *
 * - `<dataDir>/control.sock` when it fits in `MAX_SOCKET_PATH` bytes (a margin under macOS'
 *   limit): the usual case, the socket next to the data it serves;
 * - otherwise `<runtime dir>/<first 16 hex of sha256(resolved dataDir)>.sock`, the runtime dir
 *   being `$XDG_RUNTIME_DIR/localpost` when that variable names an existing directory, else
 *   `<os.tmpdir()>/localpost-<uid>`. The name is computed, never stored, so the daemon and
 *   every CLI process agree on it without sharing anything but the environment;
 * - an error naming the problem when even that does not fit.
 *
 * The runtime dir may sit in a world-writable /tmp, where another user could create it first
 * (a symlink to their own directory, or a directory open to all) to capture the socket or plant
 * one of theirs. Like tmux's /tmp/tmux-UID, the server creates it 0700 and refuses one that is
 * a symlink, not a directory, not the current user's, or open to group or other
 * (`ensureRuntimeDir`); the client checks the same before connecting (`checkRuntimeDir`), so it
 * never talks to a socket planted in someone else's directory.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** File name of the socket inside the data directory. */
const CONTROL_SOCKET = 'control.sock';

/** Longest socket path used, in bytes (macOS allows 103, Linux 107). */
const MAX_SOCKET_PATH = 100;

/** Where the socket of a data directory is. */
export interface SocketLocation {
  /** The socket file. */
  file: string;
  /** The private runtime directory holding it, when it is not in the data directory. */
  runtimeDir?: string;
}

/** The current user's id (Unix only; localpost does not run elsewhere). */
function uid(): number {
  return process.getuid?.() ?? 0;
}

/** `$XDG_RUNTIME_DIR/localpost` when XDG_RUNTIME_DIR names an existing directory, else `<tmpdir>/localpost-<uid>`. */
function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) {
    try {
      if (statSync(xdg).isDirectory()) return path.join(xdg, 'localpost');
    } catch {
      // unset in practice: fall through to the temp directory
    }
  }
  return path.join(os.tmpdir(), `localpost-${uid()}`);
}

/** The socket of a data directory, and the runtime directory when it had to move there. */
export function controlSocketLocation(dataDir: string): SocketLocation {
  const inData = path.join(dataDir, CONTROL_SOCKET);
  if (Buffer.byteLength(inData) <= MAX_SOCKET_PATH) return { file: inData };
  const dir = runtimeDir();
  const name = `${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16)}.sock`;
  const file = path.join(dir, name);
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
    throw new Error(
      `cannot place the control socket: ${inData} is too long for a Unix socket (over ${MAX_SOCKET_PATH} bytes), ` +
        `and so is the fallback ${file}; set XDG_RUNTIME_DIR or TMPDIR to a shorter directory, or use a shorter dataDir`,
    );
  }
  return { file, runtimeDir: dir };
}

/** The socket of a data directory (see the module comment). */
export function controlSocketPath(dataDir: string): string {
  return controlSocketLocation(dataDir).file;
}

/**
 * Refuse a runtime directory another user could control: a symlink, not a directory, not owned
 * by the current user, or with any group/other permission. Rejects with the `lstat` error
 * (ENOENT: not created yet) when it does not exist.
 */
export async function checkRuntimeDir(dir: string): Promise<void> {
  const st = await lstat(dir);
  const refuse = (why: string) =>
    new Error(
      `refusing to use ${dir} for the control socket: ${why} (remove it, or set XDG_RUNTIME_DIR to a private directory)`,
    );
  if (st.isSymbolicLink()) throw refuse('it is a symbolic link');
  if (!st.isDirectory()) throw refuse('it is not a directory');
  if (st.uid !== uid()) throw refuse(`it is owned by uid ${st.uid}, not ${uid()}`);
  if (st.mode & 0o077) throw refuse(`its mode is ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700`);
}

/** Create the runtime directory 0700 if missing, then `checkRuntimeDir` it. */
export async function ensureRuntimeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await checkRuntimeDir(dir);
}
