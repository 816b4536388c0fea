/**
 * `localpost outbox [list|retry ID|drop ID|flush]` (INTERFACE "Commands").
 *
 * `list` reads state.db read-only and works whether a daemon runs or not. The others change
 * the outbox, so they run in-process under the instance lock when no daemon runs (the outbox
 * is opened with its start-up recovery, as the daemon would); while a daemon runs they print
 * what to do instead, until the control socket lets the CLI ask the daemon (a later issue).
 * `flush` sends everything queued now, through each account's upstream, and reports what is
 * left.
 */
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Cache } from '../cache/cache.js';
import { errorMessage } from '../shared/errors.js';
import type { Config } from './config/schema.js';
import { acquireLock, LockedError } from './instance-lock.js';
import { Outgoing } from './outgoing.js';
import { formatEntries, readStatus } from './status.js';

/** Exit codes used here (same as main.ts). */
const OK = 0;
const FAILURE = 1;

/** Output sinks (stdout, stderr), injectable for tests. */
export interface CliOut {
  out(line: string): void;
  err(line: string): void;
}

const stdio: CliOut = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

/** Run one `outbox` subcommand; returns the exit code. */
export async function outboxCommand(cfg: Config, log: Logger, action: string, id: string | undefined, io: CliOut = stdio): Promise<number> {
  if (action === 'list') {
    const s = await readStatus(cfg);
    for (const line of formatEntries(s.outbox.entries)) io.out(line);
    return OK;
  }
  if (!['retry', 'drop', 'flush'].includes(action)) {
    io.err(`localpost: unknown outbox action "${action}" (use list, retry ID, drop ID or flush)`);
    return FAILURE;
  }
  if (action !== 'flush' && !id) {
    io.err(`localpost: outbox ${action} needs the id of an entry (see "localpost outbox list")`);
    return FAILURE;
  }
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  let lock;
  try {
    lock = await acquireLock(cfg.dataDir);
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    io.err(`localpost: a daemon (pid ${err.pid}) is running on ${cfg.dataDir}. It retries queued mail on its own and`
      + ` flushes the outbox when the connection returns; "outbox ${action}" cannot reach it yet (no control socket in this`
      + ' version): stop the daemon, run the command, start it again.');
    return FAILURE;
  }
  const cache = await Cache.open({ dataDir: cfg.dataDir, accounts: cfg.accounts.map((a) => a.id), log: log.child({ component: 'cache' }) });
  const outgoing = new Outgoing({ config: () => cfg, cache: () => cache, sync: () => undefined, log });
  const [outboxC, deliveryC] = outgoing.components();
  try {
    await outboxC!.start();
    const outbox = outgoing.outbox!;
    if (action === 'retry' || action === 'drop') {
      const ok = action === 'retry' ? await outbox.retry(id!) : await outbox.drop(id!);
      if (!ok) {
        io.err(`localpost: no queued or failed outbox entry ${id}`);
        return FAILURE;
      }
      io.out(action === 'retry' ? `${id} queued: it is sent at the next delivery (the daemon, or "localpost outbox flush")` : `${id} dropped`);
      return OK;
    }
    const before = outbox.queued().length;
    await deliveryC!.start();
    await outgoing.delivery!.flush();
    const left = outbox.queued();
    io.out(`flush: ${before - left.length} of ${before} sent or finished, ${left.length} still queued`);
    for (const e of left) io.out(`  ${e.id} ${e.account}: ${e.lastError ?? 'not tried'}`);
    return left.length ? FAILURE : OK;
  } catch (err) {
    io.err(`localpost: ${errorMessage(err)}`);
    return FAILURE;
  } finally {
    await deliveryC!.stop(); // closes the upstream connections
    await outboxC!.stop();
    cache.close();
    await lock.release();
  }
}
