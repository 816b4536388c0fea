/**
 * The daemon's answers to the control API (protocol.ts has the contract), and the control
 * server as a daemon component (started last, stopped first).
 *
 * Live status is `readStatus()` (counts and history from state.db, read-only) overlaid with
 * what only the running daemon knows: each account's reachability (the connectivity monitor,
 * else its last pull), a pull in progress with its progress, and the ports actually bound.
 * `POST /sync` joins pulls already running (the SyncService never runs two of one account) and
 * answers once they all finished; outbox changes go through the daemon's own `Outbox`, so the
 * delivery loop sees them at once. `POST /journal/retry/:id` puts a failed IMAP change back in the
 * queue and starts a pull of its account, whose replay carries it upstream first.
 *
 * `POST /accounts/:id/signed-in` is what `localpost auth` sends after saving a sign-in: the
 * account's IDLE watcher (if any) connects at once instead of at its next retry, and then the
 * account is pulled (joining a running pull, as `POST /sync` does), so mail already upstream
 * arrives now and mail that comes later is announced by IDLE. The IDLE attempt goes first: a
 * message arriving between the two is then seen by one or the other. Answer: `SignedInResponse`.
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import type { Config } from '../config/schema.js';
import {
  ControlError,
  type FlushResponse,
  formatAddress,
  type JournalListResponse,
  type OnlineState,
  type StatusReport,
  type SyncOutcome,
} from '../control/protocol.js';
import { type ControlRoute, ControlServer } from '../control/server.js';
import type { Pop3Server } from '../listeners/pop3/server.js';
import type { IdleState } from '../upstream/imap/idle.js';
import type { AccountDeliveryState } from './delivery.js';
import type { JournalView } from './journal-report.js';
import type { Component } from './lifecycle.js';
import type { Outgoing } from './outgoing.js';
import { readStatus } from './status-report.js';
import type { SyncService } from './sync.js';

/** What the handlers read from the daemon (lazily: everything else starts before them). */
export interface DaemonView {
  readonly currentConfig: Config;
  readonly cache?: Cache;
  readonly sync?: SyncService;
  readonly outgoing: Outgoing;
  pop3Server(): Pop3Server | undefined;
  /** The IMAP listener's bound addresses (empty when it is off or not started). */
  imapAddresses(): ReadonlyArray<{ host: string; port: number; tls: boolean }>;
  /** The change journal of the open cache. */
  journal(): JournalView | undefined;
  reload(): Promise<boolean>;
  /** The account's IDLE watcher state; undefined when it has none. */
  idleState(id: string): IdleState | undefined;
  /** Make the account's IDLE watcher connect now; its state after that attempt. */
  wakeIdle(id: string): Promise<IdleState | undefined>;
}

/** `POST /accounts/:id/signed-in` response. */
export interface SignedInResponse {
  account: string;
  /** The IDLE watcher's state after its immediate attempt; absent when the account has no IDLE. */
  idle?: IdleState;
  /** The pull that followed. */
  record: SyncOutcome;
}

/**
 * The outgoing server's reachability: what the connectivity probes say (a TCP connect to it),
 * and before the first probe, offline when the last delivery attempt could not reach it.
 */
export function outgoingReachability(
  probed: OnlineState | undefined,
  delivery: AccountDeliveryState | undefined,
): OnlineState {
  if (probed !== undefined && probed !== 'unknown') return probed;
  return delivery?.problem === 'connection' ? 'offline' : 'unknown';
}

/** The live status of a running daemon. */
async function liveStatus(d: DaemonView): Promise<StatusReport> {
  const cfg = d.currentConfig;
  const report = await readStatus(cfg);
  report.source = 'daemon';
  report.daemon = { running: true, pid: process.pid };
  const { connectivity, delivery } = d.outgoing;
  for (const a of report.accounts) {
    const st = d.sync?.state(a.id);
    const probed = connectivity?.stateOf(a.id, 'incoming') ?? 'unknown';
    if (probed !== 'unknown') a.online = probed;
    else if (st?.online !== undefined) a.online = st.online ? 'online' : 'offline';
    if (a.outgoing) a.outgoing = outgoingReachability(connectivity?.stateOf(a.id, 'outgoing'), delivery?.state(a.id));
    if (st?.last) a.lastPull = st.last;
    if (st) a.upstreamLogins = st.upstreamLogins;
    if (st?.running) a.pull = st.progress ?? { folder: 'INBOX', done: 0, total: 0, bytes: 0 };
    const idle = d.idleState(a.id);
    if (idle) a.idle = idle;
  }
  const pop3 = d.pop3Server()?.addresses ?? [];
  const imap = d.imapAddresses();
  const bound = (xs: ReadonlyArray<{ host: string; port: number }>) => xs.map((x) => formatAddress(x.host, x.port));
  report.listeners = {
    pop3: bound(pop3.filter((x) => !x.tls)),
    pop3Tls: bound(pop3.filter((x) => x.tls)),
    imap: bound(imap.filter((x) => !x.tls)),
    imapTls: bound(imap.filter((x) => x.tls)),
    smtp: bound(d.outgoing.smtp?.addresses ?? []),
  };
  return report;
}

/** The `accounts` field of a `POST /sync` body, checked against the config. */
function syncTargets(body: unknown, cfg: Config): string[] {
  const all = cfg.accounts.map((a) => a.id);
  const requested = (body as { accounts?: unknown })?.accounts;
  if (requested === undefined) return all;
  if (!Array.isArray(requested) || !requested.every((x) => typeof x === 'string')) {
    throw new ControlError(400, '"accounts" must be a list of account ids');
  }
  const unknown = requested.filter((a) => !all.includes(a));
  if (unknown.length)
    throw new ControlError(404, `no such account: ${unknown.join(', ')} (configured: ${all.join(', ')})`);
  return requested.length ? [...new Set(requested)] : all;
}

