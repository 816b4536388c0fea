/**
 * `localpost outbox [list|retry ID|drop ID|flush]` (names users and scripts rely on).
 *
 * While a daemon runs, every action goes through its control socket (`GET /outbox`,
 * `POST /outbox/retry|drop/:id`, `POST /outbox/flush`), so its delivery loop sees the change at
 * once. Without a daemon, `list` reads state.db read-only, and the others run in-process under
 * the instance lock (the outbox is opened with its start-up recovery, as the daemon would).
 * `flush` sends everything queued now, through each account's upstream, and reports what is
 * left; it exits 1 when something is still queued. `list` loads neither the cache nor the delivery
 * code (nodemailer, imapflow) nor the logger: those are imported only by the actions that change
 * the outbox in-process (docs/benchmarks.md, "CLI start-up").
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ControlRequestError, ControlUnavailableError, control } from '../control/client.js';
import type { FlushResponse } from '../control/protocol.js';
import { acquireLock, type InstanceLock, LockedError, lockHolder } from '../daemon/instance-lock.js';
import { readStatus } from '../daemon/status-report.js';
import { errorMessage } from '../shared/errors.js';
import { ensureDataDir } from '../shared/trust.js';
import { formatEntries } from './status.js';

/** Exit codes used here (same as main.ts). */
const OK = 0;
const FAILURE = 1;

/** Output sinks (stdout, stderr), injectable for tests. */
export interface CliOut {
  out(line: string): void;
  err(line: string): void;
}

export const stdio: CliOut = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

/** An action that changes the outbox: retry or drop with the entry's id, or flush. */
type OutboxChange = { action: 'flush' } | { action: 'retry' | 'drop'; id: string };

/** The change asked for; undefined (after saying why) for an unknown action or a missing id. */
function changeOf(action: string, id: string | undefined, io: CliOut): OutboxChange | undefined {
  if (action !== 'retry' && action !== 'drop' && action !== 'flush') {
    io.err(`localpost: unknown outbox action "${action}" (use list, retry ID, drop ID or flush)`);
    return undefined;
  }
  if (action === 'flush') return { action };
  if (!id) {
    io.err(`localpost: outbox ${action} needs the id of an entry (see "localpost outbox list")`);
    return undefined;
  }
  return { action, id };
}

/**
 * For a change made in-process: the instance lock (and the logger), or the pid of the daemon
 * that holds it, through whose control socket the change must go instead.
 */
export async function lockOrDaemon(
  cfg: Config,
  logger: () => Promise<Logger>,
): Promise<{ lock: InstanceLock; log: Logger } | { pid: number }> {
  const log = await logger();
  await ensureDataDir(cfg.dataDir, log);
  try {
    return { lock: await acquireLock(cfg.dataDir), log };
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    return { pid: err.pid };
  }
}

/** Run one `outbox` subcommand; returns the exit code. */
export async function outboxCommand(
  cfg: Config,
  logger: () => Promise<Logger>,
  action: string,
  id: string | undefined,
  io: CliOut = stdio,
): Promise<number> {
  if (action === 'list') {
    const entries =
      ((await lockHolder(cfg.dataDir)) ? await control.outbox(cfg.dataDir).catch(() => undefined) : undefined) ??
      (await readStatus(cfg)).outbox.entries;
    for (const line of formatEntries(entries)) io.out(line);
    return OK;
  }
  const change = changeOf(action, id, io);
  if (!change) return FAILURE;
  const held = await lockOrDaemon(cfg, logger);
  if ('pid' in held) return throughDaemon(cfg.dataDir, held.pid, change, io);
  const { lock, log } = held;
  const [{ Cache }, { cacheAccounts }, { Outgoing }] = await Promise.all([
    import('../cache/cache.js'),
    import('../daemon/accounts.js'),
    import('../daemon/outgoing.js'),
  ]);
  const cache = await Cache.open({
    dataDir: cfg.dataDir,
    accounts: cacheAccounts(cfg.accounts),
    log: log.child({ component: 'cache' }),
  });
  const outgoing = new Outgoing({ config: () => cfg, cache: () => cache, sync: () => undefined, log });
  const [outboxC, deliveryC] = outgoing.components();
  try {
    await outboxC.start();
    const outbox = outgoing.outbox;
    if (!outbox) throw new Error('the outbox did not open');
    if (change.action !== 'flush') {
      const { id } = change;
      const ok = change.action === 'retry' ? await outbox.retry(id) : await outbox.drop(id);
      if (!ok) {
        io.err(`localpost: no queued or failed outbox entry ${id}`);
        return FAILURE;
      }
      io.out(
        change.action === 'retry'
          ? `${id} queued: it is sent at the next delivery (the daemon, or "localpost outbox flush")`
          : `${id} dropped`,
      );
      return OK;
    }
    const before = outbox.queued().length;
    await deliveryC.start();
    const { delivery } = outgoing;
    if (!delivery) throw new Error('the delivery loop did not start');
    await delivery.flush();
    const left = outbox.queued();
    return printFlush(
      { before, left: left.map((e) => ({ id: e.id, account: e.account, lastError: e.lastError })) },
      io,
    );
  } catch (err) {
    io.err(`localpost: ${errorMessage(err)}`);
    return FAILURE;
  } finally {
    await deliveryC.stop(); // closes the upstream connections
    await outboxC.stop();
    await cache.shutdown();
    await lock.release();
  }
}

/** The `flush` report; exit 1 when something is still queued. */
function printFlush(r: FlushResponse, io: CliOut): number {
  io.out(`flush: ${r.before - r.left.length} of ${r.before} sent or finished, ${r.left.length} still queued`);
  for (const e of r.left) io.out(`  ${e.id} ${e.account}: ${e.lastError ?? 'not tried'}`);
  return r.left.length ? FAILURE : OK;
}

/** retry, drop or flush through the control socket of the daemon `pid`. */
async function throughDaemon(dataDir: string, pid: number, change: OutboxChange, io: CliOut): Promise<number> {
  try {
    if (change.action === 'flush') return printFlush(await control.flush(dataDir), io);
    const { id } = change;
    if (change.action === 'retry') {
      await control.retry(dataDir, id);
      io.out(`${id} queued: the daemon (pid ${pid}) sends it now`);
    } else {
      await control.drop(dataDir, id);
      io.out(`${id} dropped`);
    }
    return OK;
  } catch (err) {
    if (err instanceof ControlUnavailableError) {
      io.err(
        `localpost: a daemon (pid ${pid}) is running on ${dataDir} but its control socket does not answer;` +
          ' it retries queued mail on its own and flushes the outbox when the connection returns',
      );
    } else {
      io.err(`localpost: ${err instanceof ControlRequestError ? err.message : errorMessage(err)}`);
    }
    return FAILURE;
  }
}
