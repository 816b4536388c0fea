/**
 * The local IMAP listener as a daemon component (docs/imap-server.md "Using it"): builds the
 * `ImapServer` from `listen.imap`, with the same `LocalAuth` as POP3 and SMTP (failed logins
 * count together), and gives a login its account's `MailboxStore` from the cache.
 *
 * A login never waits for the upstream: IMAP clients stay connected and hear about new mail
 * through IDLE/NOOP (the store announces what a pull adds), so the pull-on-login decision of
 * POP3 (`loginPull`: floor, backoff, IDLE) is reused only to start a pull in the background.
 *
 * The component also connects each IMAP account's local changes to the journal replay: any
 * change event asks the sync service for a prompt replay (`SyncService.localChange`, debounced,
 * a no-op when nothing waits), so a flag set offline goes upstream at the next pull and one set
 * online within seconds. With `listen.imap.enabled: false` the component does nothing: no
 * local IMAP view is opened, and the accounts behave as before the IMAP server existed.
 */
import type { Cache } from '../cache/cache.js';
import type { MailboxStore } from '../cache/mailboxes.js';
import { listenerTls } from '../config/local-cert.js';
import type { AccountConfig } from '../config/schema.js';
import { ImapServer } from '../listeners/imap/server.js';
import type { LocalAuth } from '../listeners/local-auth.js';
import { type Clock, systemClock } from '../shared/clock.js';
import type { Component } from './lifecycle.js';
import { loginPull, type Pop3ComponentDeps } from './pop3-listener.js';
import type { SyncService } from './sync.js';

/** What the component reads from the daemon (lazily: cache and sync start before it). */
export type ImapComponentDeps = Omit<Pop3ComponentDeps, 'auth'> & { auth: LocalAuth };

/** The account's local IMAP view, with the options of its current config. */
export function mailboxesOf(cache: Cache, acc: AccountConfig): MailboxStore {
  return cache.mailboxes(acc.id, { protocol: acc.incoming.protocol, onLocalDelete: acc.incoming.onLocalDelete });
}

/** Starts a pull in the background when POP3's login rule would pull (never waits for it). */
function pullInBackground(acc: AccountConfig, sync: SyncService, clock: Clock, idleLive: boolean): void {
  if (acc.incoming.syncOnLogin <= 0) return;
  const decision = loginPull({
    now: clock.now(),
    floorMs: acc.incoming.syncOnLoginFloor,
    state: sync.state(acc.id),
    backingOff: sync.backoff(acc.id) !== undefined,
    idleLive,
  });
  if (decision === 'pull' || decision === 'background') void sync.autoSync(acc.id, 'login')?.catch(() => undefined);
}

/** The IMAP listener component (started after cache, sync, scheduler and IDLE, beside POP3). */
export function imapComponent(deps: ImapComponentDeps): Component & { server?: ImapServer } {
  const clock = deps.clock ?? systemClock;
  const unsubscribe = new Map<string, () => void>();
  /** The account's view, its changes prompting a replay (accounts a reload added included). */
  const view = (acc: AccountConfig): MailboxStore => {
    const store = mailboxesOf(deps.cache(), acc);
    if (acc.incoming.protocol === 'imap' && !unsubscribe.has(acc.id))
      unsubscribe.set(
        acc.id,
        store.onChange(() => deps.sync().localChange(acc.id)),
      );
    return store;
  };
  const component: Component & { server?: ImapServer } = {
    name: 'imap-listener',
    start: async () => {
      const cfg = deps.config();
      const l = cfg.listen.imap;
      if (!l.enabled) return;
      for (const acc of cfg.accounts) if (acc.incoming.protocol === 'imap') view(acc);
      const server = new ImapServer({
        hosts: l.hosts,
        port: l.port,
        tls: listenerTls(l.tls, cfg.dataDir),
        auth: deps.auth,
        log: deps.log,
        maxConnections: l.maxConnections,
        maxConnectionsPerAddress: l.maxConnectionsPerAddress,
        hooks: {
          openAccount: (id) => {
            const acc = deps.config().accounts.find((a) => a.id === id);
            if (!acc) throw new Error(`unknown account ${JSON.stringify(id)}`);
            pullInBackground(acc, deps.sync(), clock, deps.idleState?.(id) === 'connected');
            return view(acc);
          },
        },
      });
      await server.start();
      component.server = server;
    },
    stop: async () => {
      await component.server?.stop();
      for (const u of unsubscribe.values()) u();
      unsubscribe.clear();
    },
  };
  return component;
}