/** A parameter of the route's path (`:id`), which matching the route guarantees. */
function pathParam(params: Record<string, string>, name: string): string {
  const value = params[name];
  if (value === undefined) throw new ControlError(500, `the route has no :${name} parameter`);
  return value;
}

/** The numeric id of a journal entry in the path. */
function journalId(params: Record<string, string>): number {
  const id = Number(pathParam(params, 'id'));
  if (!Number.isSafeInteger(id) || id <= 0) throw new ControlError(400, `"${params.id}" is not a journal entry id`);
  return id;
}

/** The journal routes: list, retry (then a pull of its account, whose replay goes first), drop. */
function journalRoutes(d: DaemonView): ControlRoute[] {
  const journal = () => {
    const j = d.journal();
    if (!j) throw new ControlError(500, 'the cache is not open');
    return j;
  };
  return [
    {
      method: 'GET',
      path: '/journal',
      handle: async (): Promise<JournalListResponse> => ({ entries: journal().list() }),
    },
    {
      method: 'POST',
      path: '/journal/retry/:id',
      handle: async ({ params }) => {
        const id = journalId(params);
        const entry = journal()
          .list()
          .find((e) => e.id === id);
        if (!entry || !journal().retry(id)) throw new ControlError(404, `no failed journal entry ${id}`);
        if (d.currentConfig.accounts.some((a) => a.id === entry.account))
          void d.sync?.sync(entry.account).catch(() => {});
        return { id, queued: true };
      },
    },
    {
      method: 'POST',
      path: '/journal/drop/:id',
      handle: async ({ params }) => {
        const id = journalId(params);
        // an entry in flight may land upstream any moment: its completion re-keys what it created
        const entry = journal()
          .list()
          .find((e) => e.id === id);
        if (entry?.state === 'inflight')
          throw new ControlError(
            409,
            `journal entry ${id} is being applied upstream now: see "localpost journal list"`,
          );
        if (!journal().drop(id)) throw new ControlError(404, `no pending or failed journal entry ${id}`);
        return { id, dropped: true };
      },
    },
  ];
}

/** Pulls `ids` (joining running pulls), each record with what it deleted upstream. */
async function pull(d: DaemonView, ids: string[]): Promise<SyncOutcome[]> {
  const sync = d.sync;
  if (!sync) throw new ControlError(500, 'the sync service is not running');
  const records = await sync.syncAll(ids);
  return records.map((r) => {
    const deleted = r.result === 'ok' ? sync.state(r.account)?.lastResult?.deletedUpstream : undefined;
    return deleted ? { ...r, deletedUpstream: deleted } : r;
  });
}

/** Every route of the control API, answered by the daemon `d`. */
function daemonRoutes(d: DaemonView): ControlRoute[] {
  const outbox = () => {
    const o = d.outgoing.outbox;
    if (!o) throw new ControlError(500, 'the outbox is not open');
    return o;
  };
  return [
    { method: 'GET', path: '/status', handle: async () => liveStatus(d) },
    {
      method: 'POST',
      path: '/sync',
      handle: async ({ body }) => ({ records: await pull(d, syncTargets(body, d.currentConfig)) }),
    },
    {
      method: 'POST',
      path: '/accounts/:id/signed-in',
      handle: async ({ params }): Promise<SignedInResponse> => {
        const id = pathParam(params, 'id');
        syncTargets({ accounts: [id] }, d.currentConfig); // 404 unless configured
        const idle = await d.wakeIdle(id);
        const [record] = await pull(d, [id]);
        if (!record) throw new ControlError(500, `the pull of ${id} left no record`);
        return { account: id, ...(idle ? { idle } : {}), record };
      },
    },
    { method: 'GET', path: '/outbox', handle: async () => ({ entries: (await liveStatus(d)).outbox.entries }) },
    {
      method: 'POST',
      path: '/outbox/retry/:id',
      handle: async ({ params }) => {
        if (!(await outbox().retry(pathParam(params, 'id'))))
          throw new ControlError(404, `no queued or failed outbox entry ${params.id}`);
        void d.outgoing.delivery?.run();
        return { id: params.id, queued: true };
      },
    },
    {
      method: 'POST',
      path: '/outbox/drop/:id',
      handle: async ({ params }) => {
        if (!(await outbox().drop(pathParam(params, 'id'))))
          throw new ControlError(404, `no queued or failed outbox entry ${params.id}`);
        return { id: params.id, dropped: true };
      },
    },
    {
      method: 'POST',
      path: '/outbox/flush',
      handle: async (): Promise<FlushResponse> => {
        const before = outbox().queued().length;
        await d.outgoing.delivery?.flush();
        const left = outbox()
          .queued()
          .map((e) => ({ id: e.id, account: e.account, ...(e.lastError ? { lastError: e.lastError } : {}) }));
        return { before, left };
      },
    },
    ...journalRoutes(d),
    { method: 'POST', path: '/reload', handle: async () => ({ reloaded: await d.reload() }) },
  ];
}

/** The control server as the daemon's last component. */
export function controlComponent(d: DaemonView, log: Logger): Component {
  let server: ControlServer | undefined;
  return {
    name: 'control',
    start: async () => {
      server = new ControlServer({ dataDir: d.currentConfig.dataDir, routes: daemonRoutes(d), log });
      await server.start();
    },
    stop: async () => {
      await server?.stop();
    },
  };
}
