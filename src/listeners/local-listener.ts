/**
 * What the local POP3 and IMAP servers share: listening on every configured host (plain, and
 * an implicit-TLS port when configured), the connection slots (`connection-slots.ts`: a refused
 * client gets the protocol's temporary error and is closed at once, so a flood holds no
 * descriptor for long), the set of open sessions and the graceful stop (`listen.ts`).
 *
 * Invariants: a session is tracked from its admission until its `closed` resolves, and its slot
 * released then; a failing session never affects another.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { ConnectionSlots, type Refusal, type SlotOccupant } from './connection-slots.js';
import { type BoundAddress, listenOnHosts, type StoppableSession, stopListening } from './listen.js';

/** What the listener needs of a session. */
export interface ListenerSession extends StoppableSession, SlotOccupant {
  onLoggedIn?: () => void;
  start(): Promise<void>;
}

/** The options every local listener has. */
export interface LocalListenerOptions {
  hosts: string[];
  /** Plain port; 0 picks a free one (the same on every host when possible). */
  port: number;
  /** Implicit-TLS port (0 picks one); undefined: no implicit-TLS listener. */
  tlsPort?: number;
  log: Logger;
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  loginTimeoutMs?: number;
  busyLoginTimeoutMs?: number;
  /** How long `stop()` waits for running commands; default 5 s. */
  closeTimeoutMs?: number;
}

/** The protocol's part: its name in logs, its connection ids, its refusal line. */
export interface ListenerProtocol {
  label: string;
  cidPrefix: string;
  refusal(why: Refusal): string;
}

export abstract class LocalListener<S extends ListenerSession> {
  private readonly servers: Array<{ server: net.Server; address: BoundAddress }> = [];
  protected readonly sessions = new Set<S>();
  private readonly slots: ConnectionSlots;
  private nextCid = 1;
  /** Connections refused since the limit was last reached (for one log line per burst). */
  private refused = 0;

  constructor(
    private readonly base: LocalListenerOptions,
    private readonly proto: ListenerProtocol,
  ) {
    this.slots = new ConnectionSlots({
      max: base.maxConnections,
      maxPerAddress: base.maxConnectionsPerAddress,
      loginTimeoutMs: base.loginTimeoutMs,
      busyLoginTimeoutMs: base.busyLoginTimeoutMs,
    });
  }

  /** Addresses actually bound. */
  get addresses(): BoundAddress[] {
    return this.servers.map((s) => s.address);
  }

  /** The plain port (useful with port 0). */
  get port(): number {
    return this.addresses.find((a) => !a.tls)?.port ?? 0;
  }

  /** The implicit-TLS port, if any. */
  get tlsPort(): number | undefined {
    return this.addresses.find((a) => a.tls)?.port;
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Stop accepting; let running commands finish (bounded), then close every session. */
  async stop(): Promise<void> {
    const servers = this.servers.splice(0).map((s) => s.server);
    const { log } = this.base;
    await stopListening(servers, this.sessions, {
      closeTimeoutMs: this.base.closeTimeoutMs ?? 5000,
      log,
      label: this.proto.label,
    });
  }

  /** Bind the plain port and, with `tlsOptions`, the implicit-TLS one; `open` makes each session. */
  protected async listen(
    open: (socket: net.Socket, secure: boolean, log: Logger) => S,
    tlsOptions: tls.SecureContextOptions | undefined,
  ): Promise<void> {
    const { hosts, log } = this.base;
    const label = this.proto.label;
    const accept = (s: net.Socket, secure: boolean): void => this.accept(s, secure, open);
    try {
      this.servers.push(...(await listenOnHosts(hosts, this.base.port, accept, { log, label })));
      if (this.base.tlsPort !== undefined && tlsOptions) {
        const o = { log, label, tls: tlsOptions };
        this.servers.push(...(await listenOnHosts(hosts, this.base.tlsPort, accept, o)));
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    log.info({ addresses: this.addresses }, `${label} listener ready`);
  }

  private accept(socket: net.Socket, secure: boolean, open: (s: net.Socket, secure: boolean, log: Logger) => S): void {
    const { log } = this.base;
    const { label } = this.proto;
    socket.on('error', () => undefined); // reported through the session
    const slot = this.slots.admit(socket.remoteAddress);
    if (typeof slot === 'string') {
      // Refused before any session exists: answer, and never hold the descriptor for long.
      if (this.refused++ === 0)
        log.warn({ ...this.slots.policy, why: slot }, `${label} connection limit reached: refusing new connections`);
      socket.end(this.proto.refusal(slot));
      socket.setTimeout(2000, () => socket.destroy());
      return;
    }
    if (this.refused) {
      log.info({ refused: this.refused }, `${label} connections accepted again`);
      this.refused = 0;
    }
    socket.setNoDelay(true); // replies are written whole; never wait for a delayed ACK
    const session = open(socket, secure, log.child({ cid: `${this.proto.cidPrefix}${this.nextCid++}` }));
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
