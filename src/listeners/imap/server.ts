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
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { sleep } from '../../shared/sleep.js';
import { ConnectionSlots } from '../connection-slots.js';
import { listenOn } from '../listen.js';
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

export interface ImapAddress {
  host: string;
  port: number;
  tls: boolean;
}

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
    const closing = this.servers.splice(0).map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const s of this.sessions) s.shutdown();
    const all = Promise.all([...this.sessions].map((s) => s.closed));
    const finished = new AbortController();
    const timeout = sleep(this.o.closeTimeoutMs ?? 5000, finished.signal).then(
      () => 'timeout' as const,
      () => undefined,
    );
    if ((await Promise.race([all, timeout])) === 'timeout') {
      this.o.log.warn({ sessions: this.sessions.size }, 'IMAP sessions did not finish in time: closing them');
      for (const s of this.sessions) s.destroy();
    }
    finished.abort();
    await Promise.all(closing);
  }

  private async listenAll(port: number, deps: SessionDeps, tlsOptions?: tls.SecureContextOptions): Promise<void> {
    const implicitTls = tlsOptions !== undefined;
    let chosen = port;
    let bound = 0;
    let lastError: unknown;
    for (const host of this.o.hosts) {
      const server = tlsOptions
        ? tls.createServer(tlsOptions, (s) => this.accept(s, deps, true))
        : net.createServer((s) => this.accept(s, deps, false));
      if (implicitTls)
        server.on('tlsClientError', (err) => this.o.log.debug({ err: err.message }, 'TLS handshake failed'));
      try {
        chosen = await listenOn(server, host, chosen);
        server.on('error', (err) => this.o.log.error({ err }, 'IMAP listener error'));
        this.servers.push({ server, address: { host, port: chosen, tls: implicitTls } });
        bound++;
      } catch (err) {
        lastError = err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
          this.o.log.warn({ host, err: (err as Error).message }, 'cannot listen on this address; skipped');
          continue;
        }
        throw err;
      }
    }
    if (!bound) throw lastError ?? new Error('no address to listen on');
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
