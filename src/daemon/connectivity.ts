/**
 * Connectivity: whether each upstream server can be reached right now, tested
 * against the server itself (a ping of a public host says nothing about it).
 *
 * - A probe is a TCP connect to the server's own host and port with a short timeout — no
 *   ICMP, no public host, no child process (systeminformation was measured to spawn processes
 *   and block the event loop). Every endpoint is probed every `intervalMs`, at once when
 *   `os.networkInterfaces()` changes (a cheap local hint: a new Wi-Fi, a VPN), and soon after
 *   a hint from the delivery loop or a pull that the server did not answer. The interfaces are
 *   compared every `hintIntervalMs` only while some endpoint is not online (when a new network
 *   can bring it back); while all are, the probes are the daemon's only timer (docs/benchmarks.md).
 * - Flapping is damped: an endpoint that was online is declared offline only after
 *   `downAfter` consecutive failed probes, and "back online" for an endpoint is announced at
 *   most once per `holdDownMs` (a later one waits for the hold-down, and is dropped if the
 *   endpoint went away again meanwhile).
 * - "Back online" (offline → online, never the first probe after start) calls `onBackOnline`
 *   with the endpoints that came back; the daemon then flushes the outbox and pulls every
 *   account. Being offline is logged once per transition, at info: it is normal, not an error.
 */
import net from 'node:net';
import os from 'node:os';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../shared/clock.js';

/** One upstream server (several accounts may share it). */
export interface Endpoint {
  host: string;
  port: number;
  /** The accounts that use it, and for what. */
  uses: Array<{ account: string; kind: 'incoming' | 'outgoing' }>;
}

/** What is known about an endpoint. */
export interface EndpointStatus {
  host: string;
  port: number;
  state: 'unknown' | 'online' | 'offline';
  /** When the state last changed (ms since epoch). */
  since: number;
  failures: number;
}

/** Options of `ConnectivityMonitor`. */
export interface ConnectivityOptions {
  /** The endpoints to watch (called at each round, so a config reload is seen). */
  endpoints: () => Endpoint[];
  intervalMs: number;
  timeoutMs: number;
  onBackOnline: (endpoints: Endpoint[]) => void;
  log: Logger;
  clock?: Clock;
  /** Failed probes before an online endpoint counts as offline; default 2. */
  downAfter?: number;
  /** Least time between two "back online" of one endpoint; default 30 s. */
  holdDownMs?: number;
  /** How often the network interfaces are compared; default 5 s. */
  hintIntervalMs?: number;
  /** Replaceable for tests. */
  probe?: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  interfaces?: () => ReturnType<typeof os.networkInterfaces>;
}

interface Tracked extends EndpointStatus {
  lastAnnounced: number;
  pendingAnnounce: boolean;
}

/** A TCP connect to host:port; true when it was accepted within the timeout. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A signature of the machine's addresses; it changes when a network comes or goes. */
export function interfaceSignature(ifs: ReturnType<typeof os.networkInterfaces>): string {
  return Object.entries(ifs)
    .flatMap(([name, list]) => (list ?? []).map((i) => `${name}/${i.address}`))
    .sort()
    .join(',');
}

const keyOf = (e: { host: string; port: number }) => `${e.host}:${e.port}`;

/** Watches every upstream endpoint (see the module comment). */
export class ConnectivityMonitor {
  private readonly tracked = new Map<string, Tracked>();
  private readonly clock: Clock;
  private readonly probe: NonNullable<ConnectivityOptions['probe']>;
  private interval?: NodeJS.Timeout;
  private hintTimer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private signature = '';
  private stopped = false;
  private checking?: Promise<void>;

  constructor(private readonly o: ConnectivityOptions) {
    this.clock = o.clock ?? systemClock;
    this.probe = o.probe ?? tcpProbe;
  }

  /** Probe now, then every intervalMs; watch the network interfaces. */
  start(): void {
    this.signature = interfaceSignature((this.o.interfaces ?? os.networkInterfaces)());
    void this.check();
    this.interval = setInterval(() => {
      void this.check();
    }, this.o.intervalMs);
    this.interval.unref();
  }

  /** Watch the interfaces while an endpoint is not online; stop once every one is. */
  private watchInterfaces(): void {
    const waiting = [...this.tracked.values()].some((t) => t.state !== 'online');
    if (waiting && !this.hintTimer && !this.stopped) {
      this.hintTimer = setInterval(() => this.lookAtInterfaces(), this.o.hintIntervalMs ?? 5000);
      this.hintTimer.unref();
    } else if (!waiting && this.hintTimer) {
      clearInterval(this.hintTimer);
      this.hintTimer = undefined;
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.interval);
    clearInterval(this.hintTimer);
    clearTimeout(this.soon);
    return this.checking ?? Promise.resolve();
  }

  /** Every endpoint's state. */
  status(): EndpointStatus[] {
    return [...this.tracked.values()].map(({ host, port, state, since, failures }) => ({
      host,
      port,
      state,
      since,
      failures,
    }));
  }

