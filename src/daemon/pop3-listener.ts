/**
 * The local POP3 listener as a daemon component: builds the `Pop3Server` from
 * `listen.pop3`, its local logins from each account's `login`, and the backend hooks only the
 * daemon can supply — pull on login and each account's `onLocalDelete` — so that
 * `src/listeners` never imports the daemon or the upstream modules.
 *
 * Pull on login (`incoming.syncOnLogin`): a login waits for a pull of its account, joining one
 * already running, for at most `syncOnLogin`; then the snapshot is taken whatever the pull
 * did. When the account's last pull found the upstream unreachable less than
 * `OFFLINE_SKIP_MS` ago, the login does not wait at all (a pull is started in the background),
 * so an offline machine serves its cache at once. While the account backs off after failed pulls
 * (wrong password, throttled: a provider would lock it), a login neither starts a pull nor waits for one: it
 * is answered from the cache at once, and a mail client polling every minute does not turn into
 * an upstream login every minute.
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import { listenerTls } from '../config/local-cert.js';
import type { Config } from '../config/schema.js';
import { LocalAuth, type LocalUser } from '../listeners/local-auth.js';
import { CacheBackend } from '../listeners/pop3/backend.js';
import { Pop3Server } from '../listeners/pop3/server.js';
import { type Clock, systemClock } from '../shared/clock.js';
import { sleep } from '../shared/sleep.js';
import type { Component } from './lifecycle.js';
import type { SyncService } from './sync.js';

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

/** The pull-on-login hook (see the module comment). */
export function pullOnLogin(deps: Pop3ComponentDeps): (accountId: string) => Promise<void> {
  const clock = deps.clock ?? systemClock;
  return async (accountId) => {
    const acc = deps.config().accounts.find((a) => a.id === accountId);
    const wait = acc?.incoming.syncOnLogin ?? 0;
    if (!acc || wait <= 0) return;
    const sync = deps.sync();
    if (sync.backoff(accountId)) return;
    const st = sync.state(accountId);
    const pull = sync.autoSync(accountId, 'login')?.catch(() => undefined);
    if (!pull) return;
    if (!st?.running && st?.online === false && st.last && clock.now() - st.last.finishedAt < OFFLINE_SKIP_MS) return;
    const pulled = new AbortController();
    await Promise.race([pull, sleep(wait, pulled.signal).catch(() => undefined)]);
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
