/**
 * Test fixtures for localpost itself: temp data dirs, config files written from a few options,
 * the CLI run as a child process (through tsx, so no build is needed), and reading the cache.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
}

/** A temp directory with a config file for the given accounts. */
export function makeConfig(accounts: AccountSpec[], extra = ''): { dir: string; dataDir: string; configFile: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-'));
  const dataDir = path.join(dir, 'data');
  const lines = [`dataDir: ${dataDir}`, 'log:', '  level: debug'];
  // never the real default ports: test files run in parallel, each with its own daemons
  if (!/^listen:/m.test(extra)) lines.push('listen:', '  pop3: { port: 0, hosts: ["127.0.0.1"] }', '  smtp: { port: 0, hosts: ["127.0.0.1"] }');
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
    );
  }
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, lines.join('\n') + '\n' + extra);
  return { dir, dataDir, configFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Arguments that run the CLI from source. */
export function cliArgs(args: string[]): string[] {
  return ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args];
}

/** Spawn the CLI; the caller may kill it. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, cliArgs(args), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Files of a Maildir folder (new/ and cur/), sorted by local UID. */
export function maildirFiles(maildir: string): string[] {
  const files: Array<{ uid: number; file: string }> = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try { names = readdirSync(path.join(maildir, sub)); } catch { continue; }
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
  try { return readdirSync(path.join(maildir, 'tmp')); } catch { return []; }
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