  /** The state of the endpoint an account uses for `kind`. */
  stateOf(account: string, kind: 'incoming' | 'outgoing'): EndpointStatus['state'] {
    const e = this.o.endpoints().find((x) => x.uses.some((u) => u.account === account && u.kind === kind));
    return (e && this.tracked.get(keyOf(e))?.state) ?? 'unknown';
  }

  /** A hint from elsewhere that an account's server did (not) answer: probe soon if it did not. */
  report(account: string, kind: 'incoming' | 'outgoing', reachable: boolean): void {
    if (reachable) {
      const e = this.o.endpoints().find((x) => x.uses.some((u) => u.account === account && u.kind === kind));
      if (e) this.observe(e, true);
      return;
    }
    if (!this.soon) {
      this.soon = setTimeout(() => {
        this.soon = undefined;
        void this.check();
      }, 1000);
      this.soon.unref();
    }
  }

  /** Probe every endpoint once (concurrent calls join). */
  check(): Promise<void> {
    this.checking ??= (async () => {
      const endpoints = this.o.endpoints();
      const live = new Set(endpoints.map(keyOf));
      for (const k of this.tracked.keys()) if (!live.has(k)) this.tracked.delete(k);
      const results = await Promise.all(
        endpoints.map(async (e) => ({ e, ok: await this.probe(e.host, e.port, this.o.timeoutMs) })),
      );
      for (const { e, ok } of results) this.observe(e, ok);
      this.announce(endpoints);
      this.watchInterfaces();
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private lookAtInterfaces(): void {
    const sig = interfaceSignature((this.o.interfaces ?? os.networkInterfaces)());
    if (sig === this.signature) return;
    this.signature = sig;
    this.o.log.debug('network interfaces changed: checking the upstream servers');
    void this.check();
  }

  /** Apply one probe result to an endpoint's state. */
  private observe(e: Endpoint, ok: boolean): void {
    const now = this.clock.now();
    const k = keyOf(e);
    let t = this.tracked.get(k);
    if (!t) {
      t = {
        host: e.host,
        port: e.port,
        state: 'unknown',
        since: now,
        failures: 0,
        lastAnnounced: -Infinity,
        pendingAnnounce: false,
      };
      this.tracked.set(k, t);
    }
    const accounts = [...new Set(e.uses.map((u) => u.account))];
    if (ok) {
      t.failures = 0;
      if (t.state === 'online') return;
      if (t.state === 'offline') {
        t.pendingAnnounce = true;
        this.o.log.info({ server: k, accounts }, 'upstream server reachable again');
      }
      Object.assign(t, { state: 'online', since: now });
      return;
    }
    t.failures++;
    if (t.state === 'offline' || (t.state === 'online' && t.failures < (this.o.downAfter ?? 2))) return;
    if (t.state === 'online' || t.state === 'unknown')
      this.o.log.info({ server: k, accounts }, 'upstream server unreachable: working offline');
    Object.assign(t, { state: 'offline', since: now, pendingAnnounce: false });
  }

  /** Announce the endpoints back online whose hold-down has passed; arm a timer for the others. */
  private announce(endpoints: Endpoint[]): void {
    const now = this.clock.now();
    const hold = this.o.holdDownMs ?? 30_000;
    const back: Endpoint[] = [];
    let wait = Infinity;
    for (const e of endpoints) {
      const t = this.tracked.get(keyOf(e));
      if (!t?.pendingAnnounce) continue;
      if (t.state !== 'online') {
        t.pendingAnnounce = false;
        continue;
      }
      const ready = t.lastAnnounced + hold;
      if (now >= ready) {
        t.pendingAnnounce = false;
        t.lastAnnounced = now;
        back.push(e);
      } else {
        wait = Math.min(wait, ready - now);
      }
    }
    if (wait !== Infinity) {
      clearTimeout(this.soon);
      this.soon = setTimeout(() => {
        this.soon = undefined;
        void this.check();
      }, wait);
      this.soon.unref();
    }
    if (back.length) this.o.onBackOnline(back);
  }
}

/** The endpoints of a set of accounts: outgoing (SMTP) and incoming servers, merged by host:port. */
export function endpointsOf(
  accounts: Array<{ id: string; incoming: { host: string; port: number }; outgoing?: { host: string; port: number } }>,
): Endpoint[] {
  const map = new Map<string, Endpoint>();
  const add = (host: string, port: number, account: string, kind: 'incoming' | 'outgoing') => {
    const k = keyOf({ host, port });
    let e = map.get(k);
    if (!e) {
      e = { host, port, uses: [] };
      map.set(k, e);
    }
    e.uses.push({ account, kind });
  };
  for (const a of accounts) {
    add(a.incoming.host, a.incoming.port, a.id, 'incoming');
    if (a.outgoing) add(a.outgoing.host, a.outgoing.port, a.id, 'outgoing');
  }
  return [...map.values()];
}
