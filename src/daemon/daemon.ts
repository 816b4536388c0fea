/**
 * The daemon: wires config, cache, pulls, schedules and IDLE watchers, in dependency order
 * (cache → sync → scheduler → idle), and stops them in reverse. On start every account is
 * pulled once; after that the schedule, IDLE and (later) POP3 logins trigger pulls. SIGHUP
 * reloads the config through `reload()`: an invalid new config is logged and the old one kept.
 */
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Cache } from '../cache/cache.js';
import { errorMessage } from '../shared/errors.js';
import { IdleWatcher } from '../upstream/imap/idle.js';
import { incomingEndpoint } from './accounts.js';
import type { Config } from './config/schema.js';
import { loadConfig } from './config/load.js';
import type { InstanceLock } from './instance-lock.js';
import { acquireLock } from './instance-lock.js';
import type { Component } from './lifecycle.js';
import { ComponentGroup } from './lifecycle.js';
import { Scheduler } from './scheduler.js';
import { SyncService } from './sync.js';

/** A running localpost. */
export class Daemon {
  private readonly group: ComponentGroup;
  private lock?: InstanceLock;
  cache?: Cache;
  sync?: SyncService;
  private scheduler?: Scheduler;
  private idle = new Map<string, IdleWatcher>();

  constructor(private config: Config, private readonly configPath: string | undefined, private readonly log: Logger) {
    this.group = new ComponentGroup(log);
  }

  /** Current configuration. */
  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    this.lock = await acquireLock(cfg.dataDir);
    try {
      const cacheComponent: Component = {
        name: 'cache',
        start: async () => {
          this.cache = await Cache.open({ dataDir: cfg.dataDir, accounts: cfg.accounts.map((a) => a.id), log: this.log.child({ component: 'cache' }) });
        },
        stop: async () => { this.cache?.close(); },
      };
      const syncComponent: Component = {
        name: 'sync',
        start: async () => {
          this.sync = new SyncService({ accounts: cfg.accounts, cache: this.cache!, log: this.log.child({ component: 'sync' }) });
        },
        stop: async () => { await this.sync?.stop(); },
      };
      const schedulerComponent: Component = {
        name: 'scheduler',
        start: async () => {
          this.scheduler = new Scheduler(cfg.accounts, this.sync!, this.log.child({ component: 'scheduler' }));
          await this.scheduler.start();
        },
        stop: async () => { await this.scheduler?.stop(); },
      };
      const idleComponent: Component = {
        name: 'imap-idle',
        start: async () => { await this.startIdle(cfg); },
        stop: async () => { await this.stopIdle(); },
      };
      await this.group.start([cacheComponent, syncComponent, schedulerComponent, idleComponent]);
    } catch (err) {
      await this.lock.release();
      throw err;
    }
    this.log.info({ accounts: cfg.accounts.map((a) => a.id), dataDir: cfg.dataDir }, 'localpost started');
    void this.sync!.syncAll();
  }

  /** Graceful stop: pulls finish the message in hand, then everything closes in reverse. */
  async stop(): Promise<void> {
    this.log.info('localpost stopping');
    await this.group.stop();
    await this.lock?.release();
    this.log.info('localpost stopped');
  }

  /** Re-read the config file; keep the old config when the new one is invalid. */
  async reload(): Promise<boolean> {
    let next: Config;
    try {
      next = await loadConfig(this.configPath);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'config reload rejected: keeping the running configuration');
      return false;
    }
    if (next.dataDir !== this.config.dataDir) {
      this.log.error('config reload rejected: dataDir cannot change while running (restart instead)');
      return false;
    }
    this.config = next;
    this.sync?.setAccounts(next.accounts);
    await this.scheduler?.reload(next.accounts);
    await this.stopIdle();
    await this.startIdle(next);
    this.log.info('configuration reloaded');
    return true;
  }

  private async startIdle(cfg: Config): Promise<void> {
    for (const acc of cfg.accounts) {
      if (acc.incoming.protocol !== 'imap' || !acc.incoming.idle) continue;
      let endpoint;
      try {
        endpoint = await incomingEndpoint(acc);
      } catch (err) {
        this.log.error({ account: acc.id, err: errorMessage(err) }, 'IDLE not started: cannot resolve the account settings');
        continue;
      }
      const w = new IdleWatcher({
        endpoint,
        log: this.log.child({ component: 'idle', account: acc.id }),
        onNewMail: () => { void this.sync?.sync(acc.id); },
      });
      await w.start();
      this.idle.set(acc.id, w);
    }
  }

  private async stopIdle(): Promise<void> {
    const all = [...this.idle.values()];
    this.idle.clear();
    await Promise.allSettled(all.map((w) => w.stop()));
  }
}
