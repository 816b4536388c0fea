/**
 * A scriptable in-process POP3 server for fault injection: happy by default
 * (greeting, CAPA, USER/PASS, AUTH PLAIN, STAT, LIST, UIDL, RETR, DELE, RSET, NOOP, QUIT with
 * RFC 1939 semantics), with per-test overrides through `onCommand`: replace a reply, delay or
 * stall it, write it in chosen segments, or cut the connection part-way through; `loginReply`
 * scripts the answer to logins (a throttling or refusing server) and `logins` counts them.
 *
 * `gmail` models Gmail's POP3 (docs/pitfalls.md#gmail-pop-window): each session offers only the next
 * `window` messages not popped yet, under stable UIDLs; a message becomes popped only when a session
 * that RETRed it ends with a clean QUIT, and in `delete` mode a DELE + clean QUIT removes it. `quit`
 * scripts how a session ends: the connection cut right after the session's last RETR, -ERR or a
 * reset in answer to QUIT; none of them pops anything.
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
  /**
   * A hostile server: after the reply, write these chunks lazily, honouring backpressure, until
   * they end or the client goes (`endlessLines` makes an endless UIDL or RETR body).
   */
  stream?: () => Iterable<Buffer> | AsyncIterable<Buffer>;
}

/** `count` lines made by `line(i)`, in chunks of about 64 KiB, without holding them all. */
export function* endlessLines(count: number, line: (i: number) => string): Generator<Buffer> {
  let batch: string[] = [];
  let size = 0;
  for (let i = 0; i < count; i++) {
    const l = `${line(i)}\r\n`;
    batch.push(l);
    size += l.length;
    if (size >= 64 * 1024) {
      yield Buffer.from(batch.join(''), 'latin1');
      batch = [];
      size = 0;
    }
  }
  if (batch.length) yield Buffer.from(batch.join(''), 'latin1');
}

/** Per-connection state visible to overrides. */
export interface FakeSession {
  id: number;
  state: 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';
  secure: boolean;
  user?: string;
  deleted: Set<number>;
  /** Mailbox numbers (1-based) this session offers, in message-number order. */
  offered: number[];
  /** Message numbers RETRed in this session. */
  retrieved: Set<number>;
}

/** How a Gmail-like session ends: cleanly, cut after its last RETR, -ERR or a reset on QUIT. */
export type GmailQuit = 'ok' | 'cut-after-last-retr' | 'err' | 'reset';

/** Gmail's POP3 window (see the module comment). */
export interface GmailMode {
  /** Messages offered per session (Gmail: about 250). */
  window: number;
  /** keep: popped messages are only not offered again; delete: DELE + clean QUIT also removes them. */
  mode: 'keep' | 'delete';
  /** How the session ends (default 'ok'); called when the session logs in. */
  quit?: (session: FakeSession) => GmailQuit;
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
  /** Gmail's POP3 window; default: every live message in every session. */
  gmail?: GmailMode;
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
  /** Gmail mode: mailbox numbers popped (clean QUIT after RETR) and removed (delete mode). */
  popped: Set<number>;
  removed: Set<number>;
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
  const fake: FakePop3 = {
    port: 0,
    log: [],
    committed: [],
    connections: 0,
    logins: 0,
    popped: new Set(),
    removed: new Set(),
    close: async () => {},
  };
  const gmailQuit = new Map<number, GmailQuit>(); // by session id
  /** What a session offers from its login on: everything, or Gmail's next window. */
  const offer = (s: FakeSession): void => {
    const all = messages.map((_, i) => i + 1);
    const g = opts.gmail;
    if (!g) return;
    s.offered = all.filter((n) => !fake.popped.has(n) && !fake.removed.has(n)).slice(0, g.window);
    gmailQuit.set(s.id, g.quit?.(s) ?? 'ok');
  };
  /** A clean QUIT of a Gmail-like session: what it RETRed is popped, what it DELEted (delete mode) is gone. */
  const popSession = (s: FakeSession): void => {
    if (!opts.gmail) return;
    for (const n of s.retrieved) fake.popped.add(s.offered[n - 1] ?? 0);
    if (opts.gmail.mode === 'delete') for (const n of s.deleted) fake.removed.add(s.offered[n - 1] ?? 0);
  };
  const scriptedLogin = (): string | undefined => {
    const r = typeof opts.loginReply === 'function' ? opts.loginReply(fake.logins) : opts.loginReply;
    return r === undefined ? undefined : `${r}\r\n`;
  };
  let nextId = 1;

