/**
 * Whether localpost may trust a path it did not create just now: the config file (its
 * `{ command }` secrets run as the daemon's user, so whoever can change it runs code as us) and
 * the data directory (mail, state, tokens). The rules, one pure function over `lstat`/`stat`
 * results (`trustProblem`), are in docs/security.md:
 *
 * - the config file: a regular file, owned by the daemon's user or root, writable by no one else;
 * - the directory holding it: owned by the daemon's user or root, writable by no one else (a
 *   sticky bit is no excuse: the file could still be created there by another user first);
 * - every directory above those, up to but excluding `/`: owned by the daemon's user or root, and
 *   not writable by others unless sticky (in a sticky `/tmp` only the owner renames its entries);
 * - the data directory: not a symbolic link, a directory, owned by the daemon's user; group and
 *   other bits are removed (`chmod 0700`, logged) rather than refused, since it is ours.
 *
 * A refusal is a ConfigError (exit 78) naming the path, its owner and its mode.
 */
import { chmod, lstat, mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from './errors.js';

/** What the rule reads of a `stat` or `lstat` result. */
export interface StatLike {
  uid: number;
  mode: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** Which rule applies: see the module comment. */
export type TrustRole = 'config' | 'config-dir' | 'ancestor' | 'data-dir';

const ROOT_UID = 0;
const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** The daemon's effective uid (Unix only; localpost does not run elsewhere). */
export const currentUid = (): number => process.geteuid?.() ?? ROOT_UID;

/** `0644`, as `ls -l` users and chmod read it. */
export const octalMode = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** Why `st`, in role `role`, cannot be trusted by a process running as `uid`; undefined when it can. */
export function trustProblem(role: TrustRole, st: StatLike, uid: number): string | undefined {
  if (role === 'data-dir') {
    if (st.isSymbolicLink()) return 'it is a symbolic link';
    if (!st.isDirectory()) return 'it is not a directory';
    if (st.uid !== uid) return `it is owned by uid ${st.uid}, not by the daemon's user (uid ${uid})`;
    return undefined;
  }
  if (role === 'config' && !st.isFile()) return 'it is not a regular file';
  if (role !== 'config' && !st.isDirectory()) return 'it is not a directory';
  if (st.uid !== uid && st.uid !== ROOT_UID)
    return `it is owned by uid ${st.uid}, neither the daemon's user (uid ${uid}) nor root`;
  if ((st.mode & GROUP_OR_OTHER_WRITE) === 0) return undefined;
  if (role === 'ancestor' && (st.mode & STICKY) !== 0) return undefined;
  const who = [st.mode & 0o020 ? 'group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
  return `it is writable by ${who}`;
}

const ROLE_TEXT: Record<TrustRole, string> = {
  config: 'the config file',
  'config-dir': 'the directory of the config file',
  ancestor: 'a directory above',
  'data-dir': 'the data directory',
};

/** The ConfigError for `p` failing its rule: path, problem, owner and mode, and what to do. */
function refusal(role: TrustRole, p: string, st: StatLike, why: string, subject: string): ConfigError {
  const owner = `owner uid ${st.uid}, mode ${octalMode(st.mode)}`;
  const fix =
    role === 'data-dir'
      ? 'use a real directory owned by the user localpost runs as (see docs/security.md)'
      : 'chown it to the user localpost runs as (or root) and chmod go-w (see docs/security.md)';
  const where = role === 'ancestor' ? `${ROLE_TEXT[role]} ${subject}, ${p}` : `${ROLE_TEXT[role]} ${p}`;
  return new ConfigError(`refusing ${where}: ${why} (${owner}); ${fix}`);
}

/** `fn(p)`, or undefined when nothing is at `p` (ENOENT). */
async function unlessMissing<T>(fn: (p: string) => Promise<T>, p: string): Promise<T | undefined> {
  try {
    return await fn(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `dir` and every directory above it, `/` excluded. */
function chain(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; path.dirname(d) !== d; d = path.dirname(d)) out.push(d);
  return out;
}

/** Checks the directories above `subject` from `dir` up (their real paths); throws ConfigError. */
async function checkAncestors(dir: string, subject: string, uid: number, seen: Set<string>): Promise<void> {
  for (const d of chain(await realpath(dir))) {
    if (seen.has(d)) continue;
    seen.add(d);
    const st = await stat(d);
    const why = trustProblem('ancestor', st, uid);
    if (why) throw refusal('ancestor', d, st, why, subject);
  }
}

/**
 * Throws a ConfigError unless the config file `file` and the directories it lies in are safe
 * (module comment); returns its real path, the file to read. A missing file is left to the
 * reader, whose error says where it looked.
 */
export async function checkConfigTrust(file: string, uid = currentUid()): Promise<string> {
  const real = await unlessMissing((p) => realpath(p), file);
  if (real === undefined) return file;
  const st = await stat(real);
  const why = trustProblem('config', st, uid);
  if (why) throw refusal('config', file, st, why, file);
  const seen = new Set<string>();
  // the real file's directory, and the one the given name lies in when a symlink leads elsewhere
  for (const dir of new Set([path.dirname(real), await realpath(path.dirname(path.resolve(file)))])) {
    seen.add(dir);
    const dst = await stat(dir);
    const dirWhy = trustProblem('config-dir', dst, uid);
    if (dirWhy) throw refusal('config-dir', dir, dst, dirWhy, file);
    await checkAncestors(path.dirname(dir), file, uid, seen);
  }
  return real;
}

/**
 * What is wrong with the data directory `dir` as found, without changing anything: a refusal,
 * a mode that `ensureDataDir` would tighten, or nothing (also when it does not exist yet).
 */
export async function dataDirProblem(
  dir: string,
  uid = currentUid(),
): Promise<{ refused?: string; loose?: string } | undefined> {
  const st = await unlessMissing((p) => lstat(p), dir);
  if (!st) return undefined;
  const why = trustProblem('data-dir', st, uid);
  if (why) return { refused: refusal('data-dir', dir, st, why, dir).message };
  try {
    await checkAncestors(path.dirname(path.resolve(dir)), dir, uid, new Set());
  } catch (err) {
    if (err instanceof ConfigError) return { refused: err.message };
    throw err;
  }
  if (st.mode & 0o077) return { loose: `the data directory ${dir} is mode ${octalMode(st.mode)}; start makes it 0700` };
  return undefined;
}

/**
 * Creates the data directory `dir` (mode 0700) or checks the one found: a refusal is a
 * ConfigError; group or other permissions on our own directory are removed, with a log line.
 */
export async function ensureDataDir(
  dir: string,
  log?: { warn(obj: object, msg: string): void },
  uid = currentUid(),
): Promise<void> {
  let st = await unlessMissing((p) => lstat(p), dir);
  if (!st) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    st = await lstat(dir);
  }
  const why = trustProblem('data-dir', st, uid);
  if (why) throw refusal('data-dir', dir, st, why, dir);
  await checkAncestors(path.dirname(path.resolve(dir)), dir, uid, new Set());
  if (st.mode & 0o077) {
    await chmod(dir, 0o700);
    log?.warn(
      { dataDir: dir, mode: octalMode(st.mode) },
      `the data directory was mode ${octalMode(st.mode)}: now 0700, private to the daemon's user`,
    );
  }
}
