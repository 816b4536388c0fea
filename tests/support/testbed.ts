/**
 * Test-side control of a real upstream (Dovecot + Postfix on loopback) from `tests/testbed/`.
 *
 * Every `startTestbed()` gets its own short DIR (`/tmp/lpt-XXXXXX`) and its own block of six
 * free ports, so test files running in parallel processes never share an instance. Ports are
 * probed first; a race with another process that grabs them meanwhile ("Address already in use")
 * is handled by stopping the half-started instance and retrying with a new block.
 *
 * Start-up is fast (~0.15 s) because the scripts reuse a per-machine cache
 * (`TESTBED_CACHE=/tmp/localpost-testbed-cache`: certificate + Postfix queue skeleton).
 *
 * Safety nets, so a crashing test file leaves nothing behind: a process 'exit' handler stops
 * every instance still running (synchronously), and each instance has a tiny detached watchdog
 * shell that stops it and removes DIR once this process is gone (covers SIGKILL too).
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One running testbed instance and the helpers that act on its upstream Maildirs. */
export interface Testbed {
  dir: string;
  imapPort: number;
  imapsPort: number;
  pop3Port: number;
  pop3sPort: number;
  smtpPort: number;
  smtpsPort: number;
  /** The self-signed certificate (CN=localhost, SAN 127.0.0.1) to trust. */
  caCert: string;
  /** False when Postfix was not started (`postfix: false`, or not root): skip SMTP tests. */
  hasPostfix: boolean;
  /** Write `n` varied messages into the user's INBOX (seed-mailbox.sh); `reset` empties it first (changes UIDVALIDITY). */
  seed(user: string, n: number, size?: number, opts?: { reset?: boolean; archiveN?: number }): Promise<void>;
  /** The user's upstream INBOX Maildir path. */
  maildir(user: string): string;
  /** Number of message files in `cur/` + `new/` of the user's folder (default INBOX). */
  countUpstream(user: string, folder?: string): number;
  /** Write raw bytes as one message straight into the upstream Maildir (tmp → cur, owned by the mail user). */
  appendMessage(user: string, raw: Buffer, folder?: string): Promise<void>;
  /**
   * Make Dovecot forget the UIDs of the user's INBOX, as a server move would: same messages, a new
   * UIDVALIDITY. Its `dovecot-uidvalidity` counter stays, so the new value is always a different
   * one (without it Dovecot takes the clock's second, which may equal the old value).
   */
  forgetUids(user: string): void;
  /** Stop Dovecot and Postfix and remove DIR. Idempotent. */
  stop(): Promise<void>;
}

/** The project root (this file lives in tests/support/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPTS = join(REPO_ROOT, 'tests/testbed');
/** Per-machine cache of the certificate and Postfix queue skeleton (see tests/testbed/README.md). */
export const TESTBED_CACHE = '/tmp/localpost-testbed-cache';
// Below Linux's ephemeral range (32768–60999), so outgoing connections never take our ports.
const PORT_LOW = 20000;
const PORT_HIGH = 32700;
const ATTEMPTS = 6;

interface Live {
  dir: string;
  watchdog: number | undefined;
}
const live = new Map<string, Live>();
let exitHookInstalled = false;

/** Synchronous last-resort cleanup of every instance this process still runs. */
function cleanupAllSync(): void {
  for (const inst of live.values()) {
    if (inst.watchdog !== undefined) {
      try {
        process.kill(inst.watchdog);
      } catch {
        /* gone */
      }
    }
    try {
      execFileSync(join(SCRIPTS, 'upstream-down.sh'), [inst.dir], { stdio: 'ignore', timeout: 15_000 });
    } catch {
      /* best effort */
    }
    rmSync(inst.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanupAllSync);
}

/** A detached shell that tears the instance down once `ppid` is gone (even after SIGKILL). */
function spawnWatchdog(dir: string): number | undefined {
  const script = 'while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; "$2" "$3" >/dev/null 2>&1; rm -rf "$3"';
  const child = spawn(
    '/bin/sh',
    ['-c', script, 'lpt-watchdog', String(process.pid), join(SCRIPTS, 'upstream-down.sh'), dir],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return child.pid;
}

/** True when nothing listens on 127.0.0.1:port and we may bind it. */
function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => res(true)));
  });
}

/** Six consecutive free ports from a random block. */
async function pickPorts(): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const base = PORT_LOW + 6 * Math.floor(Math.random() * ((PORT_HIGH - PORT_LOW) / 6));
    const ports = [0, 1, 2, 3, 4, 5].map((k) => base + k);
    const free = await Promise.all(ports.map(portFree));
    if (free.every(Boolean)) return ports;
  }
  throw new Error('testbed: no free block of 6 ports found');
}

