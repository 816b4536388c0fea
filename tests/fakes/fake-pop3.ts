/**
 * A scriptable in-process POP3 server for fault injection: happy by default
 * (greeting, CAPA, USER/PASS, AUTH PLAIN, STAT, LIST, UIDL, RETR, DELE, RSET, NOOP, QUIT with
 * RFC 1939 semantics), with per-test overrides through `onCommand`: replace a reply, delay or
 * stall it, write it in chosen segments, or cut the connection part-way through; `loginReply`
 * scripts the answer to logins (a throttling or refusing server) and `logins` counts them.
 *
 * Its dot-stuffing is a deliberately naive line-by-line implementation, independent of the
 * codec under test. Listens on 127.0.0.1:0.
 */

import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

/** How one reply is delivered; every field is optional. */
export interface FakeAction {
  /** Replace the default reply bytes (a string gets no CRLF added). */
  reply?: Buffer | string;
  /** Never answer this command (the connection stays open). */
  stall?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Write only this many bytes of the reply, then destroy the connection. */
  cutAfter?: number;
  /** Write the reply in segments: every N bytes, or at these offsets. */
  segments?: number | number[];
  /** Pause between segments (default: the next event-loop turn; use ≥ 20 ms to defeat coalescing). */
  segmentDelayMs?: number;
  /** Close the connection after the reply. */
  close?: boolean;
}

/** Per-connection state visible to overrides. */
export interface FakeSession {
  id: number;
  state: 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';
  secure: boolean;
  user?: string;
  deleted: Set<number>;
}

/** Options of the fake; the defaults give a well-behaved server. */
export interface FakePop3Options {
  messages?: Buffer[];
  user?: string;
  pass?: string;
  /** CAPA lines; null answers CAPA with -ERR. Default includes SASL PLAIN and PIPELINING. */
  capa?: string[] | null;
  greeting?: string;
  /** Keep bare LF on the wire (sloppy server) instead of converting to CRLF. Default false. */
  rawLineEnds?: boolean;
  /** TLS: implicit (the whole connection) or starttls (offer STLS, RFC 2595). */
  tls?: { mode: 'implicit' | 'starttls'; key: string; cert: string };
  /**
   * Answer every login (PASS, AUTH) with this status line instead of checking the credentials
   * (CRLF added), e.g. `-ERR Server Unavailable. 21` (Microsoft throttling) or `-ERR [AUTH] no`.
   * A function decides per attempt (1-based, counted across connections); undefined: the default.
   */
  loginReply?: string | ((attempt: number) => string | undefined);
  /** Delivery applied to every reply unless the override says otherwise. */
  defaults?: FakeAction;
  /** Override hook: return an action (with or without a reply) or undefined for the default. */
  onCommand?: (
    verb: string,
    args: string[],
    session: FakeSession,
  ) => FakeAction | undefined | Promise<FakeAction | undefined>;
}

/** A running fake. */
export interface FakePop3 {
  port: number;
  /** Transcript of every connection: `C: DELE 1`, `S: +OK ...` (first line of each reply). */
  log: string[];
  /** Message numbers deleted by a committed QUIT, per session in order. */
  committed: number[][];
  /** Number of connections accepted. */
  connections: number;
  /** Number of login attempts (PASS or AUTH commands) not answered by an `onCommand` override. */
  logins: number;
  close(): Promise<void>;
}

