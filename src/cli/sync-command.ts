/**
 * `localpost sync [account...]`: through the running daemon when one holds the lock, else in this process
 * with its own cache and the lock held until the pulls end.
 */
import { Cache } from '../cache/cache.js';
import { cacheAccounts } from '../daemon/accounts.js';
import { acquireLock, type InstanceLock, LockedError } from '../daemon/instance-lock.js';
import { SyncService } from '../daemon/sync.js';
import { ensureDataDir } from '../shared/trust.js';
import { configOrExit, EXIT_FAILURE, EXIT_OK, type GlobalOpts } from './command-kit.js';
import { loggerFor } from './command-log.js';
import { formatSyncSummary, progressPrinter, syncThroughDaemon } from './sync.js';

export async function cmdSync(accounts: string[], opts: GlobalOpts): Promise<number> {
  const { cfg } = await configOrExit(opts);
  const unknown = accounts.filter((a) => !cfg.accounts.some((c) => c.id === a));
  if (unknown.length) {
    process.stderr.write(
      `localpost: no such account: ${unknown.join(', ')} (configured: ${cfg.accounts.map((a) => a.id).join(', ')})\n`,
    );
    return EXIT_FAILURE;
  }
  const log = loggerFor(cfg, opts, 2, cfg.log.level === 'info' ? 'warn' : cfg.log.level);
  await ensureDataDir(cfg.dataDir, log);
  let lock: InstanceLock;
  try {
    lock = await acquireLock(cfg.dataDir);
  } catch (err) {
    if (err instanceof LockedError) return syncThroughDaemon(cfg.dataDir, accounts, err.pid);
    throw err;
  }
  const progress = progressPrinter(Boolean(process.stderr.isTTY));
  const cache = await Cache.open({
    dataDir: cfg.dataDir,
    accounts: cacheAccounts(cfg.accounts),
    log: log.child({ component: 'cache' }),
  });
  const ids = accounts.length ? accounts : cfg.accounts.map((a) => a.id);
  const service = new SyncService({ accounts: cfg.accounts, cache, log, onProgress: (a, p) => progress.update(a, p) });
  const onSignal = () => {
    void service.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = Date.now();
  try {
    const records = await service.syncAll(ids);
    progress.end();
    const outcomes = records.map((r) => ({
      ...r,
      deletedUpstream: r.result === 'ok' ? service.state(r.account)?.lastResult?.deletedUpstream : undefined,
    }));
    process.stdout.write(`${formatSyncSummary(outcomes, Date.now() - t0)}\n`);
    return records.every((r) => r.result === 'ok') ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await service.stop();
    await cache.shutdown();
    await lock.release();
  }
}
