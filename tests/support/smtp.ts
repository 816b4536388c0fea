/**
 * Fixtures for the local SMTP listener, in layers: `startSmtp()` gives a
 * listener on 127.0.0.1 and ::1 (port 0) over a real Outbox; `dialog()` opens a raw
 * connection that sends command lines and reads whole (multi-line) replies.
 */

import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { OutboxOptions } from '../../src/cache/outbox/outbox.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { SmtpListener, type SmtpListenerOptions } from '../../src/listeners/smtp/server.js';
import type { SubmissionAccount } from '../../src/listeners/smtp/submission.js';
import { spawnCli, waitFor } from './localpost.js';
import { type OutboxFixture, outboxFixture, silentLog } from './outbox.js';
import { PYTHON } from './python.js';

/** A listener over an outbox fixture. */
export interface SmtpFixture {
  listener: SmtpListener;
  port: number;
  fx: OutboxFixture;
  close(): Promise<void>;
}

/** Accounts: alice (sends, 1 MiB limit), bob (sends, 10 MiB), recv (receive-only). */
export const ACCOUNTS: SubmissionAccount[] = [
  { id: 'alice', maxMessageSize: 1024 * 1024, canSend: true },
  { id: 'bob', maxMessageSize: 10 * 1024 * 1024, canSend: true },
  { id: 'recv', maxMessageSize: 1024 * 1024, canSend: false },
];

/** Start a listener; `over` replaces listener options (e.g. a logger, TLS). */
export async function startSmtp(
  over: Partial<SmtpListenerOptions> = {},
  log: Logger = silentLog,
  outboxOpts: Partial<OutboxOptions> = {},
): Promise<SmtpFixture> {
  const fx = await outboxFixture(outboxOpts);
  const auth = new LocalAuth(
    [
      { accountId: 'alice', username: 'alice', password: 'alicepw-local' },
      { accountId: 'bob', username: 'bob', password: 'bobpw-local' },
      { accountId: 'recv', username: 'recv', password: 'recvpw' },
    ],
    { baseDelayMs: 0 },
  );
  const accounts = new Map(ACCOUNTS.map((a) => [a.id, a]));
  const listener = new SmtpListener({
    hosts: ['127.0.0.1', '::1'],
    port: 0,
    auth,
    accounts: () => accounts,
    outbox: fx.outbox,
    log,
    ...over,
  });
  await listener.start();
  return {
    listener,
    port: listener.port,
    fx,
    close: async () => {
      await listener.stop();
      await fx.close();
    },
  };
}

/** A raw SMTP conversation. */
export interface Dialog {
  /** The greeting line(s). */
  greeting: string[];
  /** Send one line (CRLF added) and read the whole reply. */
  cmd(line: string): Promise<string[]>;
  /** Send raw bytes (a string is latin1) and read one reply. */
  send(bytes: Buffer | string): Promise<string[]>;
  /** Write raw bytes without waiting for anything. */
  write(bytes: Buffer | string): void;
  /** Everything received so far. */
  transcript(): string;
  close(): void;
  socket: net.Socket;
}

/** Open a raw connection and read the greeting. */
export async function dialog(port: number, host = '127.0.0.1'): Promise<Dialog> {
  const socket = net.connect({ host, port });
  let buf = '';
  let all = '';
  let waiter: (() => void) | undefined;
  socket.on('data', (b: Buffer) => {
    buf += b.toString('latin1');
    all += b.toString('latin1');
    waiter?.();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => waiter?.());
  const reply = async (): Promise<string[]> => {
    for (;;) {
      const lines = buf.split('\r\n');
      const end = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
      if (end >= 0) {
        buf = lines.slice(end + 1).join('\r\n');
        return lines.slice(0, end + 1);
      }
      if (socket.destroyed) throw new Error(`connection closed; received: ${JSON.stringify(all)}`);
      await new Promise<void>((r) => {
        waiter = r;
      });
      waiter = undefined;
    }
  };
  await new Promise<void>((r, j) => {
    socket.once('connect', () => r());
    socket.once('error', j);
  });
  const greeting = await reply();
  return {
    greeting,
    socket,
    cmd: (line) => {
      socket.write(Buffer.from(`${line}\r\n`, 'latin1'));
      return reply();
    },
    send: (bytes) => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
      return reply();
    },
    write: (bytes) => {
      socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    },
    transcript: () => all,
    close: () => socket.destroy(),
  };
}

