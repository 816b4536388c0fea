/**
 * Single-instance lock on the data directory: `<dataDir>/localpost.lock`. A second daemon (or an
 * in-process `sync` while a daemon runs) on the same dataDir is refused with a message naming
 * the running pid; a stale lock (its owner crashed, the machine lost power) never blocks a start.
 *
 * The file is one JSON line naming its owner well enough to tell it from a later process that
 * got the same pid (after a reboot pid 1..1000 are all taken again, by other programs):
 *
 *   {"app":"localpost","pid":…,"start":"…","startClock":"proc","bootId":"…","argv1":"…","exe":"…","nonce":"…","created":"…"}
 *
 * - `start`: when the process started. On Linux field 22 of `/proc/<pid>/stat` (clock ticks
 *   since boot, `startClock: "proc"`); elsewhere `ps -o lstart=` (`startClock: "ps"`).
 * - `bootId`: `/proc/sys/kernel/random/boot_id` (Linux), `sysctl kern.boottime` (BSD, macOS).
 *
 * A lock is held only while its pid is alive (not a zombie), on the same boot, with the same
 * start time. Where /proc is missing, `ps` gives the start time and the command, which must
 * mention localpost or the recorded main script. A lock file of an older version holds a bare
 * pid: it is held only if that pid's command line looks like a localpost. When nothing can be
 * learnt about a live pid, the lock is taken to be held (two daemons on one dataDir are worse
 * than a refused start).
 *
 * Writing: the record is written and fsynced to a temp file first, then published with link()
 * (fails if the lock exists), so a reader never sees a half-written lock. Taking over a stale
 * lock is race-free between any number of concurrent starts: a taker must first create the
 * claim file `localpost.lock.takeover-<key>` (O_EXCL; `key` names the stale lock's exact inode
 * and content), then re-read the lock; only if it is still that stale lock is it replaced, by
 * rename() of the taker's temp file over it. A claim whose owner died is taken over the same way
 * (its own claim file), so a crash at any point leaves nothing that blocks the next start.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

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
export const LOCK_FILE = 'localpost.lock';

/** What the lock file holds. */
export interface LockRecord {
  app: 'localpost';
  pid: number;
  /** The process start time (see `startClock`); absent when it could not be read. */
  start?: string;
  /** `proc`: clock ticks since boot from /proc/<pid>/stat; `ps`: `ps -o lstart=`. */
  startClock?: 'proc' | 'ps';
  bootId?: string;
  /** The main script (`process.argv[1]`). */
  argv1?: string;
  /** The node executable. */
  exe?: string;
  /** Unique per lock taken: tells this lock from an earlier one of the same process. */
  nonce: string;
  created: string;
}

/** The held lock; `release()` removes the file. */
export interface InstanceLock {
  readonly file: string;
  release(): Promise<void>;
}

/** What can be learnt about a live process. */
export interface ProcessInfo {
  /** How it was learnt. */
  via: 'proc' | 'ps';
  start?: string;
  /** The command line, arguments joined by spaces; undefined when unreadable. */
  command?: string;
}

/** How long a garbled lock (a writer of the no-link() fallback mid-write) counts as busy. */
const GARBLED_GRACE_MS = 5_000;
/** How long acquireLock keeps retrying while another start is mid-takeover. */
const ACQUIRE_MS = 10_000;

/** Nonces of the locks and claims this process holds (same-pid records are judged by these). */
const ownNonces = new Set<string>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** True when a process with this pid exists (possibly a zombie). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; stdout: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, LC_ALL: 'C' }, timeout: 5_000 }, (err, stdout) => {
      resolve({ ok: !err, stdout: String(stdout), missing: code(err) === 'ENOENT' });
    });
  });
}

let procAvailable: boolean | undefined;
async function hasProc(): Promise<boolean> {
  procAvailable ??= await stat('/proc/self/stat').then(
    () => true,
    () => false,
  );
  return procAvailable;
}

