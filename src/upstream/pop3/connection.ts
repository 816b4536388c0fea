/**
 * The transport under our upstream POP3 client: TCP or TLS (implicit, or upgraded by RFC 2595
 * STLS), the reply reader on the shared wire codec, and the queue that orders commands.
 * `client.ts` builds the POP3 commands on it, `login.ts` the login exchanges.
 *
 * Invariants:
 * - Byte-exact: message bodies never become strings; a multi-line body reaches its callback
 *   un-stuffed, final line end included, whatever the TCP segmentation.
 * - Commands are serialised through one queue; replies are matched to commands in order, so
 *   pipelined commands and plain ones share one reader.
 * - Every read has a real timeout: while a reply is awaited and the socket is not paused for a
 *   slow sink, `timeoutMs` without a byte rejects with `ETIMEDOUT` and destroys the socket.
 * - Once the connection breaks (socket error, timeout, close, protocol violation), every pending
 *   and later call rejects at once; nothing hangs.
 * - Memory is bounded: a status line is capped at 64 KiB, a UIDL/LIST/CAPA reply by `LIST_LIMITS`
 *   (past which the connection fails: docs/guarantees.md#hostile-upstream-servers); a body goes
 *   on chunk by chunk and a slow sink pauses the socket.
 * - Credentials never reach the log: callers pass a masked form of every secret line.
 */
import net from 'node:net';
import type { Writable } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { TemporaryError } from '../../shared/errors.js';
import {
  DotUnstuffer,
  LineReader,
  LineTooLongError,
  ListReply,
  type ListReplyLimits,
  parseStatusLine,
  type StatusLine,
} from '../../shared/pop3-wire/index.js';
import { Serial } from '../../shared/serial.js';
import { tlsHint } from '../tls-hint.js';
import type { TlsMode } from '../types.js';

/** Longest status line accepted from a server, in octets. */
const MAX_LINE = 64 * 1024;
/** Caps of one UIDL/LIST/CAPA reply (RFC 1939 allows 512 octets a line). */
const LIST_LIMITS: ListReplyLimits = { maxLine: 1024, maxLines: 1_000_000, maxBytes: 64 * 1024 * 1024 };

/** How to reach one upstream POP3 server. */
export interface Pop3ClientOptions {
  host: string;
  port: number;
  tls: TlsMode;
  /** Extra CA certificate(s), PEM text, trusted in addition to the system roots. */
  ca?: string;
  /** Name checked against the certificate; defaults to host. */
  servername?: string;
  /** Verify certificates (default true). */
  rejectUnauthorized?: boolean;
  /** Longest silence allowed while a reply is awaited; default 60 s. */
  timeoutMs?: number;
  /** Limit on TCP connect plus TLS handshake; default 15 s. */
  connectTimeoutMs?: number;
  /** Receives a trace-level transcript, credentials masked. */
  log?: Logger;
}

/** An `-ERR` reply from the server (RFC 1939 §3), with its RFC 2449 response code if any. */
export class Pop3ReplyError extends TemporaryError {
  override name = 'Pop3ReplyError';
  /** The command that was refused, credentials masked (e.g. `DELE 3`). */
  readonly command: string;
  /** The server's text after `-ERR` and the response code. */
  readonly text: string;
  /** The response code without brackets (`IN-USE`, `SYS/TEMP`, `AUTH`), if any. */
  readonly responseCode?: string;
  constructor(command: string, status: StatusLine) {
    const code = status.code ? `[${status.code}] ` : '';
    super(`POP3 ${command} refused: -ERR ${code}${status.text}`.trimEnd());
    this.command = command;
    this.text = status.text;
    this.responseCode = status.code;
  }
}

/** A reply that breaks the protocol; the connection cannot go on. */
export function protocolError(what: string): TemporaryError {
  return new TemporaryError(`POP3 protocol error: ${what}`, { code: 'EPROTO' });
}

/** Receives the un-stuffed body of a multi-line reply, chunk by chunk. */
type BodySink = (data: Buffer) => void;

interface Waiter {
  command: string;
  /** Set for multi-line replies: receives the un-stuffed body after a `+OK`. */
  body?: BodySink;
  resolve(status: StatusLine): void;
  reject(err: Error): void;
}

/** Turns a socket or TLS error into a TemporaryError whose message names the fix. */
function socketError(err: Error & { code?: string }, where: string): TemporaryError {
  const code = err.code;
  const fix = tlsHint(err);
  const hint = fix ? `; ${fix}` : '';
  return new TemporaryError(
    `${where}: ${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}${hint}`,
    { cause: err, code },
  );
}

function tlsOptions(opts: Pop3ClientOptions): tls.ConnectionOptions {
  return {
    servername: opts.servername ?? (net.isIP(opts.host) ? undefined : opts.host),
    ca: opts.ca ? [...tls.rootCertificates, opts.ca] : undefined,
    rejectUnauthorized: opts.rejectUnauthorized ?? true,
  };
}