  const defaultReply = (verb: string, args: string[], s: FakeSession): Buffer | string | Buffer[] => {
    const exists = (a: string | undefined) => {
      const n = Number(a);
      return Number.isInteger(n) && n >= 1 && n <= s.offered.length && !s.deleted.has(n) ? n : 0;
    };
    const live = () => s.offered.map((_, i) => i + 1).filter((n) => !s.deleted.has(n));
    const box = (n: number) => s.offered[n - 1] ?? 0; // session number → mailbox number
    const multi = (lines: string[]) => `+OK\r\n${lines.map((l) => `${l}\r\n`).join('')}.\r\n`;
    if (verb === 'CAPA') {
      if (!capa) return '-ERR unknown command\r\n';
      return multi(opts.tls?.mode === 'starttls' && !s.secure ? [...capa, 'STLS'] : capa);
    }
    if (verb === 'STLS') return opts.tls && !s.secure ? '+OK begin TLS\r\n' : '-ERR not now\r\n';
    if (verb === 'QUIT') {
      if (s.state === 'TRANSACTION') {
        fake.committed.push([...s.deleted].sort((a, b) => a - b));
        popSession(s);
      }
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
          offer(s);
          return '+OK logged in\r\n';
        }
        return '-ERR [AUTH] invalid login\r\n';
      }
      if (verb === 'AUTH' && args[0]?.toUpperCase() === 'PLAIN' && args[1]) {
        const [, u, p] = Buffer.from(args[1], 'base64').toString('utf8').split('\0');
        if (u === user && p === pass) {
          s.state = 'TRANSACTION';
          offer(s);
          return '+OK logged in\r\n';
        }
        return '-ERR [AUTH] authentication failed\r\n';
      }
      return '-ERR not allowed now\r\n';
    }
    switch (verb) {
      case 'STAT':
        return `+OK ${live().length} ${live().reduce((t, n) => t + size(box(n)), 0)}\r\n`;
      case 'LIST':
        return multi(live().map((n) => `${n} ${size(box(n))}`));
      case 'UIDL':
        return multi(live().map((n) => `${n} uid-${box(n)}`));
      case 'RETR': {
        const n = exists(args[0]);
        if (!n) return '-ERR no such message\r\n';
        s.retrieved.add(n);
        return [Buffer.from(`+OK ${wire(box(n)).length} octets\r\n`), wire(box(n))]; // no 30 MB copy
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
    if (act.stream) {
      for (const p of parts) if (!sock.destroyed) sock.write(p);
      for await (const chunk of act.stream()) {
        if (sock.destroyed) return;
        if (sock.write(chunk)) continue;
        await new Promise<void>((resolve) => {
          const go = (): void => {
            sock.off('drain', go).off('close', go);
            resolve();
          };
          sock.on('drain', go).on('close', go);
        });
      }
      return;
    }
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

  /** The scripted end of a Gmail-like session: none of these runs the default QUIT (nothing is popped). */
  const gmailAction = (verb: string, args: string[], s: FakeSession): FakeAction | undefined => {
    const how = gmailQuit.get(s.id);
    if (!how || how === 'ok' || s.state !== 'TRANSACTION') return undefined;
    if (verb === 'QUIT' && how === 'err') return { reply: '-ERR [SYS/TEMP] could not save the session\r\n' };
    if (verb === 'QUIT' && how === 'reset') return { reply: 'x', cutAfter: 0 };
    if (verb === 'QUIT') return { reply: '', close: true }; // the connection is cut already
    // the client RETRs in order: after the last offered message, the server closes before any QUIT
    return how === 'cut-after-last-retr' && verb === 'RETR' && Number(args[0]) === s.offered.length
      ? { close: true }
      : undefined;
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
      offered: messages.map((_, i) => i + 1),
      retrieved: new Set(),
      secure: opts.tls?.mode === 'implicit',
    };
    let io = sock;
    let buffered = Buffer.alloc(0);
    let chain = Promise.resolve();
    const handle = async (line: string): Promise<void> => {
      const [verbRaw = '', ...args] = line.split(' ');
      const verb = verbRaw.toUpperCase();
      const act: FakeAction = {
        ...opts.defaults,
        ...gmailAction(verb, args, session),
        ...(await opts.onCommand?.(verb, args, session)),
      };
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
  Object.assign(fake, await listenOnLoopback(server, sockets));
  return fake;
}

/** Listens on 127.0.0.1:0; `close()` destroys the open `sockets` and closes the server. */
export async function listenOnLoopback(
  server: net.Server,
  sockets: Set<net.Socket>,
): Promise<{ port: number; close(): Promise<void> }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