/** A dialog after `EHLO x` and a successful `AUTH PLAIN` (the next fixture layer). */
export async function authenticated(port: number, user: string, pass: string, host = '127.0.0.1'): Promise<Dialog> {
  const d = await dialog(port, host);
  await d.cmd('EHLO x');
  const r = await d.cmd(`AUTH PLAIN ${plain(user, pass)}`);
  if (!r[0]!.startsWith('235')) throw new Error(`AUTH failed: ${r.join(' ')}`);
  return d;
}

/** MAIL, RCPT and DATA on an authenticated dialog; resolves once the server said 354. */
export async function startData(d: Dialog, from = 'a@b', to = 'b@c'): Promise<void> {
  await d.cmd(`MAIL FROM:<${from}>`);
  await d.cmd(`RCPT TO:<${to}>`);
  const r = await d.cmd('DATA');
  if (!r[0]!.startsWith('354')) throw new Error(`DATA refused: ${r.join(' ')}`);
}

/** base64 of a SASL PLAIN initial response. */
export function plain(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/** A throw-away self-signed certificate for localhost / 127.0.0.1 (PEM file paths). */
export function selfSignedCert(): { cert: string; key: string; dir: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-cert-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key, dir };
}

const SMTPLIB = `
import smtplib, sys
host, port, user, pw, mode, path, sender = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
rcpts = sys.argv[8:]
s = smtplib.SMTP(host, port, timeout=30)
s.set_debuglevel(1)
s.ehlo('client.example')
if mode == 'login':
    s.user, s.password = user, pw
    code, resp = s.auth('LOGIN', s.auth_login, initial_response_ok=False)
else:
    code, resp = s.login(user, pw)
print('AUTH', code)
msg = open(path, 'rb').read()
code, resp = s.mail(sender, ['size=%d' % len(msg)])
for r in rcpts:
    s.rcpt(r)
code, resp = s.data(msg)
print('DATA', code, resp.decode())
s.quit()
`;

/** Submit a message file with Python's smtplib (debug transcript on stderr). */
export function smtplibSend(o: {
  port: number;
  host?: string;
  user: string;
  pass: string;
  mode?: 'plain' | 'login';
  file: string;
  from: string;
  to: string[];
}): Promise<{ stdout: string; stderr: string }> {
  const args = [
    '-c',
    SMTPLIB,
    o.host ?? '127.0.0.1',
    String(o.port),
    o.user,
    o.pass,
    o.mode ?? 'plain',
    o.file,
    o.from,
    ...o.to,
  ];
  return new Promise((res, rej) => {
    execFile(PYTHON, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`smtplib failed: ${err.message}\n${stderr}`)) : res({ stdout, stderr }),
    );
  });
}

/** An account for `daemonConfig`. */
export interface DaemonAccount {
  id: string;
  incoming: {
    protocol: 'pop3' | 'imap';
    port: number;
    username: string;
    password: string;
    host?: string;
    folders?: string[];
  };
  outgoing?: {
    port: number;
    username: string;
    password: string;
    host?: string;
    tls?: 'none' | 'starttls' | 'implicit';
    tlsCa?: string;
    saveSent?: string;
    maxConnections?: number;
  };
}

