/**
 * Our upstream POP3 client (RFC 1939, RFC 2449 CAPA/RESP-CODES/PIPELINING, RFC 2595 STLS,
 * RFC 5034 AUTH PLAIN, RFC 7628 OAUTHBEARER and Google/Microsoft's XOAUTH2), on the shared wire
 * codec: the session and its commands. The transport, reply matching and timeouts live in
 * `connection.ts`; the login exchanges in `login.ts`.
 *
 * Invariants:
 * - Byte-exact: RETR writes the un-stuffed message bytes, final line end included, whatever
 *   the TCP segmentation; they never become strings.
 * - Commands run one at a time in call order; with PIPELINING, RETR goes out without waiting
 *   for the reply before it, and DELEs go out in batches, their replies matched in order.
 * - Memory is bounded: RETR honours the sink's backpressure by pausing the socket.
 * - RETR counts the bytes received: past `maxBytes` it writes nothing more, and the connection
 *   (out of step mid-body) fails with OversizeError (docs/guarantees.md#hostile-upstream-servers).
 * - Nothing is deleted unless QUIT is answered +OK; `close()` sends no QUIT.
 */
import type { Writable } from 'node:stream';
import { TemporaryError, ThrottledError } from '../../shared/errors.js';
import { OversizeError } from '../size-guard.js';
import type { UpstreamEndpoint } from '../types.js';
import { type Pop3ClientOptions, Pop3Connection, Pop3ReplyError, protocolError } from './connection.js';
import { classifyLoginRefusal, loginOAuth, loginPassword, type OAuthMechanism } from './login.js';

export { type Pop3ClientOptions, Pop3ReplyError } from './connection.js';
export { classifyLoginRefusal, type LoginRefusal, type OAuthMechanism } from './login.js';

/** Pipelined DELE commands written per batch (RFC 2449 §6.6). */
const PIPELINE_BATCH = 100;
/** Most octets of a TOP reply kept in memory (a header longer than this is cut). */
const HEAD_MAX = 64 * 1024;

function checkMsg(msg: number): void {
  if (!Number.isSafeInteger(msg) || msg < 1) throw new RangeError(`invalid POP3 message number: ${msg}`);
}

/** A connected POP3 session; create it with `Pop3Client.connect()`. */
export class Pop3Client {
  /** CAPA result (RFC 2449 §5): upper-case name → arguments, e.g. 'SASL' → ['PLAIN']. */
  readonly capabilities = new Map<string, string[]>();
  private readonly conn: Pop3Connection;

  private constructor(conn: Pop3Connection) {
    this.conn = conn;
  }

