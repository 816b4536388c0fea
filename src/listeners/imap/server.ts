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
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ConnectionSlots } from '../connection-slots.js';
import { type BoundAddress, listenOnHosts, stopListening } from '../listen.js';
import type { LocalAuth } from '../local-auth.js';
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

export class ImapServer {
  private readonly servers: Array<{ server: net.Server; address: ImapAddress }> = [];
  private readonly sessions = new Set<ImapSession>();
  private readonly slots: ConnectionSlots;
  private nextCid = 1;
  private refused = 0;

  constructor(private readonly o: ImapServerOptions) {
    this.slots = new ConnectionSlots({
      max: o.maxConnections,
      maxPerAddress: o.maxConnectionsPerAddress,
      loginTimeoutMs: o.loginTimeoutMs,
      busyLoginTimeoutMs: o.busyLoginTimeoutMs,
    });
  }

  get addresses(): ImapAddress[] {
    return this.servers.map((s) => s.address);
  }
  get port(): number {
    return this.addresses.find((a) => !a.tls)?.port ?? 0;
  }
  get tlsPort(): number | undefined {
    return this.addresses.find((a) => a.tls)?.port;
  }
  get sessionCount(): number {
    return this.sessions.size;
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
    try {
      await this.listenAll(o.port, deps);
      if (o.tls?.port !== undefined && tlsOptions) await this.listenAll(o.tls.port, deps, tlsOptions);
    } catch (err) {
      await this.stop();
      throw err;
    }
    o.log.info({ addresses: this.addresses }, 'IMAP listener ready');
  }

  /** Stop accepting; let running commands finish (bounded), then close every session. */
  async stop(): Promise<void> {
    const servers = this.servers.splice(0).map((s) => s.server);
    await stopListening(servers, this.sessions, {
      closeTimeoutMs: this.o.closeTimeoutMs ?? 5000,
      log: this.o.log,
      label: 'IMAP',
    });
  }

  private async listenAll(port: number, deps: SessionDeps, tlsOptions?: tls.SecureContextOptions): Promise<void> {
    const accept = (s: net.Socket, secure: boolean): void => this.accept(s, deps, secure);
    const o = { log: this.o.log, label: 'IMAP', tls: tlsOptions };
    this.servers.push(...(await listenOnHosts(this.o.hosts, port, accept, o)));
  }

  private accept(socket: net.Socket, deps: SessionDeps, secure: boolean): void {
    socket.on('error', () => undefined); // reported through the session
    const slot = this.slots.admit(socket.remoteAddress);
    if (typeof slot === 'string') {
      if (this.refused++ === 0)
        this.o.log.warn({ ...this.slots.policy, why: slot }, 'IMAP connection limit reached: refusing new connections');
      socket.end(`* BYE [UNAVAILABLE] too many connections${slot === 'address' ? ' from your address' : ''}\r\n`);
      socket.setTimeout(2000, () => socket.destroy());
      return;
    }
    if (this.refused) {
      this.o.log.info({ refused: this.refused }, 'IMAP connections accepted again');
      this.refused = 0;
    }
    const log = this.o.log.child({ cid: `i${this.nextCid++}` });
    socket.setNoDelay(true);
    const session = new ImapSession(socket, deps, secure, log);
    session.onLoggedIn = () => slot.loggedIn();
    slot.bind(session);
    this.sessions.add(session);
    void session.closed.then(() => {
      slot.release();
      this.sessions.delete(session);
    });
    void session.start();
  }
}