/** Run a testbed script with output appended to `log` (never a pipe: the daemons inherit it). */
function runScript(name: string, args: string[], env: NodeJS.ProcessEnv, log: string): Promise<number> {
  return new Promise((res, rej) => {
    const fd = openSync(log, 'a');
    const child = spawn(join(SCRIPTS, name), args, { env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.once('error', rej);
    child.once('exit', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([A-Z_][A-Z0-9_]*)=("([^"]*)"|\S*)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}

function readTail(file: string, max = 4000): string {
  try {
    const t = readFileSync(file, 'utf8');
    return t.slice(-max);
  } catch {
    return '';
  }
}

let appendSeq = 0;

/** Start a fresh instance on its own ports and DIR; `postfix: false` skips Postfix; `env` adds script knobs. */
export async function startTestbed(opts: { postfix?: boolean; env?: Record<string, string> } = {}): Promise<Testbed> {
  installExitHook();
  let lastError = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const dir = mkdtempSync('/tmp/lpt-');
    const inst: Live = { dir, watchdog: undefined };
    live.set(dir, inst);
    inst.watchdog = spawnWatchdog(dir);
    const [imap, imaps, pop3, pop3s, smtp, smtps] = await pickPorts();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TESTBED_CACHE,
      ...(opts.postfix === false ? { POSTFIX: '0' } : {}),
      ...opts.env,
      IMAP_PORT: String(imap),
      IMAPS_PORT: String(imaps),
      POP3_PORT: String(pop3),
      POP3S_PORT: String(pop3s),
      SMTP_PORT: String(smtp),
      SMTPS_PORT: String(smtps),
    };
    const log = join(dir, 'testbed.log');
    const code = await runScript('upstream-up.sh', [dir], env, log);
    if (code === 0) {
      const e = parseEnv(readFileSync(join(dir, 'env'), 'utf8'));
      return makeTestbed(inst, e);
    }
    lastError = [
      readTail(log),
      readTail(join(dir, 'log/dovecot.log'), 1500),
      readTail(join(dir, 'log/postfix.log'), 1500),
    ].join('\n');
    await stopInstance(inst);
    // Only a port race is worth another block; anything else is a real failure.
    if (!/in use|not listening/i.test(lastError)) break;
  }
  throw new Error(`testbed: upstream-up.sh failed:\n${lastError}`);
}

async function stopInstance(inst: Live): Promise<void> {
  if (!live.has(inst.dir)) return;
  if (inst.watchdog !== undefined) {
    try {
      process.kill(inst.watchdog);
    } catch {
      /* gone */
    }
  }
  await runScript('upstream-down.sh', [inst.dir], process.env, '/dev/null');
  rmSync(inst.dir, { recursive: true, force: true });
  live.delete(inst.dir);
}

function makeTestbed(inst: Live, e: Record<string, string>): Testbed {
  const dir = inst.dir;
  const num = (k: string): number => Number(e[k]);
  const maildir = (user: string): string => {
    const u = user.includes('@') ? user : `${user}@example.test`;
    for (const line of readFileSync(join(dir, 'etc/users'), 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === u && f[5]) return join(f[5], 'Maildir');
    }
    throw new Error(`testbed: unknown user ${user}`);
  };
  const folderDir = (user: string, folder = 'INBOX'): string =>
    folder === 'INBOX' ? maildir(user) : join(maildir(user), `.${folder.replace(/\//g, '.')}`);
  return {
    dir,
    imapPort: num('IMAP_PORT'),
    imapsPort: num('IMAPS_PORT'),
    pop3Port: num('POP3_PORT'),
    pop3sPort: num('POP3S_PORT'),
    smtpPort: num('SMTP_PORT'),
    smtpsPort: num('SMTPS_PORT'),
    caCert: e.CA_CERT ?? join(dir, 'ssl/cert.pem'),
    hasPostfix: (e.POSTFIX_PID ?? 'none') !== 'none',
    async seed(user, n, size, o = {}) {
      const env: NodeJS.ProcessEnv = { ...process.env };
      if (o.reset) env.RESET = '1';
      if (o.archiveN !== undefined) env.ARCHIVE_N = String(o.archiveN);
      const log = join(dir, 'seed.log');
      const args = [dir, user, String(n), ...(size !== undefined ? [String(size)] : [])];
      const code = await runScript('seed-mailbox.sh', args, env, log);
      if (code !== 0) throw new Error(`testbed: seed-mailbox.sh failed (${code}):\n${readTail(log)}`);
    },
    maildir,
    countUpstream(user, folder) {
      const d = folderDir(user, folder);
      let n = 0;
      for (const sub of ['cur', 'new']) if (existsSync(join(d, sub))) n += readdirSync(join(d, sub)).length;
      return n;
    },
    async appendMessage(user, raw, folder) {
      const root = maildir(user);
      const d = folderDir(user, folder);
      const { uid, gid } = statSync(root);
      for (const sub of ['', 'tmp', 'cur', 'new']) {
        const p = join(d, sub);
        if (!existsSync(p)) {
          mkdirSync(p, { recursive: true });
          chownSync(p, uid, gid);
        }
      }
      if (d !== root && !existsSync(join(d, 'maildirfolder'))) writeFileSync(join(d, 'maildirfolder'), '');
      const now = Date.now();
      const name = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++appendSeq}.localpost-test`;
      const tmp = join(d, 'tmp', name);
      writeFileSync(tmp, raw);
      chownSync(tmp, uid, gid);
      renameSync(tmp, join(d, 'cur', `${name}:2,`));
    },
    forgetUids(user) {
      const md = maildir(user);
      for (const f of readdirSync(md))
        if (f.startsWith('dovecot') && !f.startsWith('dovecot-uidvalidity'))
          rmSync(join(md, f), { recursive: true, force: true });
    },
    stop: () => stopInstance(inst),
  };
}