/** The wire form of a stored message (body plus terminator), by the naive reference method. */
export function wireBody(msg: Buffer, rawLineEnds = false): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  while (start < msg.length) {
    const lf = msg.indexOf(0x0a, start);
    const end = lf < 0 ? msg.length : lf + 1;
    let line = msg.subarray(start, end);
    if (lf < 0) line = Buffer.concat([line, Buffer.from('\r\n')]);
    else if (!rawLineEnds && (line.length < 2 || line[line.length - 2] !== 0x0d)) {
      line = Buffer.concat([line.subarray(0, line.length - 1), Buffer.from('\r\n')]);
    }
    if (line[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(line);
    start = end;
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

/** The bytes a correct client must hand back for `msg` (wire form minus stuffing and terminator). */
export function expectedRetr(msg: Buffer, rawLineEnds = false): Buffer {
  const wire = wireBody(msg, rawLineEnds);
  const lines: Buffer[] = [];
  let start = 0;
  while (start < wire.length - 3) {
    const end = wire.indexOf(0x0a, start) + 1;
    const line = wire.subarray(start, end);
    lines.push(line[0] === 0x2e ? line.subarray(1) : line);
    start = end;
  }
  return Buffer.concat(lines);
}

// Unref'd, so a long scripted delay never keeps the test process alive.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/** Starts a fake POP3 server on 127.0.0.1:0. */
export async function startFakePop3(opts: FakePop3Options = {}): Promise<FakePop3> {
  const messages = opts.messages ?? [Buffer.from('Subject: hello\r\n\r\nHi.\r\n')];
  const user = opts.user ?? 'alice';
  const pass = opts.pass ?? 'secret';
  const capa = opts.capa === undefined ? ['USER', 'UIDL', 'TOP', 'RESP-CODES', 'PIPELINING', 'SASL PLAIN'] : opts.capa;
  const wireCache = new Map<number, Buffer>();
  const wire = (n: number): Buffer => {
    let w = wireCache.get(n);
    if (!w) {
      w = wireBody(messages[n - 1]!, opts.rawLineEnds);
      wireCache.set(n, w);
    }
    return w;
  };
  for (let n = 1; n <= messages.length; n++) wire(n); // eager, so timings measure the client
  const sizeCache = new Map<number, number>();
  const size = (n: number): number => {
    let z = sizeCache.get(n);
    if (z === undefined) {
      z = expectedRetr(messages[n - 1]!, opts.rawLineEnds).length;
      sizeCache.set(n, z);
    }
    return z;
  };
  const sockets = new Set<net.Socket>();
  const fake: FakePop3 = { port: 0, log: [], committed: [], connections: 0, logins: 0, close: async () => {} };
  const scriptedLogin = (): string | undefined => {
    const r = typeof opts.loginReply === 'function' ? opts.loginReply(fake.logins) : opts.loginReply;
    return r === undefined ? undefined : `${r}\r\n`;
  };
  let nextId = 1;

  const defaultReply = (verb: string, args: string[], s: FakeSession): Buffer | string | Buffer[] => {
    const exists = (a: string | undefined) => {
      const n = Number(a);
      return Number.isInteger(n) && n >= 1 && n <= messages.length && !s.deleted.has(n) ? n : 0;
    };
    const live = () => messages.map((_, i) => i + 1).filter((n) => !s.deleted.has(n));
    const multi = (lines: string[]) => `+OK\r\n${lines.map((l) => `${l}\r\n`).join('')}.\r\n`;
    if (verb === 'CAPA') {
      if (!capa) return '-ERR unknown command\r\n';
      return multi(opts.tls?.mode === 'starttls' && !s.secure ? [...capa, 'STLS'] : capa);
    }
    if (verb === 'STLS') return opts.tls && !s.secure ? '+OK begin TLS\r\n' : '-ERR not now\r\n';
    if (verb === 'QUIT') {
      if (s.state === 'TRANSACTION') fake.committed.push([...s.deleted].sort((a, b) => a - b));
      s.state = 'UPDATE';
      return '+OK bye\r\n';
    }
    if (verb === 'NOOP') return '+OK\r\n';
    if (s.state === 'AUTHORIZATION') {
      if (verb === 'USER') {
        s.user = args[0];
        return '+OK\r\n';
      }
      if (verb === 'PASS' || verb === 'AUTH') fake.logins++;
      const scripted = verb === 'PASS' || verb === 'AUTH' ? scriptedLogin() : undefined;
      if (scripted) return scripted;
      if (verb === 'PASS') {
        if (s.user === user && args.join(' ') === pass) {
          s.state = 'TRANSACTION';
          return '+OK logged in\r\n';
        }
        return '-ERR [AUTH] invalid login\r\n';
      }
      if (verb === 'AUTH' && args[0]?.toUpperCase() === 'PLAIN' && args[1]) {
        const [, u, p] = Buffer.from(args[1], 'base64').toString('utf8').split('\0');
        if (u === user && p === pass) {
          s.state = 'TRANSACTION';
          return '+OK logged in\r\n';
        }
        return '-ERR [AUTH] authentication failed\r\n';
      }
      return '-ERR not allowed now\r\n';
    }
    switch (verb) {
      case 'STAT':
        return `+OK ${live().length} ${live().reduce((t, n) => t + size(n), 0)}\r\n`;
      case 'LIST':
        return multi(live().map((n) => `${n} ${size(n)}`));
      case 'UIDL':
        return multi(live().map((n) => `${n} uid-${n}`));
      case 'RETR': {
        const n = exists(args[0]);
        return n ? [Buffer.from(`+OK ${wire(n).length} octets\r\n`), wire(n)] : '-ERR no such message\r\n'; // no 30 MB copy
      }
      case 'DELE': {
        const n = exists(args[0]);
        if (!n) return '-ERR no such message\r\n';
        s.deleted.add(n);
        return '+OK deleted\r\n';
      }
      case 'RSET':
        s.deleted.clear();
        return '+OK\r\n';
      default:
        return '-ERR unknown command\r\n';
    }
  };

  const deliver = async (sock: net.Socket, parts: Buffer[], act: FakeAction): Promise<void> => {
    if (act.delayMs) await sleep(act.delayMs);
    if (act.cutAfter === undefined && act.segments === undefined) {
      for (const p of parts) if (!sock.destroyed) sock.write(p);
      if (act.close) sock.end();
      return;
    }
    let data = Buffer.concat(parts);
    let cut = false;
    if (act.cutAfter !== undefined && act.cutAfter < data.length) {
      data = data.subarray(0, act.cutAfter);
      cut = true;
    }
    const seg = act.segments;
    let offsets: number[] = [];
    if (typeof seg === 'number') for (let o = seg; o < data.length; o += seg) offsets.push(o);
    else if (Array.isArray(seg)) offsets = seg.filter((o) => o > 0 && o < data.length).sort((a, b) => a - b);
    let start = 0;
    for (const o of [...offsets, data.length]) {
      if (sock.destroyed) return;
      const ok = sock.write(data.subarray(start, o));
      start = o;
      if (o < data.length) {
        if (!ok) await Promise.race([once(sock, 'drain'), once(sock, 'close')]).catch(() => {});
        if (act.segmentDelayMs) await sleep(act.segmentDelayMs);
        else await new Promise((r) => setImmediate(r));
      }
    }
    if (cut) {
      await sleep(20);
      sock.destroy();
    } else if (act.close) sock.end();
  };

  const onConnection = (sock: net.Socket): void => {
    sockets.add(sock);
    fake.connections++;
    sock.setNoDelay(true);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    const session: FakeSession = {
      id: nextId++,
      state: 'AUTHORIZATION',
      deleted: new Set(),
      secure: opts.tls?.mode === 'implicit',
    };
    let io = sock;
    let buffered = Buffer.alloc(0);
    let chain = Promise.resolve();
    const handle = async (line: string): Promise<void> => {
      const [verbRaw = '', ...args] = line.split(' ');
      const verb = verbRaw.toUpperCase();
      const act: FakeAction = { ...opts.defaults, ...(await opts.onCommand?.(verb, args, session)) };
      if (act.stall) return new Promise(() => {}); // never answers: blocks this connection
      const reply = act.reply ?? defaultReply(verb, args, session);
      const parts =
        typeof reply === 'string' ? [Buffer.from(reply, 'latin1')] : Buffer.isBuffer(reply) ? [reply] : reply;
      const first = parts[0] ?? Buffer.alloc(0);
      fake.log.push(
        `S: ${first
          .subarray(0, Math.max(0, first.indexOf(0x0a)))
          .toString('latin1')
          .trimEnd()}`,
      );
      await deliver(io, parts, act);
      if (verb === 'QUIT') io.end();
      if (verb === 'STLS' && opts.tls && !session.secure && first[0] === 0x2b) {
        // RFC 2595 §4: the TLS handshake starts right after +OK.
        session.secure = true;
        io.off('data', onData);
        io = new tls.TLSSocket(sock, { isServer: true, key: opts.tls.key, cert: opts.tls.cert });
        io.on('error', () => {});
        io.on('data', onData);
      }
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let lf = buffered.indexOf(0x0a); lf >= 0; lf = buffered.indexOf(0x0a)) {
        const line = buffered.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        buffered = buffered.subarray(lf + 1);
        fake.log.push(`C: ${line}`); // logged on arrival, so pipelining shows
        chain = chain.then(() => handle(line)).catch(() => {});
      }
    };
    sock.on('data', onData);
    void deliver(sock, [Buffer.from(`${opts.greeting ?? '+OK fake POP3 ready'}\r\n`)], opts.defaults ?? {});
  };
  const server =
    opts.tls?.mode === 'implicit'
      ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onConnection)
      : net.createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.port = (server.address() as net.AddressInfo).port;
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return fake;
}