/** A config file for a daemon test: local login `<id>` / `localpw`, yearly schedule, fast probes, any free listen ports unless `ports`. */
export function daemonConfig(
  dir: string,
  accounts: DaemonAccount[],
  o: { retry?: string; probe?: string; extra?: string; ports?: { pop3: number; smtp: number; imap?: number } } = {},
): string {
  const lines = [
    `dataDir: ${path.join(dir, 'data')}`,
    'log:',
    '  level: debug',
    'listen:',
    `  pop3: { port: ${o.ports?.pop3 ?? 0} }`,
    `  smtp: { port: ${o.ports?.smtp ?? 0} }`,
    `  imap: { port: ${o.ports?.imap ?? 0} }`,
    'outbox:',
    `  retry: { initial: ${o.retry ?? '1h'}, max: ${o.retry ?? '1h'} }`,
    'connectivity:',
    `  probeInterval: ${o.probe ?? '300ms'}`,
    '  probeTimeout: 1s',
    'accounts:',
  ];
  for (const a of accounts) {
    lines.push(
      `  - id: ${a.id}`,
      `    email: ${a.id}@example.test`,
      '    login: { password: localpw }',
      '    incoming:',
      `      protocol: ${a.incoming.protocol}`,
      `      host: ${a.incoming.host ?? '127.0.0.1'}`,
      `      port: ${a.incoming.port}`,
      '      tls: none',
      `      username: ${a.incoming.username}`,
      `      password: ${JSON.stringify(a.incoming.password)}`,
      '      schedule: "0 0 1 1 *"',
      '      idle: false',
      ...(a.incoming.folders ? [`      folders: [${a.incoming.folders.join(', ')}]`] : []),
    );
    if (a.outgoing) {
      const g = a.outgoing;
      lines.push(
        '    outgoing:',
        `      host: ${g.host ?? '127.0.0.1'}`,
        `      port: ${g.port}`,
        `      tls: ${g.tls ?? 'none'}`,
        ...(g.tlsCa ? [`      tlsCa: ${g.tlsCa}`] : []),
        ...(g.saveSent ? [`      saveSent: ${g.saveSent}`] : []),
        ...(g.maxConnections ? [`      maxConnections: ${g.maxConnections}`] : []),
        `      username: ${g.username}`,
        `      password: ${JSON.stringify(g.password)}`,
      );
    }
  }
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, `${lines.join('\n')}\n${o.extra ?? ''}`);
  return file;
}

/** A daemon child process (`localpost start`) and what it logged. */
export interface DaemonProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown> & { msg?: string }>;
  /** The local SMTP port. */
  smtpPort: number;
  /** Wait for a log line whose msg matches. */
  waitLog(re: RegExp, ms?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

/** Start `localpost start` and wait until its SMTP listener is ready. */
export async function startDaemon(configFile: string): Promise<DaemonProcess> {
  const child = spawnCli(['--config', configFile, 'start']);
  const logs: DaemonProcess['logs'] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => {
    const parts = (partial + b.toString()).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      try {
        logs.push(JSON.parse(l));
      } catch {
        /* not JSON */
      }
    }
  });
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code, signal) => {
      // a death by signal is reported with what the daemon said last, to tell a crash from a kill
      if (code === null) process.stderr.write(`daemon ${child.pid} died of ${signal}: ${stderr.slice(-2000)}\n`);
      r(code);
    }),
  );
  const waitLog = async (re: RegExp, ms = 60_000) => {
    let found: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        found = logs.find((l) => typeof l.msg === 'string' && re.test(l.msg));
        return found !== undefined || child.exitCode !== null;
      },
      ms,
      `log ${re}`,
    );
    if (!found)
      throw new Error(
        `daemon exited (${child.exitCode}) before logging ${re}: ${stderr}\n${JSON.stringify(logs.slice(-10))}`,
      );
    return found;
  };
  let ready: Record<string, unknown>;
  try {
    ready = await waitLog(/^SMTP listener ready$/);
  } catch (err) {
    // a daemon nobody can stop would keep the test file's process alive for ever
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  const smtpPort = (ready.addresses as Array<{ port: number }>)[0]!.port;
  return {
    child,
    logs,
    smtpPort,
    waitLog,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A TCP relay on `port` to `target` that can be switched on and off (an upstream that comes and goes). */
export function relay(port: number, target: number): { up(): Promise<void>; down(): Promise<void> } {
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  return {
    async up() {
      server = net.createServer((c) => {
        const u = net.connect({ host: '127.0.0.1', port: target });
        for (const s of [c, u]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        c.pipe(u).pipe(c);
      });
      await new Promise<void>((r, j) => {
        server!.once('error', j);
        server!.listen(port, '127.0.0.1', () => r());
      });
    },
    async down() {
      const s = server;
      server = undefined;
      for (const x of sockets) x.destroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
