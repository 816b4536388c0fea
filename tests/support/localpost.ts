/**
 * Test fixtures for localpost itself: temp data dirs, config files written from a few options,
 * the CLI run as a child process (through tsx, so no build is needed), and reading the cache.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusReport } from '../../src/control/protocol.js';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface AccountSpec {
  id?: string;
  protocol: 'pop3' | 'imap';
  host?: string;
  port: number;
  tls?: 'implicit' | 'starttls' | 'none';
  tlsCa?: string;
  username?: string;
  password?: string;
  keepOnServer?: boolean;
  folders?: string[];
  idle?: boolean;
  schedule?: string;
  maxMessageSize?: string;
  uidls?: 'local' | 'upstream';
}

/** A temp directory, its `data` dir and its `config.yaml`. */
export interface TempConfig {
  dir: string;
  dataDir: string;
  configFile: string;
  cleanup(): void;
}

/**
 * The `listen:` section with every listener on loopback port 0: never the real default ports,
 * since test files run in parallel, each with its own daemons.
 */
export const LOOPBACK_LISTEN =
  'listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n';

/** A temp directory (`prefix` + random) whose `config.yaml` is `text(dataDir)`. */
export function tempConfig(prefix: string, text: (dataDir: string) => string): TempConfig {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, text(dataDir));
  return { dir, dataDir, configFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A temp directory with a config file for the given accounts. */
export function makeConfig(accounts: AccountSpec[], extra = ''): TempConfig {
  return tempConfig('lp-', (dataDir) => accountsConfig(dataDir, accounts, extra));
}

function accountsConfig(dataDir: string, accounts: AccountSpec[], extra: string): string {
  const lines = [`dataDir: ${dataDir}`, 'log:', '  level: debug'];
  if (!/^listen:/m.test(extra)) lines.push(LOOPBACK_LISTEN.trimEnd());
  lines.push('accounts:');
  for (const a of accounts) {
    const id = a.id ?? 'alice';
    lines.push(
      `  - id: ${id}`,
      `    email: ${id}@example.test`,
      '    login:',
      `      username: ${id}`,
      '      password: localpw',
      '    incoming:',
      `      protocol: ${a.protocol}`,
      `      host: ${a.host ?? '127.0.0.1'}`,
      `      port: ${a.port}`,
      `      tls: ${a.tls ?? 'none'}`,
      ...(a.tlsCa ? [`      tlsCa: ${a.tlsCa}`] : []),
      `      username: ${a.username ?? 'alice'}`,
      `      password: ${JSON.stringify(a.password ?? 'alicepw')}`,
      `      keepOnServer: ${a.keepOnServer ?? true}`,
      `      folders: [${(a.folders ?? ['INBOX']).join(', ')}]`,
      `      idle: ${a.idle ?? false}`,
      `      schedule: "${a.schedule ?? '0 0 1 1 *'}"`,
      ...(a.maxMessageSize ? [`      maxMessageSize: ${a.maxMessageSize}`] : []),
      ...(a.uidls ? [`      uidls: ${a.uidls}`] : []),
    );
  }
  return `${lines.join('\n')}\n${extra}`;
}

/**
 * Config text of one account `a` pulling as alice from a fake POP3 server on 127.0.0.1:`port`
 * without TLS; `incomingExtra` continues the `incoming:` flow mapping (`, key: value`).
 */
export function fakePop3ConfigText(port: number, dataDir: string, password = 'pw', incomingExtra = ''): string {
  return `
dataDir: ${dataDir}
accounts:
  - id: a
    email: a@example.test
    login: { password: x }
    incoming: { protocol: pop3, host: 127.0.0.1, port: ${port}, tls: none, username: alice, password: ${password}${incomingExtra} }
`;
}

/** Arguments that run the CLI from source. */
export function cliArgs(args: string[]): string[] {
  return ['--import', 'tsx', path.join(ROOT, 'src/cli/bin.ts'), ...args];
}

/** Spawn the CLI; the caller may kill it. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, cliArgs(args), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run the CLI to completion. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** `status --json`, parsed; asserts that the command succeeded. */
export async function statusJson(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<StatusReport> {
  const r = await runCli(['--config', configFile, 'status', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusReport;
}

/** A CLI process whose stdout and stderr are collected together. */
export interface CollectedCli {
  proc: ChildProcess;
  /** stdout and stderr so far, in the order they arrived. */
  out(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** `localpost start` with `configFile` (not waited for); its output is collected. */
export function spawnDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): CollectedCli {
  const proc = spawnCli(['--config', configFile, 'start'], env);
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

/** Every socket file under `root`, recursively. */
export function socketsUnder(root: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    if (e.isSocket()) out.push(p);
    else if (e.isDirectory()) out.push(...socketsUnder(p));
  }
  return out;
}

/** Files of a Maildir folder (new/ and cur/), sorted by local UID. */
export function maildirFiles(maildir: string): string[] {
  const files: Array<{ uid: number; file: string }> = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = readdirSync(path.join(maildir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /\.L([0-9A-F]+)\./.exec(n);
      files.push({ uid: m ? Number.parseInt(m[1]!, 16) : Number.MAX_SAFE_INTEGER, file: path.join(maildir, sub, n) });
    }
  }
  return files.sort((a, b) => a.uid - b.uid).map((f) => f.file);
}

/** The account's INBOX Maildir under a data dir. */
export function inboxDir(dataDir: string, account = 'alice'): string {
  return path.join(dataDir, 'accounts', account, 'Maildir');
}

/** Bytes of every cached message of a Maildir folder, in UID order. */
export function readCached(maildir: string): Buffer[] {
  return maildirFiles(maildir).map((f) => readFileSync(f));
}

/** Cached messages of a Maildir folder by their upstream key (the `K=` of the file name). */
export function readCachedByKey(maildir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of maildirFiles(maildir)) {
    const k = /,K=([A-Za-z0-9_]+)/.exec(path.basename(f));
    if (k) out.set(k[1]!, readFileSync(f));
  }
  return out;
}

/** Files left in a Maildir's tmp/. */
export function tmpFiles(maildir: string): string[] {
  try {
    return readdirSync(path.join(maildir, 'tmp'));
  } catch {
    return [];
  }
}

/** Wait until `cond()` holds, polling; throws after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * `promise`, or a rejection naming `what` once `ms` passed: a hang detector (choose `ms` far beyond
 * any slow machine, and far below the wait it tells apart), never a speed test.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `promise` settles in the current turn of the event loop: without waiting for a timer or I/O. */
export async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  const later = Symbol('later');
  const first = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise((r) => setImmediate(() => r(later))),
  ]);
  return first !== later;
}
