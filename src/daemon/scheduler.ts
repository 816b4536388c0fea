/**
 * One node-cron job per account from its `schedule`. The job only asks the SyncService for an
 * automatic pull; the SyncService guarantees that one account never has two pulls at once, so a
 * tick that arrives during a long pull joins it instead of overlapping it, and a tick while the
 * account backs off after failures (wrong password, throttled: a provider would lock it) starts nothing.
 * node-cron's own console output goes to our logger.
 */

import type { ScheduledTask } from 'node-cron';
import cron from 'node-cron';
import type { Logger } from 'pino';
import type { AccountConfig } from '../config/schema.js';
import type { SyncService } from './sync.js';

/** Schedules pulls for every account. */
export class Scheduler {
  readonly name = 'scheduler';
  private tasks: ScheduledTask[] = [];

  constructor(
    private accounts: AccountConfig[],
    private readonly sync: SyncService,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const log = this.log;
    cron.setLogger({
      info: (m: string) => log.debug({ component: 'cron' }, m),
      warn: (m: string) => log.debug({ component: 'cron' }, m),
      error: (m: string | Error) => log.warn({ component: 'cron' }, String(m)),
      debug: (m: string) => log.trace({ component: 'cron' }, m),
    } as Parameters<typeof cron.setLogger>[0]);
    for (const acc of this.accounts) {
      const task = cron.schedule(acc.incoming.schedule, () => this.sync.autoSync(acc.id, 'schedule'), {
        name: `pull-${acc.id}`,
        noOverlap: true,
      });
      this.tasks.push(task);
    }
    log.debug({ jobs: this.tasks.length }, 'scheduler started');
  }

  async stop(): Promise<void> {
    const tasks = this.tasks;
    this.tasks = [];
    await Promise.all(
      tasks.map(async (t) => {
        await t.stop();
        await t.destroy();
      }),
    );
  }

  /** Replace the schedules (config reload). */
  async reload(accounts: AccountConfig[]): Promise<void> {
    await this.stop();
    this.accounts = accounts;
    await this.start();
  }
}
