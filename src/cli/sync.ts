/**
 * The output of `localpost sync`, and the way it goes through a running daemon.
 * Whether the pulls run in-process or in the daemon (`POST /sync` on the control
 * socket), the command prints the same one summary line and exits 0 only when every account's
 * pull succeeded. Through the daemon, a terminal still gets a progress bar: the CLI polls
 * `GET /status` while it waits, and shows each running pull's progress.
 */

import { ControlRequestError, ControlUnavailableError, control } from '../control/client.js';
import type { SyncOutcome } from '../control/protocol.js';
import type { FetchProgress } from '../upstream/types.js';
import { formatBytes } from './status.js';

/** The one summary line: `sync: home ok, 3 new (12.0 KB); work offline: ... in 1.2s`. */
export function formatSyncSummary(records: SyncOutcome[], ms: number): string {
  const parts = records.map((r) => {
    const what =
      r.result === 'ok'
        ? `ok, ${r.newMessages} new (${formatBytes(r.bytes)})${r.skipped ? `, ${r.skipped} skipped (too large)` : ''}` +
          `${r.deletedUpstream ? `, ${r.deletedUpstream} deleted upstream` : ''}` +
          `${r.missingFolders?.length ? `, not found upstream: ${r.missingFolders.join(', ')}` : ''}`
        : `${r.result}: ${r.error ?? ''}`;
    return `${r.account} ${what}`;
  });
  return `sync: ${parts.join('; ')} in ${(ms / 1000).toFixed(1)}s`;
}

/** A one-line progress display on a terminal (stderr), nothing otherwise. */
export function progressPrinter(enabled: boolean) {
  const state = new Map<string, FetchProgress>();
  let last = 0;
  return {
    /** Show an account's progress (throttled to 10 updates a second). */
    update(account: string, p: FetchProgress) {
      if (!enabled) return;
      state.set(account, p);
      const now = Date.now();
      if (now - last < 100 && p.done !== p.total) return;
      last = now;
      const parts = [...state].map(([a, q]) => {
        const pct = q.total ? Math.floor((q.done / q.total) * 100) : 100;
        const width = 20;
        const fill = Math.round((pct / 100) * width);
        return `${a} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${q.done}/${q.total} ${formatBytes(q.bytes)}`;
      });
      process.stderr.write(`\r${parts.join('  ')}\x1b[K`);
    },
    /** End the progress line. */
    end() {
      if (enabled && state.size) process.stderr.write('\n');
    },
  };
}

/**
 * Pull `accounts` (all when empty) through the daemon of `dataDir` (pid `pid`); prints the
 * summary line and returns the exit code.
 */
export async function syncThroughDaemon(dataDir: string, accounts: string[], pid: number): Promise<number> {
  const progress = progressPrinter(Boolean(process.stderr.isTTY));
  const t0 = Date.now();
  let poll: NodeJS.Timeout | undefined;
  if (process.stderr.isTTY) {
    poll = setInterval(() => {
      control.status(dataDir).then(
        (s) => {
          for (const a of s.accounts)
            if (a.pull && (!accounts.length || accounts.includes(a.id))) progress.update(a.id, a.pull);
        },
        () => undefined,
      );
    }, 250);
  }
  try {
    const records = await control.sync(dataDir, accounts);
    clearInterval(poll);
    progress.end();
    process.stdout.write(`${formatSyncSummary(records, Date.now() - t0)}\n`);
    return records.every((r) => r.result === 'ok') ? 0 : 1;
  } catch (err) {
    clearInterval(poll);
    progress.end();
    if (err instanceof ControlUnavailableError) {
      process.stderr.write(
        `localpost: a daemon (pid ${pid}) is running on ${dataDir} but its control socket does not answer; it pulls on its own schedule\n`,
      );
    } else if (err instanceof ControlRequestError) {
      process.stderr.write(`localpost: the daemon refused the sync: ${err.message}\n`);
    } else {
      process.stderr.write(`localpost: ${(err as Error).message}\n`);
    }
    return 1;
  }
}
