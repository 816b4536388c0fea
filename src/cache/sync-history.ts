/**
 * What state.db records about an account's pulls, apart from its messages: the sync history
 * (the last `HISTORY_KEEP` pulls), the pull backoff, and the count and bytes cached.
 *
 * Statements are prepared on first use and touch only tables and columns that have existed
 * since their migration, so a read-only `status` can use this on a state.db written by an older
 * localpost (the pull backoff is read only where its table exists).
 */
import type { SyncRecord } from './message-store.js';
import type { PullBackoff } from './pull-backoff.js';
import type { StateDb } from './state-db.js';

/** Sync records kept per account. */
const HISTORY_KEEP = 100;

type SyncRow = Omit<SyncRecord, 'error' | 'missingFolders'> & { error: string | null; missing: string | null };
type BackoffRow = Omit<PullBackoff, 'error'> & { error: string | null };

function prepareHistory(db: StateDb) {
  // `missing_folders` since migration 10: an older state.db (read-only status) reads NULL instead
  const hasMissing = Boolean(
    db.prepare("SELECT 1 FROM pragma_table_info('sync_history') WHERE name = 'missing_folders'").get(),
  );
  const missing = hasMissing ? 'missing_folders' : 'NULL';
  const [col, val] = hasMissing ? [', missing_folders', ', @missing'] : ['', ''];
  return {
    addSync: db.prepare<SyncRow>(
      `INSERT INTO sync_history (account, started_at, finished_at, result, new_messages, bytes, skipped, error${col})
                  VALUES (@account, @startedAt, @finishedAt, @result, @newMessages, @bytes, @skipped, @error${val})`,
    ),
    pruneSync: db.prepare<{
      account: string;
      keep: number;
    }>(`DELETE FROM sync_history WHERE account = @account AND id <= coalesce(
                      (SELECT id FROM sync_history WHERE account = @account ORDER BY id DESC LIMIT 1 OFFSET @keep), -1)`),
    lastSync: db.prepare<[string], SyncRow>(`SELECT account, started_at AS startedAt, finished_at AS finishedAt, result,
                     new_messages AS newMessages, bytes, skipped, error, ${missing} AS missing
                   FROM sync_history WHERE account = ? ORDER BY id DESC LIMIT 1`),
    stats: db.prepare<[string], { messages: number; bytes: number }>(
      'SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM messages WHERE account = ?',
    ),
  };
}

function prepareBackoff(db: StateDb) {
  return {
    backoff: db.prepare<[string], BackoffRow>(
      'SELECT failures, until, reason, error FROM pull_backoff WHERE account = ?',
    ),
    setBackoff: db.prepare<BackoffRow & { account: string }>(
      `INSERT INTO pull_backoff (account, failures, until, reason, error)
                       VALUES (@account, @failures, @until, @reason, @error)
                       ON CONFLICT (account) DO UPDATE SET failures = excluded.failures, until = excluded.until,
                         reason = excluded.reason, error = excluded.error`,
    ),
    clearBackoff: db.prepare<[string]>('DELETE FROM pull_backoff WHERE account = ?'),
  };
}

/** Sync history, pull backoff and cache totals of the accounts in one state.db. */
export class SyncHistory {
  private history?: ReturnType<typeof prepareHistory>;
  private backoffs?: ReturnType<typeof prepareBackoff>;

  constructor(private readonly db: StateDb) {}

  /** Append a sync record and drop all but the last `HISTORY_KEEP` of that account. */
  recordSync(r: SyncRecord): void {
    const s = this.historySql();
    this.db.transaction(() => {
      const { missingFolders, ...rest } = r;
      s.addSync.run({
        ...rest,
        error: r.error ?? null,
        missing: missingFolders ? JSON.stringify(missingFolders) : null,
      });
      s.pruneSync.run({ account: r.account, keep: HISTORY_KEEP });
    })();
  }

  /** The latest sync record of an account. */
  lastSync(account: string): SyncRecord | undefined {
    const r = this.historySql().lastSync.get(account);
    if (!r) return undefined;
    const { error, missing, ...rest } = r;
    return {
      ...rest,
      ...(error === null ? {} : { error }),
      ...(missing === null ? {} : { missingFolders: JSON.parse(missing) as string[] }),
    };
  }

  /** Count and total bytes of an account's cached messages. */
  stats(account: string): { messages: number; bytes: number } {
    // an aggregate without GROUP BY always yields one row
    return this.historySql().stats.get(account) ?? { messages: 0, bytes: 0 };
  }

  /** An account's stored pull backoff (possibly over already). */
  pullBackoff(account: string): PullBackoff | undefined {
    const r = this.backoffSql().backoff.get(account);
    if (!r) return undefined;
    const { error, ...rest } = r;
    return error === null ? rest : { ...rest, error };
  }

  /** Store an account's pull backoff; undefined removes it. */
  setPullBackoff(account: string, b: PullBackoff | undefined): void {
    const sql = this.backoffSql();
    if (b)
      sql.setBackoff.run({ account, failures: b.failures, until: b.until, reason: b.reason, error: b.error ?? null });
    else sql.clearBackoff.run(account);
  }

  private historySql(): ReturnType<typeof prepareHistory> {
    this.history ??= prepareHistory(this.db);
    return this.history;
  }

  private backoffSql(): ReturnType<typeof prepareBackoff> {
    this.backoffs ??= prepareBackoff(this.db);
    return this.backoffs;
  }
}
