/**
 * The daemon: wires config, cache, pulls, schedules and IDLE watchers, in dependency order
 * (cache → outbox → sync → scheduler → idle → delivery → connectivity → POP3, IMAP and SMTP
 * listeners → control socket; the outgoing ones are built in outgoing.ts, the control API in
 * control/), and stops them in reverse. On start every account is pulled once; after that the
 * schedule, IDLE and (later) POP3 logins trigger pulls. An IDLE watcher resolves its account's
 * settings before each connection, so an OAuth account that signs in while the daemon runs
 * starts IDLE without a reload: at once when `localpost auth` tells the daemon (`wakeIdle`,
 * through `POST /accounts/:id/signed-in`), else at the watcher's next retry. SIGHUP reloads
 * the config through `reload()`: an invalid new config is logged and the old one kept. Under systemd
 * (`NOTIFY_SOCKET`) it sends READY=1 once every component has started, WATCHDOG=1 pings, and
 * STOPPING=1 when a stop begins (sd-notify.ts).
 */
import type { Logger } from 'pino';
import { Cache } from '../cache/cache.js';
import type { ChangeJournal } from '../cache/mailboxes.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ImapServer } from '../listeners/imap/server.js';
import { LocalAuth } from '../listeners/local-auth.js';
import type { Pop3Server } from '../listeners/pop3/server.js';
import { AuthError, errorMessage } from '../shared/errors.js';
import { ensureDataDir } from '../shared/trust.js';
import type { IdleState, IdleWatcher } from '../upstream/imap/idle.js';
import { cacheAccounts, imapChangesOf, incomingEndpoint } from './accounts.js';
import { controlComponent } from './control-api.js';
import { imapComponent } from './imap-listener.js';
import type { InstanceLock } from './instance-lock.js';
import { acquireLock } from './instance-lock.js';
import type { Component } from './lifecycle.js';
import { ComponentGroup } from './lifecycle.js';
import { Outgoing } from './outgoing.js';
import { localUsers, pop3Component } from './pop3-listener.js';
import { Scheduler } from './scheduler.js';
import { SdNotify } from './sd-notify.js';
import { SyncService } from './sync.js';

/** A running localpost. */
export class Daemon {
  private readonly group: ComponentGroup;
  private lock?: InstanceLock;
  cache?: Cache;
  sync?: SyncService;
  private scheduler?: Scheduler;
  private idle = new Map<string, IdleWatcher>();
  private pop3?: { server?: Pop3Server };
  private imap?: { server?: ImapServer };
  /** Outbox, delivery loop, connectivity monitor and the local SMTP listener. */
  readonly outgoing: Outgoing;
  /** systemd readiness, stop and watchdog messages (no-op without NOTIFY_SOCKET). */
  private readonly notify: SdNotify;
  /** Local logins of every listener: failed attempts slow down POP3, IMAP and SMTP alike. */
  private readonly localAuth = new LocalAuth(() => localUsers(this.config), {
    // derivations, delays and refusals, no secret: how a flood or a guesser was handled
    onWork: (step) => this.log.trace({ component: 'local-auth', step }, 'local login work'),
  });

  constructor(
    private config: Config,
    private readonly configPath: string | undefined,
    private readonly log: Logger,
  ) {
    this.group = new ComponentGroup(log);
    this.outgoing = new Outgoing({
      config: () => this.config,
      cache: () => this.openCache(),
      sync: () => this.sync,
      log,
      auth: this.localAuth,
    });
    this.notify = new SdNotify({ unsetEnvironment: true, log: log.child({ component: 'sd-notify' }) });
  }

  /** The cache, once its component started (the first one). */
  private openCache(): Cache {
    if (!this.cache) throw new Error('the cache is not open');
    return this.cache;
  }

  /** The sync service, once its component started (before every user of it). */
  private syncService(): SyncService {
    if (!this.sync) throw new Error('the sync service is not running');
    return this.sync;
  }

  /** Current configuration. */
  get currentConfig(): Config {
    return this.config;
  }

  /** The change journal of the open cache (`localpost journal` through the control API). */
  journal(): ChangeJournal | undefined {
    return this.cache?.journal;
  }

  /** The local IMAP listener's bound addresses, once started (for `status`). */
  imapAddresses(): ReadonlyArray<{ host: string; port: number; tls: boolean }> {
    return this.imap?.server?.addresses ?? [];
  }

