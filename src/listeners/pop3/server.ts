/**
 * The local POP3 listener: plain TCP on every configured
 * host (127.0.0.1 and ::1 by default: `localhost` is either) and, when a certificate is configured, STLS on that
 * port plus an implicit-TLS port (an opt-in legacy profile, `../tls-options.ts`, allows TLS 1.0
 * for old clients). Each connection gets a `Pop3Session`; the server owns only listening, the maildrop
 * locks shared by the sessions, and a graceful stop.
 *
 * Limits: the connection slots shared with SMTP (`../connection-slots.ts`: `maxConnections`,
 * `maxConnectionsPerAddress`, the oldest idle session not logged in closed to make room, the
 * login deadline); a refused client gets `-ERR [SYS/TEMP]` and is closed at once, so a flood
 * holds no descriptor for long. Every session has an idle timeout and a per-command deadline
 * besides, so a client trickling a byte every few seconds cannot hold a slot forever; a line over
 * `maxLineLength` gets `-ERR`.
 *
 * Invariants: the server never opens a non-loopback address on its own (the config schema
 * refuses one without `allowRemote`); a failing session never affects another; `stop()` stops
 * accepting, lets running commands (and UPDATE commits) finish within `closeTimeoutMs`, then
 * destroys what is left — a session that did not QUIT commits nothing.
 */

import tls from 'node:tls';
import type { Logger } from 'pino';
import type { BoundAddress } from '../listen.js';
import type { LocalAuth } from '../local-auth.js';
import { LocalListener } from '../local-listener.js';
import { type ListenerTlsFiles, loadListenerTls } from '../tls-options.js';
import type { Pop3Backend } from './backend.js';
import { Pop3Session, type SessionDeps } from './session.js';
import type { Pop3Workarounds } from './types.js';

/** Certificate files, the TLS profile (`../tls-options.ts`) and the implicit-TLS port. */
export interface Pop3TlsOptions extends ListenerTlsFiles {
  /** Implicit-TLS port (0 picks a free one); undefined: no implicit-TLS listener. */
  port?: number;
}

/** Options of `Pop3Server`. */
export interface Pop3ServerOptions {
  hosts: string[];
  /** Plain (and STLS) port; 0 picks a free port (the same one on every host when possible). */
  port: number;
  tls?: Pop3TlsOptions;
  auth: LocalAuth;
  backend: Pop3Backend;
  log: Logger;
  /** Default: both on (Dovecot's `outlook-no-nuls oe-ns-eoh`: old Outlooks need them). */
  workarounds?: Partial<Pop3Workarounds>;
  /** List SASL PLAIN in CAPA on plaintext too (it is always listed under TLS; some clients refuse it in plaintext). */
  advertiseSaslPlain?: boolean;
  /** RFC 1939 §3: at least 10 minutes (the default). */
  idleTimeoutMs?: number;
  /** Sessions open at once (`../connection-slots.ts`); default 50. */
  maxConnections?: number;
  /** Sessions open at once from one client address; default 10. */
  maxConnectionsPerAddress?: number;
  /** A connection must log in within this long, however busy it keeps the line (slow-loris); default 60 s. */
  loginTimeoutMs?: number;
  /** The login deadline of a connection arriving while over half the slots are taken; default 10 s. */
  busyLoginTimeoutMs?: number;
  /** A command line must be complete within this long of its first byte; default 60 s. */
  commandTimeoutMs?: number;
  /** Longest command line, CRLF excluded; default 2048 (RFC 2449 §4 asks for at least 255). */
  maxLineLength?: number;
  /** How long `stop()` waits for running commands; default 5 s. */
  closeTimeoutMs?: number;
  /** IMPLEMENTATION capability text. */
  implementation?: string;
}

/** One bound address. */
export type Pop3Address = BoundAddress;

/** The local POP3 server. */
export class Pop3Server extends LocalListener<Pop3Session> {
  private readonly locks = new Set<string>();

  constructor(private readonly o: Pop3ServerOptions) {
    super(
      { ...o, tlsPort: o.tls?.port },
      {
        label: 'POP3',
        cidPrefix: 'p',
        refusal: (why) =>
          `-ERR [SYS/TEMP] too many connections${why === 'address' ? ' from your address' : ''}, try again later\r\n`,
      },
    );
  }

  async start(): Promise<void> {
    const o = this.o;
    const tlsOptions = o.tls ? await loadListenerTls(o.tls) : undefined;
    const tlsContext = tlsOptions ? tls.createSecureContext(tlsOptions) : undefined;
    const deps: SessionDeps = {
      auth: o.auth,
      backend: o.backend,
      locks: this.locks,
      log: o.log,
      tlsContext,
      workarounds: { outlookNoNuls: true, oeNsEoh: true, ...o.workarounds },
      advertiseSaslPlain: o.advertiseSaslPlain ?? false,
      implementation: o.implementation ?? 'localpost',
      idleTimeoutMs: o.idleTimeoutMs ?? 10 * 60_000,
      commandTimeoutMs: o.commandTimeoutMs ?? 60_000,
      maxLineLength: o.maxLineLength ?? 2048,
    };
    await this.listen((socket, secure, log) => new Pop3Session(socket, deps, secure, log), tlsOptions);
  }
}
