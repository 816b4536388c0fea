/**
 * What the benchmark sections share: the compiled CLI run as a daemon (`localpost start` on a
 * config written here, timed to its POP3 greeting), a Python poplib client, free ports, and RSS
 * read from /proc. Everything runs the compiled build (bin/localpost → dist/), as users do.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON } from '../tests/support/python.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(REPO, 'bin/localpost');

/** Options every section receives. */
export interface SectionOptions {
  quick: boolean;
  /** Scratch directory of the run (removed at the end). */
  work: string;
  log: (line: string) => void;
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** One account of a daemon config: pulls `username` from 127.0.0.1:`port`; local login `id`/`localpw`. */
export interface BenchAccount {
  id: string;
  protocol: 'pop3' | 'imap';
  port: number;
  username: string;
  password: string;
  folders?: string[];
}

/** Config text: POP3 listener on `pop3Port`, SMTP on a free port, pulls once a year (never during a run). */
export function daemonConfig(
  dataDir: string,
  pop3Port: number,
  accounts: BenchAccount[],
  opts: { imapPort?: number } = {},
): string {
  const lines = [
    `dataDir: ${dataDir}`,
    'log: { level: warn }',
    'listen:',
    `  pop3: { port: ${pop3Port}, hosts: ["127.0.0.1"] }`,
    '  smtp: { port: 0, hosts: ["127.0.0.1"] }',
    `  imap: { port: ${opts.imapPort ?? 0}, hosts: ["127.0.0.1"] }`,
    'accounts:',
  ];
  for (const a of accounts)
    lines.push(
      `  - id: ${a.id}`,
      `    email: ${a.id}@example.test`,
      `    login: { username: ${a.id}, password: localpw }`,
      '    incoming:',
      `      protocol: ${a.protocol}`,
      '      host: 127.0.0.1',
      `      port: ${a.port}`,
      '      tls: none',
      `      username: ${a.username}`,
      `      password: ${a.password}`,
      '      keepOnServer: true',
      `      folders: [${(a.folders ?? ['INBOX']).join(', ')}]`,
      '      idle: false',
      '      schedule: "0 0 1 1 *"',
    );
  return `${lines.join('\n')}\n`;
}

/** A running `localpost start`. */
export interface Daemon {
  proc: ChildProcess;
  pid: number;
  /** Milliseconds from spawn to the POP3 greeting. */
  startMs: number;
  stop(): Promise<void>;
}

/** Resolves once 127.0.0.1:`port` answers with a POP3 `+OK` greeting; polls every 10 ms. */
export async function waitGreeting(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('data', (d: Buffer) => {
        s.destroy();
        res(d.toString('latin1').startsWith('+OK'));
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (!alive()) throw new Error('the daemon exited before listening');
    if (Date.now() > end) throw new Error(`no POP3 greeting on port ${port} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `localpost --config FILE start`, timed to its POP3 greeting on `pop3Port`; output to `logFile`. */
export async function startDaemon(
  configFile: string,
  pop3Port: number,
  logFile: string,
  opts: { wrap?: string[]; timeoutMs?: number } = {},
): Promise<Daemon> {
  const fd = openSync(logFile, 'a');
  const argv = [process.execPath, BIN, '--config', configFile, 'start'];
  const [cmd, ...args] = [...(opts.wrap ?? []), ...argv] as [string, ...string[]];
  const t0 = performance.now();
  const proc = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = false;
  const done = new Promise<void>((r) =>
    proc.once('exit', () => {
      exited = true;
      r();
    }),
  );
  try {
    await waitGreeting(pop3Port, opts.timeoutMs ?? 120_000, () => !exited);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; log: ${readFileSync(logFile, 'utf8').slice(-1500)}`);
  }
  const startMs = performance.now() - t0;
  return {
    proc,
    pid: proc.pid ?? 0,
    startMs,
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await done;
      clearTimeout(t);
    },
  };
}

/** Write a daemon config for `accounts` into `dir/config.yaml`; returns its path. */
export function writeDaemonConfig(
  dir: string,
  dataDir: string,
  pop3Port: number,
  accounts: BenchAccount[],
  opts: { imapPort?: number } = {},
): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, daemonConfig(dataDir, pop3Port, accounts, opts), { mode: 0o600 });
  return file;
}

const POPLIB = `
import poplib, sys, time
poplib._MAXLINE = 1 << 24
port, user, pw, retr = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == '1'
t0 = time.perf_counter()
p = poplib.POP3('127.0.0.1', port); p.user(user); p.pass_(pw)
n = p.stat()[0]; p.uidl()
t1 = time.perf_counter()
total = 0
if retr:
    for i in range(1, n + 1):
        total += len(p.retr(i)[1])
p.quit()
print(n, total, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
`;

/** What one poplib session measured: login+STAT+UIDL, then (with `retr`) RETR of every message. */
export interface PoplibRun {
  n: number;
  /** Lines received over all RETRs (a cheap check that both servers sent the same messages). */
  lines: number;
  loginMs: number;
  retrMs: number;
}

/** One Python poplib session against 127.0.0.1:`port`. */
export function poplib(port: number, user: string, pass: string, retr: boolean): Promise<PoplibRun> {
  return new Promise((res, rej) =>
    execFile(
      PYTHON,
      ['-c', POPLIB, String(port), user, pass, retr ? '1' : '0'],
      { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 600_000 },
      (err, stdout, stderr) => {
        if (err) return rej(new Error(`poplib: ${stderr || err.message}`));
        const [n, lines, loginMs, retrMs] = stdout.trim().split(' ').map(Number);
        res({ n: n ?? 0, lines: lines ?? 0, loginMs: loginMs ?? 0, retrMs: retrMs ?? 0 });
      },
    ),
  );
}

/** The Python poplib script (for a floor measured as a whole process). */
export const POPLIB_SCRIPT = POPLIB;

/** Resident and peak-resident memory of a process, in MB (null once it is gone). */
export function rssMb(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** First line of `cmd args` output (a tool's version), or '?'. */
export function versionOf(cmd: string, args: string[]): Promise<string> {
  return new Promise((res) =>
    execFile(cmd, args, { encoding: 'utf8' }, (_e, out, err) =>
      res(
        `${out}\n${err}`
          .split('\n')
          .map((l) => l.trim())
          .find(Boolean) ?? '?',
      ),
    ),
  );
}