  /** The local POP3 listener, once started (its bound addresses, for `status`). */
  pop3Server(): Pop3Server | undefined {
    return this.pop3?.server;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    await ensureDataDir(cfg.dataDir, this.log); // refuses one another user controls (docs/security.md)
    this.lock = await acquireLock(cfg.dataDir);
    try {
      const cacheComponent: Component = {
        name: 'cache',
        start: async () => {
          this.cache = await Cache.open({
            dataDir: cfg.dataDir,
            accounts: cacheAccounts(cfg.accounts),
            log: this.log.child({ component: 'cache' }),
          });
        },
        stop: async () => {
          await this.cache?.shutdown();
        },
      };
      const syncComponent: Component = {
        name: 'sync',
        start: async () => {
          this.sync = new SyncService({
            accounts: cfg.accounts,
            cache: this.openCache(),
            log: this.log.child({ component: 'sync' }),
            // IMAP accounts served locally: the journal replay before each pull, the upstream's
            // changes mirrored back; with the listener off, only to drain what still waits
            changes: (id) => {
              const acc = this.config.accounts.find((a) => a.id === id);
              const cache = this.openCache();
              if (!acc || (!this.config.listen.imap.enabled && !cache.journal.pending(id).length)) return undefined;
              return imapChangesOf(cache, acc);
            },
          });
        },
        stop: async () => {
          await this.sync?.stop();
        },
      };
      const schedulerComponent: Component = {
        name: 'scheduler',
        start: async () => {
          this.scheduler = new Scheduler(cfg.accounts, this.syncService(), this.log.child({ component: 'scheduler' }));
          await this.scheduler.start();
        },
        stop: async () => {
          await this.scheduler?.stop();
        },
      };
      const idleComponent: Component = {
        name: 'imap-idle',
        start: async () => {
          await this.startIdle(cfg);
        },
        stop: async () => {
          await this.stopIdle();
        },
      };
      const pop3 = pop3Component({
        config: () => this.config,
        cache: () => this.openCache(),
        sync: () => this.syncService(),
        log: this.log.child({ component: 'pop3' }),
        auth: this.localAuth,
        idleState: (id) => this.idleState(id),
      });
      this.pop3 = pop3;
      const imap = imapComponent({
        config: () => this.config,
        cache: () => this.openCache(),
        sync: () => this.syncService(),
        log: this.log.child({ component: 'imap' }),
        auth: this.localAuth,
        idleState: (id) => this.idleState(id),
      });
      this.imap = imap;
      const [outbox, delivery, connectivity, smtp] = this.outgoing.components();
      const control = controlComponent(this, this.log.child({ component: 'control' }));
      // Stopped before the listeners: ends login delays and waiting key derivations at once.
      const logins: Component = {
        name: 'local-logins',
        start: async () => {},
        stop: async () => this.localAuth.stop(),
      };
      await this.group.start([
        cacheComponent,
        outbox,
        syncComponent,
        schedulerComponent,
        idleComponent,
        delivery,
        connectivity,
        pop3,
        imap,
        smtp,
        logins,
        control,
      ]);
    } catch (err) {
      await this.lock.release();
      throw err;
    }
    this.log.info({ accounts: cacheAccounts(cfg.accounts), dataDir: cfg.dataDir }, 'localpost started');
    void this.notify.ready(`running: ${cfg.accounts.length} account${cfg.accounts.length === 1 ? '' : 's'}`);
    this.notify.startWatchdog();
    void this.syncService().autoSyncAll('start'); // a backoff kept in state.db still holds
  }

  /** Graceful stop: pulls finish the message in hand, then everything closes in reverse. */
  async stop(): Promise<void> {
    this.log.info('localpost stopping');
    void this.notify.stopping('stopping');
    await this.group.stop();
    await this.lock?.release();
    this.log.info('localpost stopped');
    await this.notify.close();
  }

  /** Re-read the config file; keep the old config when the new one is invalid. */
  async reload(): Promise<boolean> {
    let next: Config;
    try {
      next = await loadConfig(this.configPath);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'config reload rejected: keeping the running configuration');
      void this.notify.status('config reload rejected (see the log): running with the previous configuration');
      return false;
    }
    if (next.dataDir !== this.config.dataDir) {
      this.log.error('config reload rejected: dataDir cannot change while running (restart instead)');
      return false;
    }
    try {
      await this.cache?.addAccounts(cacheAccounts(next.accounts)); // accounts the reload added; UIDL mode warnings
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'config reload rejected: cannot open the cache of a new account');
      return false;
    }
    const needRestart = (['listen', 'log'] as const).filter(
      (k) => JSON.stringify(next[k]) !== JSON.stringify(this.config[k]),
    );
    if (needRestart.length) {
      this.log.warn(
        { keys: needRestart },
        `config reload: ${needRestart.join(' and ')} changed; that takes effect at the next restart (systemctl restart localpost)`,
      );
    }
    this.config = next;
    this.sync?.setAccounts(next.accounts);
    await this.scheduler?.reload(next.accounts);
    await this.stopIdle();
    await this.startIdle(next);
    this.outgoing.reload();
    this.log.info('configuration reloaded');
    void this.notify.status(
      `running: ${next.accounts.length} account${next.accounts.length === 1 ? '' : 's'}; configuration reloaded`,
    );
    return true;
  }

  /**
   * One IDLE watcher per IMAP account with `idle: true`. The endpoint is resolved by the
   * watcher before each connection, inside its retry loop: an OAuth account that has not
   * signed in yet waits (logged once) and starts IDLE when `localpost auth` saves a sign-in
   * (`wakeIdle`, or the next retry), never dropped until the next reload.
   */
  private async startIdle(cfg: Config): Promise<void> {
    for (const acc of cfg.accounts) {
      if (acc.incoming.protocol !== 'imap' || !acc.incoming.idle) continue;
      const { IdleWatcher } = await import('../upstream/imap/idle.js'); // imapflow: only with an IMAP IDLE account
      const log = this.log.child({ component: 'idle', account: acc.id });
      const w = new IdleWatcher({
        endpoint: () => incomingEndpoint(acc, { dataDir: cfg.dataDir, log }),
        needsSignIn: (err) => err instanceof AuthError && err.code === 'EOAUTH_SIGNIN',
        signInHint: `run \`localpost auth ${acc.id}\``,
        log,
        onNewMail: () => {
          void this.sync?.sync(acc.id);
        },
      });
      await w.start();
      this.idle.set(acc.id, w);
    }
  }

  /** Where each account's IDLE watcher stands (IMAP accounts with `idle: true` only). */
  idleState(id: string): IdleState | undefined {
    return this.idle.get(id)?.state;
  }

  /**
   * The account just signed in: its IDLE watcher tries to connect at once (backoff reset).
   * Resolves once that attempt finished, with the watcher's state; undefined without a watcher.
   */
  async wakeIdle(id: string): Promise<IdleState | undefined> {
    return this.idle.get(id)?.wake();
  }

  private async stopIdle(): Promise<void> {
    const all = [...this.idle.values()];
    this.idle.clear();
    await Promise.allSettled(all.map((w) => w.stop()));
  }
}