/**
 * The start time and command line of `pid`; 'gone' when no such (live, non-zombie) process
 * exists; undefined when nothing can be learnt. `via` forces a source (tests).
 */
export async function processInfo(pid: number, via?: 'proc' | 'ps'): Promise<ProcessInfo | 'gone' | undefined> {
  if (!alive(pid)) return 'gone';
  if (via !== 'ps' && (await hasProc())) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch (err) {
      if (code(err) === 'ENOENT' || code(err) === 'ESRCH') return 'gone';
      return undefined; // hidden (hidepid): nothing to learn
    }
    // pid (comm) state ppid … : comm may hold spaces and parentheses, so split after the last ')'
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .trim()
      .split(/\s+/);
    const state = fields[0];
    if (state === 'Z' || state === 'X' || state === 'x') return 'gone';
    const start = fields[19]; // field 22 of stat(5); fields[0] is field 3
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').then(
      (s) => s.split('\0').filter(Boolean).join(' '),
      () => undefined,
    );
    return { via: 'proc', start: start && /^\d+$/.test(start) ? start : undefined, command };
  }
  const r = await run('ps', ['-o', 'stat=,lstart=,command=', '-p', String(pid)]);
  if (r.missing) return undefined;
  const line = r.stdout.split('\n').find((l) => l.trim());
  if (!line) return alive(pid) ? undefined : 'gone';
  const m = /^\s*(\S+)\s+(\S+\s+\S+\s+\d+\s+\d+:\d+:\d+\s+\d+)\s?(.*)$/.exec(line);
  if (!m) return { via: 'ps' };
  if (m[1]!.startsWith('Z')) return 'gone';
  return { via: 'ps', start: m[2]!.replace(/\s+/g, ' '), command: m[3]!.trim() };
}

let bootIdCache: Promise<string | undefined> | undefined;
/** An id of the current boot of this machine, or undefined where none can be read. */
export function bootId(): Promise<string | undefined> {
  bootIdCache ??= (async () => {
    const id = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (s) => s.trim(),
      () => '',
    );
    if (id) return id;
    const r = await run('sysctl', ['-n', 'kern.boottime']);
    const m = /sec\s*=\s*(\d+)/.exec(r.stdout);
    return m ? `kern.boottime:${m[1]}` : undefined;
  })();
  return bootIdCache;
}

let selfCache: Promise<Omit<LockRecord, 'nonce' | 'created'>> | undefined;
/** This process's identity (without the per-lock nonce). */
function self(): Promise<Omit<LockRecord, 'nonce' | 'created'>> {
  selfCache ??= (async () => {
    const info = await processInfo(process.pid);
    const known = info && info !== 'gone' ? info : undefined;
    return {
      app: 'localpost' as const,
      pid: process.pid,
      ...(known?.start ? { start: known.start, startClock: known.via } : {}),
      ...(await bootId().then((b) => (b ? { bootId: b } : {}))),
      ...(process.argv[1] ? { argv1: process.argv[1] } : {}),
      exe: process.execPath,
    };
  })();
  return selfCache;
}

/** A fresh record for a lock or a claim taken now. */
async function newRecord(): Promise<LockRecord> {
  return { ...(await self()), nonce: randomBytes(12).toString('hex'), created: new Date().toISOString() };
}

/** True when a command line looks like a localpost (the name, or a known main script). */
function looksLikeLocalpost(command: string, argv1?: string): boolean {
  if (/localpost/i.test(command)) return true;
  for (const script of [argv1, process.argv[1]]) if (script && command.includes(script)) return true;
  return false;
}

type Parsed = { kind: 'record'; rec: LockRecord } | { kind: 'legacy'; pid: number } | { kind: 'garbled' };

