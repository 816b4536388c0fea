/**
 * Our upstream POP3 client (RFC 1939, RFC 2449 CAPA/RESP-CODES/PIPELINING, RFC 2595 STLS,
 * RFC 5034 AUTH PLAIN, RFC 7628 OAUTHBEARER and Google/Microsoft's XOAUTH2), on the shared wire
 * codec. Not node-pop3: it corrupts 8-bit bytes, skips dot-unstuffing and never times out.
 *
 * Invariants:
 * - Byte-exact: message bodies never become strings; RETR writes the un-stuffed bytes, final
 *   line end included, whatever the TCP segmentation.
 * - Commands are serialised through one queue; replies are matched to commands in order, so
 *   pipelined DELEs and plain commands share one reader.
 * - Every read has a real timeout: while a reply is awaited and the socket is not paused for a
 *   slow sink, `timeoutMs` without a byte rejects with `ETIMEDOUT` and destroys the socket (servers do stall).
 * - Once the connection breaks (socket error, timeout, close, protocol violation), every pending
 *   and later call rejects at once; nothing hangs.
 * - Memory is bounded: status and list lines are capped at 64 KiB; RETR honours the sink's
 *   backpressure by pausing the socket.
 * - Credentials never reach the log: PASS and AUTH lines are masked in the trace transcript.
 * - A refused login is classified (`classifyLoginRefusal`): only a wrong credential is an
 *   AuthError; a server that asks us to slow down (`[SYS/TEMP]`, `[LOGIN-DELAY]`, Microsoft's
 *   `Server Unavailable. 21`) is a ThrottledError, `[IN-USE]` a plain temporary Pop3ReplyError.
 * - OAuth: the token always goes in the two-step form (`AUTH XOAUTH2`, `+`, token line), which
 *   Microsoft 365 requires and which has no 255-octet limit, so tokens over 4,096 bytes pass.
 */
import net from 'node:net';
import type { Writable } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { AuthError, isThrottleText, TemporaryError, ThrottledError } from '../../shared/errors.js';
import {
  DotUnstuffer,
  hasResponseCode,
  LineReader,
  LineTooLongError,
  parseStatusLine,
  type StatusLine,
} from '../../shared/pop3-wire/index.js';
import { tlsHint } from '../tls-hint.js';
import type { UpstreamEndpoint } from '../types.js';

/** Longest status or list line accepted from a server, in octets. */
const MAX_LINE = 64 * 1024;
/** Most lines accepted in one UIDL/LIST/CAPA reply. */
const MAX_LIST_LINES = 10_000_000;
/** Pipelined DELE commands written per batch (RFC 2449 §6.6). */
const PIPELINE_BATCH = 100;

