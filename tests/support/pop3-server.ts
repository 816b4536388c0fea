/**
 * Layered fixtures for the local POP3 server: `startPop3()` gives a server on
 * 127.0.0.1:0 over a fresh cache holding the given messages; `Pop3Conn` is a raw line client
 * (any bytes, any pipelining) with `connected()` / `authenticated()` helpers on top.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import { LocalAuth, type LocalUser } from '../../src/listeners/local-auth.js';
import { CacheBackend, type LocalDeletePolicy } from '../../src/listeners/pop3/backend.js';
import { Pop3Server, type Pop3ServerOptions } from '../../src/listeners/pop3/server.js';

/** A running server over a temp cache. */
export interface Pop3Fixture {
  server: Pop3Server;
  port: number;
  cache: Cache;
  dataDir: string;
  backend: CacheBackend;
  /** Add messages to an account's INBOX (committed). */
  add(messages: Array<Buffer | string>, account?: string): Promise<void>;
  close(): Promise<void>;
}

/** Options of `startPop3`. */
export interface StartPop3Options {
  messages?: Array<Buffer | string>;
  accounts?: string[];
  /** Default: alice/localpw for account `alice`, bob/bobpw for `bob`. */
  users?: LocalUser[];
  server?: Partial<Pop3ServerOptions>;
  onLocalDelete?: LocalDeletePolicy;
  beforeSnapshot?: (accountId: string) => Promise<void>;
  logLevel?: string;
}

/** Three small messages used by the transcripts. */
export function sampleMessage(n: number): string {
  return `From: sender${n}@example.test\r\nSubject: test ${n}\r\n\r\nbody ${n} line 1\r\nbody ${n} line 2\r\n`;
}

/** A POP3 server on 127.0.0.1:0 over a temp cache. */
export async function startPop3(o: StartPop3Options = {}): Promise<Pop3Fixture> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lp-pop3-'));
  const log = pino({ level: o.logLevel ?? 'silent' });
  const accounts = o.accounts ?? ['alice', 'bob'];
  const cache = await Cache.open({ dataDir, accounts, log });
  let seq = 0;
  const add = async (messages: Array<Buffer | string>, account = 'alice'): Promise<void> => {
    const store = cache.account(account);
    for (const m of messages) {
      const p = await store.begin(INBOX, `t${++seq}`);
      p.stream.end(typeof m === 'string' ? Buffer.from(m, 'latin1') : m);
      await p.finish();
    }
    await store.commit();
  };
  await add(o.messages ?? []);
  const backend = new CacheBackend({
    stores: cache,
    log,
    onLocalDelete: () => o.onLocalDelete ?? 'keep-upstream',
    beforeSnapshot: o.beforeSnapshot,
  });
  const users = o.users ?? [
    { accountId: 'alice', username: 'alice', password: 'localpw' },
    { accountId: 'bob', username: 'bob', password: 'bobpw' },
  ];
  const server = new Pop3Server({
    hosts: ['127.0.0.1'],
    port: 0,
    auth: new LocalAuth(users, { baseDelayMs: 0 }),
    backend,
    log,
    ...o.server,
  });
  await server.start();
  return {
    server,
    port: server.port,
    cache,
    dataDir,
    backend,
    add,
    close: async () => {
      await server.stop();
      cache.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A raw POP3 connection: send any bytes, read lines with a timeout. */
export class Pop3Conn {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, host = '127.0.0.1'): Promise<Pop3Conn> {
    const s = net.connect({ port, host });
    await once(s, 'connect');
    return new Pop3Conn(s);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Send raw bytes (a string gets nothing appended). */
  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send one command line with CRLF. */
  cmd(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** The next line (without CRLF) as latin1 text; rejects on timeout or close. */
  async line(timeoutMs = 3000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return l;
      }
      if (this.closed)
        throw new Error(`connection closed (pending: ${JSON.stringify(this.buf.toString('latin1').slice(0, 80))})`);
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for a line (pending: ${JSON.stringify(this.buf.toString('latin1').slice(0, 80))})`,
        );
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends a command and returns its status line. */
  async ask(line: string): Promise<string> {
    this.cmd(line);
    return this.line();
  }

  /** Raw bytes of a multi-line body up to and including `.\r\n` (status line already read). */
  async body(timeoutMs = 5000): Promise<Buffer> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const empty = this.buf[0] === 0x2e && this.buf[1] === 0x0d && this.buf[2] === 0x0a;
      const i = empty ? 0 : this.buf.indexOf('\r\n.\r\n');
      if (i >= 0) {
        const stop = empty ? 3 : i + 5;
        const b = this.buf.subarray(0, stop);
        this.buf = this.buf.subarray(stop);
        return b;
      }
      if (this.closed) throw new Error('connection closed inside a multi-line reply');
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a multi-line body');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Lines of a multi-line body, terminator excluded. */
  async lines(): Promise<string[]> {
    const b = await this.body();
    const text = b.toString('latin1');
    return text === '.\r\n' ? [] : text.slice(0, -5).split('\r\n');
  }

  /** Resolves when the server closed the connection. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > end) throw new Error('server did not close the connection');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A connection that has read the greeting. */
export async function connected(port: number): Promise<Pop3Conn> {
  const c = await Pop3Conn.open(port);
  const g = await c.line();
  if (!g.startsWith('+OK')) throw new Error(`bad greeting ${g}`);
  return c;
}

/** A connection logged in as user/pass (default alice/localpw). */
export async function authenticated(port: number, user = 'alice', pass = 'localpw'): Promise<Pop3Conn> {
  const c = await connected(port);
  const u = await c.ask(`USER ${user}`);
  const p = await c.ask(`PASS ${pass}`);
  if (!u.startsWith('+OK') || !p.startsWith('+OK')) throw new Error(`login failed: ${u} / ${p}`);
  return c;
}