function parse(text: string): Parsed {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const pid = Number(t);
    return pid > 0 && Number.isSafeInteger(pid) ? { kind: 'legacy', pid } : { kind: 'garbled' };
  }
  try {
    const rec = JSON.parse(t) as Partial<LockRecord> | null;
    if (
      rec &&
      typeof rec === 'object' &&
      rec.app === 'localpost' &&
      Number.isSafeInteger(rec.pid) &&
      rec.pid! > 0 &&
      typeof rec.nonce === 'string'
    ) {
      return { kind: 'record', rec: rec as LockRecord };
    }
  } catch {
    // garbled
  }
  return { kind: 'garbled' };
}

/** A lock (or claim) file as read: its text and a key naming this exact inode and content. */
interface Snapshot {
  text: string;
  key: string;
  mtimeMs: number;
}

async function snapshot(file: string): Promise<Snapshot | undefined> {
  try {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      const text = await fh.readFile('utf8');
      const key = createHash('sha256').update(`${st.dev}:${st.ino}:${text}`).digest('hex').slice(0, 24);
      return { text, key, mtimeMs: st.mtimeMs };
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

type Verdict = { held: true; pid: number } | { held: false; busy?: boolean };

/** Whether the owner named by a lock (or claim) file still holds it. */
async function judge(s: Snapshot): Promise<Verdict> {
  const p = parse(s.text);
  if (p.kind === 'garbled')
    return Date.now() - s.mtimeMs < GARBLED_GRACE_MS ? { held: false, busy: true } : { held: false };
  if (p.kind === 'legacy') {
    // an older localpost's lock: held only by a live process that looks like a localpost
    if (p.pid === process.pid) return { held: false };
    const info = await processInfo(p.pid);
    if (info === 'gone') return { held: false };
    if (info?.command === undefined) return { held: true, pid: p.pid };
    return looksLikeLocalpost(info.command) ? { held: true, pid: p.pid } : { held: false };
  }
  const rec = p.rec;
  const held: Verdict = { held: true, pid: rec.pid };
  if (rec.pid === process.pid) return ownNonces.has(rec.nonce) ? held : { held: false };
  const info = await processInfo(rec.pid);
  if (info === 'gone') return { held: false };
  if (rec.bootId) {
    const now = await bootId();
    if (now && now !== rec.bootId) return { held: false };
  }
  if (!info) return held; // alive, and nothing more to learn
  if (rec.start && info.start && rec.startClock === info.via) {
    if (rec.start !== info.start) return { held: false };
    if (info.via === 'proc') return held; // same boot, pid and start tick: the very process
  }
  if (info.command === undefined) return held;
  return looksLikeLocalpost(info.command, rec.argv1) ? held : { held: false };
}

/** The pid of the live process holding the lock on `dataDir`, or undefined. */
export async function lockHolder(dataDir: string): Promise<number | undefined> {
  const s = await snapshot(path.join(dataDir, LOCK_FILE)).catch(() => undefined);
  if (!s) return undefined;
  const v = await judge(s);
  return v.held ? v.pid : undefined;
}

/** Create `file` (0600; EEXIST when it exists) holding `rec`, fsynced. */
async function writeNew(file: string, rec: LockRecord): Promise<void> {
  const fh = await open(file, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(rec)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write `rec` to a new temp file beside `file`, fsynced; returns its path. */
async function writeTemp(file: string, rec: LockRecord): Promise<string> {
  const tmp = `${file}.${process.pid}.${rec.nonce}.tmp`;
  await writeNew(tmp, rec);
  return tmp;
}

/** Publish `tmp` as `file` unless `file` exists; true when published. */
async function create(tmp: string, file: string, rec: LockRecord): Promise<boolean> {
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if (code(err) === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(code(err) ?? '')) throw err;
  }
  // no hard links on this filesystem: O_EXCL create and write (readers see it garbled meanwhile)
  try {
    await writeNew(file, rec);
    return true;
  } catch (err) {
    if (code(err) === 'EEXIST') return false; // only the O_EXCL open says EEXIST
    throw err;
  }
}

/** Remove `file` if it is still the record with this nonce. */
async function removeIfMine(file: string, nonce: string): Promise<void> {
  const s = await snapshot(file).catch(() => undefined);
  const p = s && parse(s.text);
  if (p?.kind === 'record' && p.rec.pid === process.pid && p.rec.nonce === nonce) await rm(file, { force: true });
}

/**
 * Replace `target` (last read as `stale`, judged stale) by the record in `tmp`, unless another
 * taker gets there first. 'won': `target` is now ours; 'retry': look at `target` again.
 */
async function takeOver(
  lockFile: string,
  target: string,
  stale: Snapshot,
  tmp: string,
  depth: number,
): Promise<'won' | 'retry'> {
  if (depth > 8) return 'retry';
  const claim = `${lockFile}.takeover-${stale.key}`;
  const rec = await newRecord();
  ownNonces.add(rec.nonce);
  let claimTmp: string | undefined;
  let haveClaim = false;
  try {
    claimTmp = await writeTemp(lockFile, rec);
    for (;;) {
      if (await create(claimTmp, claim, rec)) break;
      const c = await snapshot(claim);
      if (!c) continue; // its taker just finished: try again
      const v = await judge(c);
      if (v.held || v.busy) return 'retry'; // another start is taking over right now
      // the claim's owner died mid-takeover: take the claim over the same way
      if ((await takeOver(lockFile, claim, c, claimTmp, depth + 1)) === 'won') break;
      return 'retry';
    }
    haveClaim = true;
    // holding the claim on `stale`: nobody else may replace it, so check it is still there
    const now = await snapshot(target);
    if (!now || now.key !== stale.key) return 'retry';
    await rename(tmp, target);
    return 'won';
  } finally {
    if (haveClaim) await removeIfMine(claim, rec.nonce).catch(() => undefined);
    if (claimTmp) await rm(claimTmp, { force: true }).catch(() => undefined);
    ownNonces.delete(rec.nonce);
  }
}

/** Best effort: remove temp files of dead processes and claims nobody holds (we hold the lock). */
async function tidy(dataDir: string): Promise<void> {
  const names = await readdir(dataDir).catch(() => [] as string[]);
  for (const name of names) {
    const tmp = /^localpost\.lock\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
    const file = path.join(dataDir, name);
    if (tmp) {
      const pid = Number(tmp[1]);
      if (pid !== process.pid && !alive(pid)) await rm(file, { force: true }).catch(() => undefined);
    } else if (name.startsWith(`${LOCK_FILE}.takeover-`)) {
      // a claim only ever matters for a lock other than ours: a dead one is just litter
      const s = await snapshot(file).catch(() => undefined);
      const v = s && (await judge(s));
      if (v && !v.held && !v.busy) await rm(file, { force: true }).catch(() => undefined);
    }
  }
}

/** Take the lock on `dataDir` or throw LockedError. */
export async function acquireLock(dataDir: string): Promise<InstanceLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const rec = await newRecord();
  ownNonces.add(rec.nonce);
  let won = false;
  const tmp = await writeTemp(file, rec).catch((err: unknown) => {
    ownNonces.delete(rec.nonce);
    throw err;
  });
  try {
    const deadline = Date.now() + ACQUIRE_MS;
    while (!won) {
      if (await create(tmp, file, rec)) {
        won = true;
        break;
      }
      const s = await snapshot(file);
      if (!s) continue; // released meanwhile: create again
      const v = await judge(s);
      if (v.held) throw new LockedError(v.pid, dataDir);
      if (!v.busy && (await takeOver(file, file, s, tmp, 0)) === 'won') {
        won = true;
        break;
      }
      if (Date.now() > deadline) throw new Error(`could not take the lock ${file}: another start keeps it busy`);
      await sleep(5 + Math.random() * 20);
    }
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (!won) ownNonces.delete(rec.nonce);
  }
  await tidy(dataDir);
  let released = false;
  return {
    file,
    release: async () => {
      if (released) return;
      released = true;
      await removeIfMine(file, rec.nonce);
      ownNonces.delete(rec.nonce);
    },
  };
}
