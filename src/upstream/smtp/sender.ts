/**
 * Relaying queued messages to an account's upstream SMTP server with nodemailer
 * (its raw-message mode, so the client's bytes go out as sent).
 *
 * Contract of `Sender.send`:
 * - the message is streamed from its `.eml` file (never parsed or re-serialised, so the bytes stay as sent) through
 *   `StripBcc`, and sent with an explicit envelope: MAIL FROM and every RCPT, Bcc included;
 *   nodemailer turns bare LF into CRLF on the way (upstreams reject bare LF); `BODY=8BITMIME` when the message has
 *   8-bit bytes and the server offers it;
 * - it resolves with per-recipient results (sent / failed for good / deferred) whenever the
 *   upstream answered about recipients or the message, and rejects with a `SendError` (scope
 *   connection, message or config) or a `SendAuthError` otherwise (see `classify.ts`);
 * - `maxConnections` pooled connections per sender (one sender per account): each carries one
 *   message at a time over a kept-alive connection; a broken connection is replaced at the next
 *   send.
 * - `signal` aborts a send (graceful stop); an aborted send is a temporary failure.
 * - after each send, the SIZE the server advertised in its EHLO reply (0: none) is reported to
 *   `onServerSize`, read from nodemailer's pooled connection (not a public API: when it is not
 *   there, nothing is reported and the configured limit alone applies).
 * - OAuth: with `endpoint.accessToken` the login is AUTH XOAUTH2 (nodemailer's OAuth2 type);
 *   each new pooled connection asks `renewAccessToken` for a current token (a refused token is
 *   renewed once), so a pool outliving a token's hour keeps working.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTransport, type Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import { bunyanLogger } from '../../shared/log-adapter.js';
import type { UpstreamEndpoint } from '../types.js';
import { classifyError, classifyInfo, type SendResult } from './classify.js';
import { StripBcc } from './strip-bcc.js';

/** A queued message to relay. */
export interface OutgoingMessage {
  /** Path of the stored bytes. */
  path: string;
  /** Envelope sender ('' for the null sender). */
  from: string;
  /** The recipients still to deliver. */
  to: string[];
  /** Stored size (sent as SIZE=). */
  size: number;
  /** Has bytes ≥ 0x80. */
  eightBit: boolean;
}

/** Relays messages for one account. */
export interface Sender {
  /** How many sends may run at once, each on its own connection (default 1). */
  readonly connections?: number;
  send(msg: OutgoingMessage, signal?: AbortSignal): Promise<SendResult>;
  /** Close the pooled connection. */
  close(): void;
}

/** Timeouts of a sender, in milliseconds. */
export interface SenderTimeouts {
  connect?: number;
  greeting?: number;
  /** Inactivity on an open connection (a stalled server). */
  socket?: number;
}

/** How Nodemailer logs in: a password, or XOAUTH2 with a token that is renewed when needed. */
function smtpAuth(ep: UpstreamEndpoint): object {
  if (!ep.accessToken) return { user: ep.username, pass: ep.password ?? '' };
  const renew = ep.renewAccessToken;
  return {
    type: 'OAuth2',
    user: ep.username,
    accessToken: ep.accessToken,
    // nodemailer keeps a token until `expires`; a minute, since the token manager caches anyway
    expires: Date.now() + 60_000,
    ...(renew
      ? {
          provisionCallback: (
            _user: string,
            force: boolean,
            cb: (err: Error | null, token?: string, expires?: number) => void,
          ) => {
            renew(force).then(
              (t) => cb(null, t, Date.now() + 60_000),
              (err: Error) => cb(err),
            );
          },
        }
      : {}),
  };
}

/** Options of `NodemailerSender`. */
export interface SenderOptions {
  endpoint: UpstreamEndpoint;
  log: Logger;
  /** Name sent with EHLO; default `localhost`. */
  name?: string;
  /** Pooled connections, each carrying one message at a time; default 1. */
  maxConnections?: number;
  timeouts?: SenderTimeouts;
  /** Told the server's advertised SIZE (0: no limit stated) after each send over a connection. */
  onServerSize?: (bytes: number) => void;
}