/** Opens TCP (and TLS) within connectTimeoutMs; `plain` upgrades an existing socket (STLS). */
function openSocket(opts: Pop3ClientOptions, where: string, plain?: net.Socket): Promise<net.Socket> {
  const limit = opts.connectTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const secure = plain !== undefined || opts.tls === 'implicit';
    const sock: net.Socket = secure
      ? tls.connect({ ...tlsOptions(opts), host: opts.host, port: opts.port, socket: plain })
      : net.connect({ host: opts.host, port: opts.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TemporaryError(`${where}: no connection within ${limit} ms`, { code: 'ETIMEDOUT' }));
    }, limit);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(socketError(err, where));
    };
    sock.once('error', onError);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** One open connection to a POP3 server: writes command lines, matches replies to them in order. */
export class Pop3Connection {
  /** `POP3 host:port`, the prefix of every error message. */
  readonly where: string;
  private socket: net.Socket;
  private readonly opts: Pop3ClientOptions;
  private readonly timeoutMs: number;
  private readonly log?: Logger;
  private readonly lines = new LineReader(MAX_LINE);
  private readonly queue = new Serial();
  private waiters: Waiter[] = [];
  private body: { unstuffer: DotUnstuffer; waiter: Waiter; sink: BodySink; status: StatusLine } | null = null;
  private broken: TemporaryError | null = null;
  private timer: NodeJS.Timeout | undefined;
  private sinkPause: (() => void) | null = null;
  private corked = false;

  private constructor(opts: Pop3ClientOptions, socket: net.Socket) {
    this.opts = opts;
    this.where = `POP3 ${opts.host}:${opts.port}`;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.log = opts.log?.child({ upstream: `${opts.host}:${opts.port}` });
    this.socket = socket;
    this.attach(socket);
  }

  /** Opens TCP, or TLS when tls=implicit; the greeting is left for the caller to read. */
  static async open(opts: Pop3ClientOptions): Promise<Pop3Connection> {
    return new Pop3Connection(opts, await openSocket(opts, `POP3 ${opts.host}:${opts.port}`));
  }

  /** STLS (RFC 2595 §4), then the TLS handshake on the same socket. */
  async startTls(): Promise<void> {
    await this.simple('STLS');
    if (this.lines.buffered > 0) throw protocolError('data after the STLS reply (possible injection)');
    const plain = this.socket;
    this.detach(plain);
    try {
      this.socket = await openSocket(this.opts, this.where, plain);
    } catch (err) {
      plain.destroy();
      this.fail(err as TemporaryError);
      throw err;
    }
    this.attach(this.socket);
  }

  // ---- ordering ------------------------------------------------------------------------

  /** Runs `fn` once every command queued before it is done; rejects at once if the connection broke. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.broken) return Promise.reject(this.closedError(this.broken));
    return this.queue.run(() => (this.broken ? Promise.reject(this.closedError(this.broken)) : fn()));
  }

  /**
   * Runs a command that may be pipelined (RFC 2449 §6.6): without `pipelining` it waits its turn
   * like any other; with it, it is written at once, after whatever was queued before it started,
   * and the next command may go out before its reply is complete.
   */
  pipelined<T>(pipelining: boolean, fn: () => Promise<T>): Promise<T> {
    if (!pipelining) return this.exclusive(fn);
    if (this.broken) return Promise.reject(this.closedError(this.broken));
    return this.queue.run((release) => {
      if (this.broken) return Promise.reject(this.closedError(this.broken));
      const p = fn(); // fn writes its command synchronously before its first await
      release();
      return p;
    });
  }

  // ---- writing -------------------------------------------------------------------------

  /** Writes one command line and resolves with its status (after the body, for multi-line). */
  command(line: string, masked = line, body?: BodySink): Promise<StatusLine> {
    if (this.broken) return Promise.reject(this.closedError(this.broken));
    const reply = this.expect(masked, body);
    this.trace('C', masked);
    this.send(`${line}\r\n`);
    return reply;
  }

  /** Writes several single-line commands in one packet (RFC 2449 §6.6); one reply promise each. */
  commands(lines: readonly string[]): Array<Promise<StatusLine>> {
    const { broken } = this;
    if (broken) return lines.map(() => Promise.reject(this.closedError(broken)));
    const replies = lines.map((line) => this.expect(line));
    for (const line of lines) this.trace('C', line);
    this.send(lines.map((line) => `${line}\r\n`).join(''));
    return replies;
  }

  /** Writes command bytes; those of one tick (pipelined RETRs) leave in one packet, not one syscall each. */
  private send(data: string): void {
    const sock = this.socket;
    if (!this.corked) {
      this.corked = true;
      sock.cork();
      process.nextTick(() => {
        this.corked = false;
        sock.uncork();
      });
    }
    sock.write(data);
  }

  /** Awaits the next status line without writing anything (the greeting). */
  expect(command: string, body?: BodySink): Promise<StatusLine> {
    if (this.broken) return Promise.reject(this.closedError(this.broken));
    return new Promise((resolve, reject) => {
      this.waiters.push({ command, body, resolve, reject });
      this.updateTimer();
    });
  }