/** How to reach one upstream POP3 server. */
export interface Pop3ClientOptions {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
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

/** The SASL mechanisms that carry an OAuth 2.0 access token. */
export type OAuthMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** The JSON error of an OAuth SASL challenge (RFC 7628 §3.2.2), as short text; '' if unreadable. */
export function oauthErrorDetail(challenge: string): string {
  try {
    const v = JSON.parse(Buffer.from(challenge, 'base64').toString('utf8')) as Record<string, unknown>;
    return Object.entries(v)
      .filter(([, x]) => typeof x === 'string' || typeof x === 'number')
      .map(([k, x]) => `${k} ${String(x).slice(0, 200)}`)
      .join(', ');
  } catch {
    return '';
  }
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

/** What a refused login means: a wrong credential, a server asking us to slow down, or a passing state. */
export type LoginRefusal = 'auth' | 'throttled' | 'temporary';

/**
 * Classifies an `-ERR` answer to USER/PASS/AUTH (or the greeting) by its RFC 2449 §8.1 / RFC 3206
 * response code, else by its text:
 *
 * | reply                                                        | meaning     |
 * |--------------------------------------------------------------|-------------|
 * | `[IN-USE]` (another session holds the maildrop)              | temporary   |
 * | `[AUTH]` (the credentials are wrong)                         | auth        |
 * | `[SYS/TEMP]`, `[LOGIN-DELAY]`                                | throttled   |
 * | `[SYS/PERM]` (the server's failure, not the password's)      | temporary   |
 * | other text: "Server Unavailable", "try again later", "too many …" | throttled |
 * | anything else (a plain refusal)                              | auth        |
 */
export function classifyLoginRefusal(st: StatusLine): LoginRefusal {
  if (hasResponseCode(st, 'IN-USE')) return 'temporary';
  if (hasResponseCode(st, 'AUTH')) return 'auth';
  if (hasResponseCode(st, 'SYS/TEMP') || hasResponseCode(st, 'LOGIN-DELAY')) return 'throttled';
  if (hasResponseCode(st, 'SYS')) return 'temporary';
  if (isThrottleText(st.text)) return 'throttled';
  return 'auth';
}

interface Waiter {
  command: string;
  /** Set for multi-line replies: receives the un-stuffed body after a `+OK`. */
  body?: (data: Buffer) => void;
  resolve(status: StatusLine): void;
  reject(err: Error): void;
}

function checkMsg(msg: number): void {
  if (!Number.isSafeInteger(msg) || msg < 1) throw new RangeError(`invalid POP3 message number: ${msg}`);
}

function protocolError(what: string): TemporaryError {
  return new TemporaryError(`POP3 protocol error: ${what}`, { code: 'EPROTO' });
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

/** Opens TCP (and TLS) within connectTimeoutMs; `socket` upgrades an existing one (STLS). */
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

/** A connected POP3 session; create it with `Pop3Client.connect()`. */
export class Pop3Client {
  /** CAPA result (RFC 2449 §5): upper-case name → arguments, e.g. 'SASL' → ['PLAIN']. */
  readonly capabilities = new Map<string, string[]>();
  private socket: net.Socket;
  private readonly opts: Pop3ClientOptions;
  private readonly where: string;
  private readonly timeoutMs: number;
  private readonly log?: Logger;
  private readonly lines = new LineReader(MAX_LINE);
  private waiters: Waiter[] = [];
  private body: { unstuffer: DotUnstuffer; waiter: Waiter; status: StatusLine } | null = null;
  private broken: TemporaryError | null = null;
  private timer: NodeJS.Timeout | undefined;
  private sinkPause: (() => void) | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(opts: Pop3ClientOptions, socket: net.Socket) {
    this.opts = opts;
    this.where = `POP3 ${opts.host}:${opts.port}`;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.log = opts.log?.child({ upstream: `${opts.host}:${opts.port}` });
    this.socket = socket;
    this.attach(socket);
  }

  /** Connects, reads the greeting, runs CAPA, and STLS plus CAPA again when tls=starttls. */
  static async connect(opts: Pop3ClientOptions): Promise<Pop3Client> {
    const where = `POP3 ${opts.host}:${opts.port}`;
    const client = new Pop3Client(opts, await openSocket(opts, where));
    try {
      const greeting = await client.expect('greeting'); // RFC 1939 §4
      if (greeting.kind !== 'ok') {
        // a server too busy to talk says so in its greeting (RFC 2449 §8.1.2; Microsoft's "Server Unavailable")
        const refused = new Pop3ReplyError('greeting', greeting);
        throw classifyLoginRefusal(greeting) === 'throttled'
          ? new ThrottledError(`${where}: ${refused.message}`, { cause: refused })
          : refused;
      }
      await client.loadCapabilities();
      if (opts.tls === 'starttls') {
        await client.startTls();
        await client.loadCapabilities(); // RFC 2595 §4: capabilities may change after STLS
      }
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** True when the server offers PIPELINING (RFC 2449 §6.6). */
  get pipelining(): boolean {
    return this.capabilities.has('PIPELINING');
  }

  /** Logs in with AUTH PLAIN when SASL PLAIN is offered (RFC 5034), else USER/PASS (RFC 1939 §7). */
  login(user: string, pass: string): Promise<void> {
    return this.exclusive(async () => {
      if (/[\r\n\0]/.test(user) || /[\r\n\0]/.test(pass)) {
        throw new AuthError(`${this.where}: user name or password contains CR, LF or NUL`, { code: 'EAUTH' });
      }
      const sasl = (this.capabilities.get('SASL') ?? []).map((m) => m.toUpperCase());
      if (sasl.includes('PLAIN')) return this.authPlain(user, pass);
      await this.loginStep(`USER ${user}`, 'USER');
      await this.loginStep(`PASS ${pass}`, 'PASS ****');
    });
  }

  /**
   * Logs in with an OAuth 2.0 access token. The mechanism comes from CAPA SASL: XOAUTH2 when
   * offered, since it is what Microsoft 365 (its only one) and Gmail implement, else
   * OAUTHBEARER (RFC 7628); with no SASL list, XOAUTH2 is tried. `mechanism` forces one.
   */
  loginOAuth(user: string, accessToken: string, mechanism?: OAuthMechanism): Promise<void> {
    return this.exclusive(async () => {
      if (/[\r\n\0\x01]/.test(user) || /[\s\0\x01]/.test(accessToken)) {
        throw new AuthError(`${this.where}: user name or access token contains a control character`, { code: 'EAUTH' });
      }
      const sasl = (this.capabilities.get('SASL') ?? []).map((m) => m.toUpperCase());
      const mech = mechanism ?? (sasl.includes('XOAUTH2') || !sasl.includes('OAUTHBEARER') ? 'XOAUTH2' : 'OAUTHBEARER');
      return this.authOAuth(mech, user, accessToken);
    });
  }

  /** STAT (RFC 1939 §5): message count and total octets. */
  stat(): Promise<{ count: number; octets: number }> {
    return this.exclusive(async () => {
      const st = await this.simple('STAT');
      const m = /^(\d+)\s+(\d+)/.exec(st.text);
      if (!m) throw protocolError(`bad STAT reply "${st.text.slice(0, 80)}"`);
      return { count: Number(m[1]), octets: Number(m[2]) };
    });
  }

  /** UIDL (RFC 1939 §7): every message number with its unique id (bytes kept as latin1). */
  uidl(): Promise<Array<{ msg: number; uidl: string }>> {
    return this.exclusive(async () =>
      (await this.multiLines('UIDL')).map((line) => {
        const m = /^(\d+)[ \t]+(\S+)/.exec(line.toString('latin1'));
        if (!m) throw protocolError(`bad UIDL line "${line.toString('latin1').slice(0, 80)}"`);
        return { msg: Number(m[1]), uidl: m[2]! };
      }),
    );
  }

  /** LIST (RFC 1939 §5): message number → size in octets. */
  list(): Promise<Map<number, number>> {
    return this.exclusive(async () => {
      const sizes = new Map<number, number>();
      for (const line of await this.multiLines('LIST')) {
        const m = /^(\d+)[ \t]+(\d+)/.exec(line.toString('latin1'));
        if (!m) throw protocolError(`bad LIST line "${line.toString('latin1').slice(0, 80)}"`);
        sizes.set(Number(m[1]), Number(m[2]));
      }
      return sizes;
    });
  }

  /**
   * RETR (RFC 1939 §5): writes the exact un-stuffed message bytes to `sink`, waiting for
   * 'drain' when it is full; resolves with the bytes written. Never ends the sink. If the sink
   * fails, the reply is still read to its terminator, then the sink's error is thrown.
   */
  retr(msg: number, sink: Writable): Promise<number> {
    // With PIPELINING the command is written at once; the reply is matched in order.
    return this.pipelined(async () => {
      checkMsg(msg);
      let written = 0;
      let sinkError: Error | null = null;
      const onSinkError = (err: Error): void => {
        sinkError ??= err;
      };
      sink.on('error', onSinkError);
      try {
        const st = await this.command(`RETR ${msg}`, undefined, (data) => {
          if (sinkError) return;
          if (sink.destroyed || sink.writableEnded) {
            sinkError = sink.errored ?? new Error('RETR sink was closed before the message ended');
            return;
          }
          try {
            written += data.length;
            if (!sink.write(data)) this.pauseForSink(sink);
          } catch (err) {
            sinkError ??= err instanceof Error ? err : new Error(String(err));
          }
        });
        if (st.kind !== 'ok') throw new Pop3ReplyError(`RETR ${msg}`, st);
        if (sinkError) throw sinkError;
        return written;
      } finally {
        sink.off('error', onSinkError);
        this.sinkPause?.();
      }
    });
  }

  /** DELE (RFC 1939 §5): marks one message; it goes only when QUIT succeeds. */
  dele(msg: number): Promise<void> {
    return this.exclusive(async () => {
      checkMsg(msg);
      await this.simple(`DELE ${msg}`);
    });
  }

  /** DELE for each message, pipelined when the server offers PIPELINING; all replies are read. */
  deleMany(msgs: number[]): Promise<void> {
    return this.exclusive(async () => {
      msgs.forEach(checkMsg);
      if (!this.pipelining) {
        for (const msg of msgs) await this.simple(`DELE ${msg}`);
        return;
      }
      let first: Error | null = null;
      for (let i = 0; i < msgs.length; i += PIPELINE_BATCH) {
        const batch = msgs.slice(i, i + PIPELINE_BATCH);
        const replies = batch.map((msg) => this.expect(`DELE ${msg}`));
        for (const msg of batch) this.trace('C', `DELE ${msg}`);
        this.socket.write(batch.map((msg) => `DELE ${msg}\r\n`).join(''));
        const settled = await Promise.allSettled(replies);
        for (const [k, r] of settled.entries()) {
          if (r.status === 'rejected') first ??= r.reason as Error;
          else if (r.value.kind !== 'ok') first ??= new Pop3ReplyError(`DELE ${batch[k]}`, r.value);
        }
        if (first) throw first;
      }
    });
  }

  /** NOOP (RFC 1939 §5). */
  noop(): Promise<void> {
    return this.exclusive(async () => {
      await this.simple('NOOP');
    });
  }

  /** QUIT (RFC 1939 §6): waits for +OK, i.e. for the UPDATE state to apply DELEs, then closes. */
  quit(): Promise<void> {
    return this.exclusive(async () => {
      const st = await this.command('QUIT');
      this.fail(new TemporaryError(`${this.where}: connection closed after QUIT`));
      if (st.kind !== 'ok') throw new Pop3ReplyError('QUIT', st);
    });
  }

  /** Destroys the socket at once: no QUIT, so the server applies no deletion. */
  close(): void {
    this.fail(new TemporaryError(`${this.where}: connection closed by the client`));
  }

  // ---- commands -------------------------------------------------------------------------

  private async authPlain(user: string, pass: string): Promise<void> {
    // RFC 5034 §4 / RFC 4616: authzid NUL authcid NUL passwd; initial response unless the
    // command would exceed 255 octets, in which case it follows an empty challenge.
    const token = Buffer.from(`\0${user}\0${pass}`, 'utf8').toString('base64');
    let st: StatusLine;
    if (`AUTH PLAIN ${token}\r\n`.length <= 255) {
      st = await this.command(`AUTH PLAIN ${token}`, 'AUTH PLAIN ****');
    } else {
      st = await this.command('AUTH PLAIN');
      if (st.kind === 'continue') st = await this.command(token, '****');
    }
    if (st.kind === 'continue') {
      await this.command('*'); // cancel an exchange we cannot continue (RFC 5034 §4)
      throw new AuthError(`${this.where}: AUTH PLAIN asked for more than one response`, { code: 'EAUTH' });
    }
    if (st.kind !== 'ok') throw this.loginError('AUTH PLAIN', st);
  }

  private async authOAuth(mech: OAuthMechanism, user: string, token: string): Promise<void> {
    // XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A (Google's and Microsoft's format);
    // OAUTHBEARER: RFC 7628 §3.1 gs2-header "n,a=user," ^A "auth=Bearer " token ^A ^A.
    const payload =
      mech === 'XOAUTH2'
        ? `user=${user}\x01auth=Bearer ${token}\x01\x01`
        : `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01auth=Bearer ${token}\x01\x01`;
    let st = await this.command(`AUTH ${mech}`); // RFC 5034 §4, two steps: Microsoft refuses an initial response
    if (st.kind === 'continue') st = await this.command(Buffer.from(payload, 'utf8').toString('base64'), '****');
    if (st.kind === 'continue') {
      // RFC 7628 §3.2.3: a failure comes as a challenge with a JSON error; answer it (OAUTHBEARER:
      // a single ^A; XOAUTH2: an empty line) and the server ends with -ERR.
      const detail = oauthErrorDetail(st.text);
      st = await this.command(mech === 'OAUTHBEARER' ? 'AQ==' : '');
      if (st.kind === 'continue') st = await this.command('*');
      const e = this.loginError(`AUTH ${mech}`, st.kind === 'ok' ? { kind: 'err', text: 'unexpected +OK' } : st);
      if (e instanceof AuthError) throw new AuthError(`${e.message}${detail ? ` (${detail})` : ''}`, { code: 'EAUTH' });
      throw e;
    }
    if (st.kind !== 'ok') throw this.loginError(`AUTH ${mech}`, st);
  }

  private async loginStep(line: string, masked: string): Promise<void> {
    const st = await this.command(line, masked);
    if (st.kind !== 'ok') throw this.loginError(masked, st);
  }

  /** A refused login, classified (`classifyLoginRefusal`), with the server's words. */
  private loginError(command: string, st: StatusLine): TemporaryError {
    const kind = classifyLoginRefusal(st);
    const code = st.code ? `[${st.code}] ` : '';
    const words = `-ERR ${code}${st.text}`.trimEnd();
    if (kind === 'throttled')
      return new ThrottledError(`${this.where}: login refused for now: ${words}`, {
        cause: new Pop3ReplyError(command, st),
      });
    if (kind === 'temporary') return new Pop3ReplyError(command, st);
    return new AuthError(`${this.where}: login refused: ${words}`, { code: 'EAUTH' });
  }

  private async loadCapabilities(): Promise<void> {
    // RFC 2449 §5: an old server answers -ERR to CAPA; then nothing is known.
    this.capabilities.clear();
    let lines: Buffer[] = [];
    try {
      lines = await this.multiLines('CAPA');
    } catch (err) {
      if (!(err instanceof Pop3ReplyError)) throw err;
    }
    for (const line of lines) {
      const [name, ...args] = line.toString('latin1').trim().split(/\s+/);
      if (name) this.capabilities.set(name.toUpperCase(), args);
    }
  }

  private async startTls(): Promise<void> {
    await this.simple('STLS'); // RFC 2595 §4
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

  /** Sends a command that has a single-line reply and requires +OK. */
  private async simple(line: string): Promise<StatusLine> {
    const st = await this.command(line);
    if (st.kind !== 'ok') throw new Pop3ReplyError(line, st);
    return st;
  }

  /** Sends a multi-line command (RFC 1939 §3) and returns its lines; -ERR throws. */
  private async multiLines(command: string): Promise<Buffer[]> {
    const reader = new LineReader(MAX_LINE);
    const lines: Buffer[] = [];
    const st = await this.command(command, undefined, (data) => {
      reader.push(data);
      for (let line = reader.readLine(); line !== null; line = reader.readLine()) {
        if (lines.length >= MAX_LIST_LINES) throw protocolError(`${command} reply longer than ${MAX_LIST_LINES} lines`);
        lines.push(line);
      }
    });
    if (st.kind !== 'ok') throw new Pop3ReplyError(command, st);
    return lines;
  }

  /** Writes one command line and resolves with its status (after the body, for multi-line). */
  private command(line: string, masked = line, body?: (data: Buffer) => void): Promise<StatusLine> {
    if (this.broken) return Promise.reject(this.closedError());
    const reply = this.expect(masked, body);
    this.trace('C', masked);
    this.socket.write(`${line}\r\n`);
    return reply;
  }

  private expect(command: string, body?: (data: Buffer) => void): Promise<StatusLine> {
    if (this.broken) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => {
      this.waiters.push({ command, body, resolve, reject });
      this.updateTimer();
    });
  }

  /**
   * Runs a command that may be pipelined (RFC 2449 §6.6): without PIPELINING it waits its turn
   * like any other; with it, it is written at once, after whatever was queued before it started.
   */
  private pipelined<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.pipelining) return this.exclusive(fn);
    if (this.broken) return Promise.reject(this.closedError());
    const prev = this.tail;
    let sent!: () => void;
    const isSent = new Promise<void>((r) => {
      sent = r;
    });
    const run = async (): Promise<T> => {
      if (this.broken) {
        sent();
        throw this.closedError();
      }
      const p = fn(); // fn writes its command synchronously before its first await
      sent();
      return p;
    };
    const result = prev.then(run, run);
    // the next command may start once this one is on the wire, not when its reply is complete
    this.tail = isSent;
    return result;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.broken) return Promise.reject(this.closedError());
    const run = (): Promise<T> => (this.broken ? Promise.reject(this.closedError()) : fn());
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
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
        if (r.data.length) this.body.waiter.body!(r.data);
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
        this.body = { unstuffer: new DotUnstuffer(), waiter, status }; // RFC 1939 §3
        input = this.lines.takeRest();
        continue;
      }
      this.waiters.shift();
      waiter.resolve(status);
    }
  }

  private pauseForSink(sink: Writable): void {
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

  /** Marks the connection broken, rejects everything pending, destroys the socket. */
  private fail(err: TemporaryError): void {
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

  private closedError(): TemporaryError {
    const cause = this.broken!;
    return new TemporaryError(`${this.where}: connection is closed (${cause.message})`, { cause, code: cause.code });
  }

  private trace(dir: 'C' | 'S', line: string): void {
    if (this.log?.isLevelEnabled('trace')) this.log.trace({ dir }, line.length > 200 ? `${line.slice(0, 200)}…` : line);
  }
}

/** Logs in with the endpoint's access token (SASL OAuth) or its password. */
export function pop3Login(client: Pop3Client, ep: UpstreamEndpoint): Promise<void> {
  return ep.accessToken ? client.loginOAuth(ep.username, ep.accessToken) : client.login(ep.username, ep.password ?? '');
}