  /** Connects, reads the greeting, runs CAPA, and STLS plus CAPA again when tls=starttls. */
  static async connect(opts: Pop3ClientOptions): Promise<Pop3Client> {
    const conn = await Pop3Connection.open(opts);
    const client = new Pop3Client(conn);
    try {
      const greeting = await conn.expect('greeting'); // RFC 1939 §4
      if (greeting.kind !== 'ok') {
        // a server too busy to talk says so in its greeting (RFC 2449 §8.1.2; Microsoft's "Server Unavailable")
        const refused = new Pop3ReplyError('greeting', greeting);
        throw classifyLoginRefusal(greeting) === 'throttled'
          ? new ThrottledError(`${conn.where}: ${refused.message}`, { cause: refused })
          : refused;
      }
      await client.loadCapabilities();
      if (opts.tls === 'starttls') {
        await conn.startTls();
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
    return this.conn.exclusive(() => loginPassword(this.conn, this.capabilities, user, pass));
  }

  /**
   * Logs in with an OAuth 2.0 access token: XOAUTH2 when CAPA SASL offers it or lists nothing,
   * else OAUTHBEARER (see `login.ts`). `mechanism` forces one.
   */
  loginOAuth(user: string, accessToken: string, mechanism?: OAuthMechanism): Promise<void> {
    return this.conn.exclusive(() => loginOAuth(this.conn, this.capabilities, user, accessToken, mechanism));
  }

  /** STAT (RFC 1939 §5): message count and total octets. */
  stat(): Promise<{ count: number; octets: number }> {
    return this.conn.exclusive(async () => {
      const st = await this.conn.simple('STAT');
      const m = /^(\d+)\s+(\d+)/.exec(st.text);
      if (!m) throw protocolError(`bad STAT reply "${st.text.slice(0, 80)}"`);
      return { count: Number(m[1]), octets: Number(m[2]) };
    });
  }

  /** UIDL (RFC 1939 §7): every message number with its unique id (bytes kept as latin1). */
  uidl(): Promise<Array<{ msg: number; uidl: string }>> {
    return this.conn.exclusive(async () =>
      (await this.conn.multiLines('UIDL')).map((line) => {
        const m = /^(\d+)[ \t]+(\S+)/.exec(line.toString('latin1'));
        const uidl = m?.[2];
        if (!m || uidl === undefined) throw protocolError(`bad UIDL line "${line.toString('latin1').slice(0, 80)}"`);
        return { msg: Number(m[1]), uidl };
      }),
    );
  }

  /** LIST (RFC 1939 §5): message number → size in octets. */
  list(): Promise<Map<number, number>> {
    return this.conn.exclusive(async () => {
      const sizes = new Map<number, number>();
      for (const line of await this.conn.multiLines('LIST')) {
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
   * fails, the reply is still read to its terminator, then the sink's error is thrown. A body
   * longer than `maxBytes` is abandoned before its excess is written: the connection fails with
   * an OversizeError (`declared` is the size LIST gave, for its message).
   */
  retr(msg: number, sink: Writable, maxBytes = Number.POSITIVE_INFINITY, declared?: number): Promise<number> {
    // With PIPELINING the command is written at once; the reply is matched in order.
    return this.conn.pipelined(this.pipelining, async () => {
      checkMsg(msg);
      let written = 0;
      let received = 0;
      let sinkError: Error | null = null;
      const onSinkError = (err: Error): void => {
        sinkError ??= err;
      };
      sink.on('error', onSinkError);
      try {
        const st = await this.conn.command(`RETR ${msg}`, undefined, (data) => {
          // thrown into the reader: the connection fails, since the rest of the body is unread
          received += data.length;
          if (received > maxBytes) throw new OversizeError(declared, maxBytes, received);
          if (sinkError) return;
          if (sink.destroyed || sink.writableEnded) {
            sinkError = sink.errored ?? new Error('RETR sink was closed before the message ended');
            return;
          }
          try {
            written += data.length;
            if (!sink.write(data)) this.conn.pauseForSink(sink);
          } catch (err) {
            sinkError ??= err instanceof Error ? err : new Error(String(err));
          }
        });
        if (st.kind !== 'ok') throw new Pop3ReplyError(`RETR ${msg}`, st);
        if (sinkError) throw sinkError;
        return written;
      } finally {
        sink.off('error', onSinkError);
        this.conn.resumeFromSink();
      }
    });
  }

  /** True unless CAPA answered and left TOP out (TOP is optional, RFC 1939 §7; RFC 2449 §6.2). */
  get hasTop(): boolean {
    return this.capabilities.size === 0 || this.capabilities.has('TOP');
  }

  /**
   * TOP n m (RFC 1939 §7): the header, the empty line and `lines` body lines, un-stuffed, in
   * memory; at most `HEAD_MAX` octets are kept, and a reply past `maxBytes` fails the connection
   * like RETR's. Pipelined like RETR when the server offers it.
   */
  head(msg: number, lines = 0, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
    return this.conn.pipelined(this.pipelining, async () => {
      checkMsg(msg);
      const chunks: Buffer[] = [];
      let kept = 0;
      let received = 0;
      const st = await this.conn.command(`TOP ${msg} ${lines}`, undefined, (data) => {
        received += data.length;
        if (received > maxBytes) throw new OversizeError(undefined, maxBytes, received); // as in retr()
        if (kept >= HEAD_MAX) return;
        chunks.push(data.subarray(0, HEAD_MAX - kept));
        kept += data.length;
      });
      if (st.kind !== 'ok') throw new Pop3ReplyError(`TOP ${msg} ${lines}`, st);
      return Buffer.concat(chunks);
    });
  }

  /** DELE (RFC 1939 §5): marks one message; it goes only when QUIT succeeds. */
  dele(msg: number): Promise<void> {
    return this.conn.exclusive(async () => {
      checkMsg(msg);
      await this.conn.simple(`DELE ${msg}`);
    });
  }

  /** DELE for each message, pipelined when the server offers PIPELINING; all replies are read. */
  deleMany(msgs: number[]): Promise<void> {
    return this.conn.exclusive(async () => {
      msgs.forEach(checkMsg);
      if (!this.pipelining) {
        for (const msg of msgs) await this.conn.simple(`DELE ${msg}`);
        return;
      }
      let first: Error | null = null;
      for (let i = 0; i < msgs.length; i += PIPELINE_BATCH) {
        const batch = msgs.slice(i, i + PIPELINE_BATCH).map((msg) => `DELE ${msg}`);
        const settled = await Promise.allSettled(this.conn.commands(batch));
        for (const [k, r] of settled.entries()) {
          if (r.status === 'rejected') first ??= r.reason as Error;
          else if (r.value.kind !== 'ok') first ??= new Pop3ReplyError(batch[k] ?? 'DELE', r.value);
        }
        if (first) throw first;
      }
    });
  }

  /** NOOP (RFC 1939 §5). */
  noop(): Promise<void> {
    return this.conn.exclusive(async () => {
      await this.conn.simple('NOOP');
    });
  }

  /** QUIT (RFC 1939 §6): waits for +OK, i.e. for the UPDATE state to apply DELEs, then closes. */
  quit(): Promise<void> {
    return this.conn.exclusive(async () => {
      const st = await this.conn.command('QUIT');
      this.conn.fail(new TemporaryError(`${this.conn.where}: connection closed after QUIT`));
      if (st.kind !== 'ok') throw new Pop3ReplyError('QUIT', st);
    });
  }

  /** Destroys the socket at once: no QUIT, so the server applies no deletion. */
  close(): void {
    this.conn.fail(new TemporaryError(`${this.conn.where}: connection closed by the client`));
  }

  private async loadCapabilities(): Promise<void> {
    // RFC 2449 §5: an old server answers -ERR to CAPA; then nothing is known.
    this.capabilities.clear();
    let lines: Buffer[] = [];
    try {
      lines = await this.conn.multiLines('CAPA');
    } catch (err) {
      if (!(err instanceof Pop3ReplyError)) throw err;
    }
    for (const line of lines) {
      const [name, ...args] = line.toString('latin1').trim().split(/\s+/);
      if (name) this.capabilities.set(name.toUpperCase(), args);
    }
  }
}

/** Logs in with the endpoint's access token (SASL OAuth) or its password. */
export function pop3Login(client: Pop3Client, ep: UpstreamEndpoint): Promise<void> {
  return ep.accessToken ? client.loginOAuth(ep.username, ep.accessToken) : client.login(ep.username, ep.password ?? '');
}
