/**
 * The change journal as `localpost journal` and `status` see it: the entries of state.db's
 * `journal` table not yet carried upstream (queued, inflight, failed), per-account counts, and
 * the two user actions (retry a failed entry, drop one that is not done). Read-only queries need
 * no lock, so the CLI can list a running daemon's journal; retry and drop run in the daemon
 * (control API) or in-process under the instance lock, never beside a running replay.
 *
 * The semantics are those of `ChangeJournal.list/counts/retry/drop` (cache/mailboxes.ts); the
 * replay's own transitions (markInflight, complete, fail) belong to the cache's implementation.
 * A state.db from before migration 9 has no journal: everything reads as empty.
 */
import type Database from 'better-sqlite3';
import type { ChangeJournal, JournalChange, JournalEntry, JournalState } from '../cache/mailboxes.js';

/** A `journal` row as stored. */
interface JournalRow {
  id: number;
  account: string;
  change: string;
  state: JournalState;
  created_at: number;
  tries: number;
  next_attempt: number | null;
  last_error: string | null;
  inflight_note: string | null;
}

/** The entry of a row; a change that does not parse is shown as an unknown kind, never hidden. */
function entryOf(r: JournalRow): JournalEntry {
  let change: JournalChange;
  try {
    change = JSON.parse(r.change) as JournalChange;
  } catch {
    change = { kind: 'unknown', folder: '?' } as unknown as JournalChange;
  }
  return {
    id: r.id,
    account: r.account,
    change,
    state: r.state,
    createdAt: r.created_at,
    tries: r.tries,
    ...(r.next_attempt === null ? {} : { nextAttempt: r.next_attempt }),
    ...(r.last_error === null ? {} : { lastError: r.last_error }),
    ...(r.inflight_note === null ? {} : { inflightNote: r.inflight_note }),
  };
}

/** What the CLI, status and the control API use of the journal. */
export type JournalView = Pick<ChangeJournal, 'list' | 'counts' | 'retry' | 'drop'>;

/** The journal of a state.db connection (read-only or not: retry and drop need a writable one). */
export class JournalRows implements JournalView {
  private readonly present: boolean;

  constructor(private readonly db: Database.Database) {
    this.present = Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'").get());
  }

  list(account?: string): JournalEntry[] {
    if (!this.present) return [];
    const rows = this.db
      .prepare<[string | null, string | null], JournalRow>(
        `SELECT id, account, change, state, created_at, tries, next_attempt, last_error, inflight_note FROM journal
         WHERE state IN ('queued', 'inflight', 'failed') AND (? IS NULL OR account = ?) ORDER BY id`,
      )
      .all(account ?? null, account ?? null);
    return rows.map(entryOf);
  }

  counts(): Map<string, { pending: number; failed: number }> {
    const out = new Map<string, { pending: number; failed: number }>();
    if (!this.present) return out;
    const rows = this.db
      .prepare<[], { account: string; pending: number; failed: number }>(
        `SELECT account, SUM(state IN ('queued', 'inflight')) AS pending, SUM(state = 'failed') AS failed
         FROM journal WHERE state IN ('queued', 'inflight', 'failed') GROUP BY account`,
      )
      .all();
    for (const r of rows) out.set(r.account, { pending: r.pending, failed: r.failed });
    return out;
  }

  retry(id: number): boolean {
    if (!this.present) return false;
    const r = this.db
      .prepare("UPDATE journal SET state = 'queued', next_attempt = NULL WHERE id = ? AND state = 'failed'")
      .run(id);
    return r.changes === 1;
  }

  drop(id: number): boolean {
    if (!this.present) return false;
    const r = this.db
      .prepare(
        "UPDATE journal SET state = 'dropped', done_at = ? WHERE id = ? AND state IN ('queued', 'inflight', 'failed')",
      )
      .run(Date.now(), id);
    return r.changes === 1;
  }
}