  /** Sends a command that has a single-line reply and requires +OK. */
  async simple(line: string): Promise<StatusLine> {
    const st = await this.command(line);
    if (st.kind !== 'ok') throw new Pop3ReplyError(line, st);
    return st;
  }

  /** Sends a multi-line command (RFC 1939 §3) and returns its lines, within `LIST_LIMITS`; -ERR throws. */
  async multiLines(command: string): Promise<Buffer[]> {
    const reply = new ListReply(LIST_LIMITS);
    const st = await this.command(command, undefined, (data) => {
      const wrong = reply.push(data);
      if (wrong) throw protocolError(`${command} reply ${wrong}`);
    });
    if (st.kind !== 'ok') throw new Pop3ReplyError(command, st);
    return reply.lines();
  }

  // ---- flow control and closing --------------------------------------------------------

  /** Stops reading until `sink` drains (or fails, or closes); the read timer waits meanwhile. */
  pauseForSink(sink: Writable): void {
    if (this.sinkPause) return;
    this.socket.pause();
    const resume = (): void => {
      sink.off('drain', resume).off('error', resume).off('close', resume);
      this.sinkPause = null;
      if (!this.broken) this.socket.resume();
      this.updateTimer();
    };
    sink.on('drain', resume).on('error', resume).on('close', resume);
    this.sinkPause = resume;
    this.updateTimer();
  }

  /** Reads on at once, whatever the sink paused for by `pauseForSink` is doing. */
  resumeFromSink(): void {
    this.sinkPause?.();
  }

  /** Marks the connection broken, rejects everything pending, destroys the socket. */
  fail(err: TemporaryError): void {
    if (this.broken) return;
    this.broken = err;
    this.updateTimer();
    const waiters = this.waiters;
    this.waiters = [];
    this.body = null;
    for (const w of waiters) w.reject(err);
    this.sinkPause?.();
    this.socket.destroy();
    this.log?.debug({ err: err.message }, 'POP3 connection closed');
  }

  // ---- reading ---------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.broken) return;
    try {
      this.feed(chunk);
    } catch (err) {
      if (err instanceof LineTooLongError) this.fail(protocolError(`line longer than ${MAX_LINE} octets`));
      else if (err instanceof TemporaryError) this.fail(err);
      else this.fail(protocolError(err instanceof Error ? err.message : String(err)));
      return;
    }
    this.updateTimer();
  };

  private feed(chunk: Buffer): void {
    let input: Buffer | null = chunk;
    for (;;) {
      if (this.body) {
        if (!input?.length) return;
        const r = this.body.unstuffer.push(input);
        input = null;
        if (r.data.length) this.body.sink(r.data);
        if (!r.done) return;
        const { waiter, status } = this.body;
        this.body = null;
        this.waiters.shift();
        waiter.resolve(status);
        this.lines.push(r.rest);
        continue;
      }
      if (input) this.lines.push(input);
      input = null;
      const line = this.lines.readLine();
      if (line === null) return;
      this.trace('S', line.toString('utf8'));
      const waiter = this.waiters[0];
      if (!waiter) throw protocolError(`unexpected line "${line.toString('utf8').slice(0, 80)}"`);
      const status = parseStatusLine(line);
      if (!status) throw protocolError(`bad status line "${line.toString('utf8').slice(0, 80)}"`);
      if (status.kind === 'ok' && waiter.body) {
        this.body = { unstuffer: new DotUnstuffer(), waiter, sink: waiter.body, status }; // RFC 1939 §3
        input = this.lines.takeRest();
        continue;
      }
      this.waiters.shift();
      waiter.resolve(status);
    }
  }

  /** Arms the read timer while a reply is awaited and reading is not paused; data refreshes it. */
  private updateTimer(): void {
    const want = !this.broken && this.waiters.length > 0 && !this.sinkPause;
    if (want) {
      if (this.timer) this.timer.refresh();
      else this.timer = setTimeout(this.onTimeout, this.timeoutMs);
    } else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private readonly onTimeout = (): void => {
    this.timer = undefined;
    const what = this.waiters[0]?.command ?? 'reply';
    this.fail(
      new TemporaryError(`${this.where}: no reply to ${what} within ${this.timeoutMs} ms`, { code: 'ETIMEDOUT' }),
    );
  };

  private readonly onError = (err: Error): void => this.fail(socketError(err, this.where));

  private readonly onClose = (): void =>
    this.fail(new TemporaryError(`${this.where}: connection closed by the server`, { code: 'ECONNRESET' }));

  private attach(sock: net.Socket): void {
    sock.on('data', this.onData).on('error', this.onError).on('close', this.onClose);
  }

  private detach(sock: net.Socket): void {
    sock.off('data', this.onData).off('error', this.onError).off('close', this.onClose);
  }

  private closedError(cause: TemporaryError): TemporaryError {
    return new TemporaryError(`${this.where}: connection is closed (${cause.message})`, { cause, code: cause.code });
  }

  private trace(dir: 'C' | 'S', line: string): void {
    if (this.log?.isLevelEnabled('trace')) this.log.trace({ dir }, line.length > 200 ? `${line.slice(0, 200)}…` : line);
  }
}
