/**
 * The local IMAP listener (RFC 3501): plain TCP on every configured host (loopback by default)
 * with STARTTLS when a certificate is configured, plus an optional implicit-TLS port
 * (`../tls-options.ts` profiles, as POP3). Each connection gets an `ImapSession`; the server owns
 * only listening, the connection slots and a graceful stop. A login gives the session the
 * account's `MailboxStore` through `hooks.openAccount` (the daemon decides how it is opened).
 *
 * Limits: the connection slots policy shared with POP3 and SMTP (`../connection-slots.ts`); a
 * refused client gets `* BYE` and is closed at once. Idle timeout 30 min after login (RFC 3501
 * §5.4), shorter before; the reader's limits bound every line, literal and command.
 *
 * Invariants: never opens a non-loopback address on its own (the config refuses one without
 * `allowRemote`); a failing session never affects another; `stop()` stops accepting, lets
 * running commands finish within `closeTimeoutMs` (every change is durable before its OK, so
 * what was not answered was not promised), then destroys what is left.
 */
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { BoundAddress } from '../listen.js';
import type { LocalAuth } from '../local-auth.js';
import { LocalListener } from '../local-listener.js';
import { type ListenerTlsFiles, loadListenerTls } from '../tls-options.js';
import type { ReaderLimits } from './command-reader.js';
import { type ImapHooks, ImapSession, type SessionDeps } from './session.js';

export type { ImapHooks } from './session.js';

/** Certificate files, the TLS profile and the implicit-TLS port. */
export interface ImapTlsOptions extends ListenerTlsFiles {
  /** Implicit-TLS port (0 picks a free one); undefined: none. */
  port?: number;
}

/** Options of `ImapServer`; only `hosts`, `port`, `auth`, `hooks` and `log` are required. */
export interface ImapServerOptions {
  hosts: string[];
  /** Plain (and STARTTLS) port; 0 picks a free one. */
  port: number;
  tls?: ImapTlsOptions;
  auth: LocalAuth;
  hooks: ImapHooks;
  log: Logger;
  /** After login; default 30 min (RFC 3501 §5.4). */
  idleTimeoutMs?: number;
  /** Before login; default 2 min. */
  preLoginIdleMs?: number;
  /** Default 50 (`../connection-slots.ts`). */
  maxConnections?: number;
  /** Default 10. */
  maxConnectionsPerAddress?: number;
  /** A connection must log in within this long; default 60 s. */
  loginTimeoutMs?: number;
  /** The login deadline when over half the slots are taken; default 10 s. */
  busyLoginTimeoutMs?: number;
  /** Command reader limits (line, literal, APPEND size); defaults in `command-reader.ts`. */
  limits?: Partial<ReaderLimits>;
  /** How long `stop()` waits for running commands; default 5 s. */
  closeTimeoutMs?: number;
  /** Name in the greeting and ID; default `localpost`. */
  implementation?: string;
}

export type ImapAddress = BoundAddress;

export class ImapServer extends LocalListener<ImapSession> {
  constructor(private readonly o: ImapServerOptions) {
    super(
      { ...o, tlsPort: o.tls?.port },
      {
        label: 'IMAP',
        cidPrefix: 'i',
        refusal: (why) =>
          `* BYE [UNAVAILABLE] too many connections${why === 'address' ? ' from your address' : ''}\r\n`,
      },
    );
  }

  async start(): Promise<void> {
    const o = this.o;
    const tlsOptions = o.tls ? await loadListenerTls(o.tls) : undefined;
    const deps: SessionDeps = {
      auth: o.auth,
      hooks: o.hooks,
      log: o.log,
      tlsContext: tlsOptions ? tls.createSecureContext(tlsOptions) : undefined,
      implementation: o.implementation ?? 'localpost',
      idleTimeoutMs: o.idleTimeoutMs ?? 30 * 60_000,
      preLoginIdleMs: o.preLoginIdleMs ?? 2 * 60_000,
      limits: o.limits ?? {},
    };
    await this.listen((socket, secure, log) => new ImapSession(socket, deps, secure, log), tlsOptions);
  }
}