/** The SIZE of the pool's open connection, if nodemailer has one (0: none advertised). */
function advertisedSize(transport: Transporter | undefined): number | undefined {
  type Pool = { _connections?: { connection?: { _maxAllowedSize?: unknown; _supportedExtensions?: unknown } }[] };
  const conns = (transport as unknown as { transporter?: Pool } | undefined)?.transporter?._connections;
  const c = Array.isArray(conns) ? conns[0]?.connection : undefined;
  // before EHLO there are no extensions: nothing learnt yet
  if (!c || !Array.isArray(c._supportedExtensions) || !c._supportedExtensions.length) return undefined;
  return typeof c._maxAllowedSize === 'number' ? c._maxAllowedSize : undefined;
}

/** Up to this size a message is read in one synchronous call (page cache, no thread-pool hops). */
const READ_AT_ONCE = 1 << 20;

/** The stored bytes of a message: read at once when small, else streamed. */
function messageSource(msg: OutgoingMessage): Readable {
  if (msg.size <= READ_AT_ONCE) {
    try {
      return Readable.from([readFileSync(msg.path)]);
    } catch {
      // the stream reports the same failure through sendMail (ESTREAM)
    }
  }
  return createReadStream(msg.path, { highWaterMark: 256 * 1024 });
}

/** The nodemailer-backed sender (pooled, `maxConnections` connections). */
export class NodemailerSender implements Sender {
  private transport?: Transporter;
  readonly connections: number;

  constructor(private readonly o: SenderOptions) {
    this.connections = Math.max(1, o.maxConnections ?? 1);
  }

  private get mailer(): Transporter {
    if (!this.transport) {
      const { endpoint: ep, log } = this.o;
      const t = this.o.timeouts ?? {};
      this.transport = createTransport({
        pool: true,
        maxConnections: this.connections,
        maxMessages: 1000,
        host: ep.host,
        port: ep.port,
        secure: ep.tls === 'implicit',
        requireTLS: ep.tls === 'starttls',
        ignoreTLS: ep.tls === 'none',
        // SNI and the name check use the host; nodemailer leaves SNI out for an IP address
        tls: { ...(ep.ca ? { ca: ep.ca } : {}) },
        auth: smtpAuth(ep),
        name: this.o.name ?? 'localhost',
        connectionTimeout: t.connect ?? 30_000,
        greetingTimeout: t.greeting ?? 30_000,
        socketTimeout: t.socket ?? 120_000,
        logger: bunyanLogger(log) as never,
        debug: log.isLevelEnabled('trace'),
      });
      this.transport.on('error', (err: Error) => log.debug({ err: err.message }, 'SMTP pool error'));
    }
    return this.transport;
  }

  async send(msg: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const body = new PassThrough();
    const reading = pipeline(messageSource(msg), new StripBcc(), body);
    reading.catch(() => undefined); // a missing file surfaces through sendMail as ESTREAM
    try {
      const info = await this.mailer.sendMail({
        envelope: { from: msg.from, to: msg.to, size: msg.size, use8BitMime: msg.eightBit } as never,
        raw: body,
        ...(signal ? { signal } : {}),
      });
      this.reportSize();
      return classifyInfo(info as { accepted?: unknown[]; rejectedErrors?: unknown[]; response?: string }, msg.to);
    } catch (err) {
      body.destroy();
      this.reportSize();
      return classifyError(err, msg.to);
    }
  }

  private reportSize(): void {
    const size = this.o.onServerSize && advertisedSize(this.transport);
    if (size !== undefined) this.o.onServerSize?.(size);
  }

  /** Connects and logs in without sending (`localpost check`); rejects with a classified SendError. */
  async verify(): Promise<void> {
    try {
      await this.mailer.verify();
    } catch (err) {
      classifyError(err, []); // throws for every connection, TLS and login failure
      throw err;
    }
  }

  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }
}
