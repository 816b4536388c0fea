/**
 * The local POP3 listener as a daemon component: builds the `Pop3Server` from
 * `listen.pop3`, its local logins from each account's `login`, and the backend hooks only the
 * daemon can supply — pull on login and each account's `onLocalDelete` — so that
 * `src/listeners` never imports the daemon or the upstream modules.
 *
 * Pull on login (`incoming.syncOnLogin`, decided by `loginPull`): a login waits for a pull of
 * its account for at most `syncOnLogin`, then the snapshot is taken whatever the pull did. A
 * login starts a pull only when the account's last finished pull is older than
 * `syncOnLoginFloor`; a login while a pull runs joins it. Providers throttle or lock accounts that
 * log in too often, so clients polling every few seconds must not become an upstream login each.
 * A login never waits for an IMAP account whose IDLE connection is up: IDLE already pulls new
 * mail as it arrives. When the account's last pull found the upstream unreachable less than
 * `OFFLINE_SKIP_MS` ago, the login does not wait at all (a pull is started in the background),
 * so an offline machine serves its cache at once. While the account backs off after failed pulls
 * (wrong password, throttled: a provider would lock it), a login neither starts a pull nor waits
 * for one: it is answered from the cache at once. A login waits for a pull only as long as it
 * may bring new INBOX mail: once the pull's listing reports nothing to download there, the
 * snapshot is taken while the pull finishes (its QUIT, its record) in the background.
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import { INBOX } from '../cache/message-store.js';
import { listenerTls } from '../config/local-cert.js';
import type { Config } from '../config/schema.js';
import { LocalAuth, type LocalUser } from '../listeners/local-auth.js';
import { CacheBackend } from '../listeners/pop3/backend.js';
import { Pop3Server } from '../listeners/pop3/server.js';
import { type Clock, systemClock } from '../shared/clock.js';
import { sleep } from '../shared/sleep.js';
import type { IdleState } from '../upstream/imap/idle.js';
import type { FetchProgress } from '../upstream/types.js';
import type { Component } from './lifecycle.js';
import type { AccountSyncState, SyncService } from './sync.js';

/** A recent "offline" pull result older than this no longer skips the pull on login. */
const OFFLINE_SKIP_MS = 60_000;

/** What the component reads from the daemon (lazily: the cache and sync start before it). */
export interface Pop3ComponentDeps {
  config: () => Config;
  cache: () => Cache;
  sync: () => SyncService;
  log: Logger;
  clock?: Clock;
  /** The local logins, shared with the SMTP listener so failures count across both. */
  auth?: LocalAuth;
  /** Where the account's IDLE watcher stands (IMAP accounts with `idle: true`). */
  idleState?: (accountId: string) => IdleState | undefined;
}

/** Local logins of every configured account. */
export function localUsers(cfg: Config): LocalUser[] {
  return cfg.accounts.map((a) => ({
    accountId: a.id,
    username: a.login.username,
    password: a.login.password,
    passwordHash: a.login.passwordHash,
  }));
}

/** What a local login does upstream: nothing, join the running pull, pull and wait, or pull without waiting. */
export type LoginPull = 'none' | 'join' | 'pull' | 'background';

/** What `loginPull` decides from. */
export interface LoginPullInput {
  now: number;
  /** `incoming.syncOnLoginFloor` in ms. */
  floorMs: number;
  state?: AccountSyncState;
  backingOff: boolean;
  /** The account's IDLE connection is up. */
  idleLive: boolean;
}

/** The pull-on-login decision (see the module comment). */
export function loginPull(i: LoginPullInput): LoginPull {
  if (i.backingOff || i.idleLive) return 'none';
  const st = i.state;
  if (st?.running) return 'join';
  const age = st?.last ? i.now - st.last.finishedAt : undefined;
  // a negative age (the clock went back) does not suppress pulls until it catches up
  if (age !== undefined && age >= 0 && age < i.floorMs) return 'none';
  if (st?.online === false && age !== undefined && age < OFFLINE_SKIP_MS) return 'background';
  return 'pull';
}

/** The pull-on-login hook (see the module comment). */
export function pullOnLogin(deps: Pop3ComponentDeps): (accountId: string) => Promise<void> {
  const clock = deps.clock ?? systemClock;
  return async (accountId) => {
    const acc = deps.config().accounts.find((a) => a.id === accountId);
    const wait = acc?.incoming.syncOnLogin ?? 0;
    if (!acc || wait <= 0) return;
    const sync = deps.sync();
    const decision = loginPull({
      now: clock.now(),
      floorMs: acc.incoming.syncOnLoginFloor,
      state: sync.state(accountId),
      backingOff: sync.backoff(accountId) !== undefined,
      idleLive: deps.idleState?.(accountId) === 'connected',
    });
    if (decision === 'none') return;
    const pull = sync.autoSync(accountId, 'login')?.catch(() => undefined);
    if (!pull || decision === 'background') return;
    const pulled = new AbortController();
    let unwatch = (): void => undefined;
    // the login needs the pull only for new INBOX mail: once its listing found none, serve at once
    const nothingNew = new Promise<void>((resolve) => {
      const check = (p: FetchProgress | undefined): void => {
        if (p && p.folder.toUpperCase() === INBOX && p.total === 0) resolve();
      };
      unwatch = sync.watchProgress(accountId, check);
      check(sync.state(accountId)?.progress); // a joined pull may have listed already
    });
    await Promise.race([pull, nothingNew, sleep(wait, pulled.signal).catch(() => undefined)]);
    unwatch();
    pulled.abort(); // clears the timer
  };
}

/** The POP3 listener component (started after cache, sync, scheduler and IDLE). */
export function pop3Component(deps: Pop3ComponentDeps): Component & { server?: Pop3Server } {
  const component: Component & { server?: Pop3Server } = {
    name: 'pop3-listener',
    start: async () => {
      const cfg = deps.config();
      const l = cfg.listen.pop3;
      const backend = new CacheBackend({
        stores: deps.cache(),
        log: deps.log,
        onLocalDelete: (id) =>
          deps.config().accounts.find((a) => a.id === id)?.incoming.onLocalDelete ?? 'keep-upstream',
        beforeSnapshot: pullOnLogin(deps),
      });
      const server = new Pop3Server({
        hosts: l.hosts,
        port: l.port,
        log: deps.log,
        backend,
        tls: listenerTls(l.tls, cfg.dataDir),
        auth: deps.auth ?? new LocalAuth(() => localUsers(deps.config())),
        maxConnections: l.maxConnections,
        maxConnectionsPerAddress: l.maxConnectionsPerAddress,
        workarounds: {
          outlookNoNuls: l.workarounds.includes('outlook-no-nuls'),
          oeNsEoh: l.workarounds.includes('oe-ns-eoh'),
        },
      });
      await server.start();
      component.server = server;
      for (const a of cfg.accounts) await backend.purgeTrash(a.id);
    },
    stop: async () => {
      await component.server?.stop();
    },
  };
  return component;
}
