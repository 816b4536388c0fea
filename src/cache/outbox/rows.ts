/**
 * The `outbox` rows of state.db: an index of the outbox entries (whose truth is `<id>.json`,
 * see `outbox-entry.ts`) plus what outlives them — finished entries are kept as rows (state
 * sent, failed or dropped) for `localpost status` and for duplicate detection (clients resend: the
 * same message submitted again within the window is accepted but not queued twice).
 *
 * Rows are written after the files they describe are durable, or before a commit point whose
 * failure removes them again; start-up rebuilds every queued row from the files. Since the
 * rows can always be rebuilt, the outbox writes them through its own connection to state.db
 * with `synchronous=NORMAL` (`openIndexDb`): a commit then costs no fsync on the event loop,
 * while the ledger's connection keeps `synchronous=FULL` (invariant 6). Reading needs no lock,
 * so `localpost status` can query a running daemon's state.db.
 */
import Database from 'better-sqlite3';
import type { StateDb } from '../state-db.js';
import { entryState, type OutboxEntry, pendingRecipients } from './entry.js';

/** Row state: an entry still queued, or what became of it. */
export type OutboxRowState = 'queued' | 'sent' | 'failed' | 'dropped';

/** One `outbox` row as `status` and `outbox list` show it. */
export interface OutboxRow {
  id: string;
  account: string;
  state: OutboxRowState;
  mailFrom: string;
  recipients: number;
  pending: number;
  size: number;
  messageId: string | null;
  createdAt: number;
  nextAttempt: number | null;
  tries: number;
  lastError: string | null;
  finishedAt: number | null;
}

/** Per-account summary of the queue for `status`. */
export interface OutboxSummary {
  account: string;
  queued: number;
  /** Earliest next attempt among queued entries. */
  nextAttempt: number | null;
  /** The most recent error among queued entries. */
  lastError: string | null;
  failed: number;
}

const COLS = `id, account, state, mail_from AS mailFrom, recipients, pending, size, message_id AS messageId,
  created_at AS createdAt, next_attempt AS nextAttempt, tries, last_error AS lastError, finished_at AS finishedAt`;

/** A second connection to the (already migrated) state.db for the outbox index; close it when done. */
export function openIndexDb(main: StateDb): StateDb {
  const db = new Database(main.name, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** The parameters of an `outbox` row upsert. */
interface UpsertRow extends OutboxRow {
  dedupe: string | null;
}

/** Every statement of the outbox index, prepared once and typed by its parameters and rows. */
function prepareStatements(db: StateDb) {
  return {
    upsert:
      db.prepare<UpsertRow>(`INSERT INTO outbox (id, account, state, mail_from, recipients, pending, size, message_id, dedupe,
                   created_at, next_attempt, tries, last_error, finished_at)
                 VALUES (@id, @account, @state, @mailFrom, @recipients, @pending, @size, @messageId, @dedupe,
                   @createdAt, @nextAttempt, @tries, @lastError, @finishedAt)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, pending = excluded.pending,
                   next_attempt = excluded.next_attempt, tries = excluded.tries, last_error = excluded.last_error,
                   finished_at = excluded.finished_at`),
    setState: db.prepare<[OutboxRowState, number, string]>(
      'UPDATE outbox SET state = ?, finished_at = ?, next_attempt = NULL WHERE id = ?',
    ),
    setNext: db.prepare<[number, string]>(`UPDATE outbox SET next_attempt = ? WHERE id = ? AND state = 'queued'`),
    remove: db.prepare<[string]>('DELETE FROM outbox WHERE id = ?'),
    byId: db.prepare<[string], OutboxRow>(`SELECT ${COLS} FROM outbox WHERE id = ?`),
    queuedIds: db.prepare<[], { id: string }>(`SELECT id FROM outbox WHERE state = 'queued'`),
    duplicate: db.prepare<
      [string, number],
      { id: string }
    >(`SELECT id FROM outbox WHERE dedupe = ? AND created_at >= ? AND state IN ('queued', 'sent')
                    ORDER BY created_at LIMIT 1`),
    list: db.prepare<[], OutboxRow>(
      `SELECT ${COLS} FROM outbox WHERE state IN ('queued', 'failed') ORDER BY created_at, id`,
    ),
    recent: db.prepare<[number], OutboxRow>(
      `SELECT ${COLS} FROM outbox WHERE state NOT IN ('queued', 'failed') ORDER BY finished_at DESC LIMIT ?`,
    ),
    summary: db.prepare<[], Omit<OutboxSummary, 'lastError'>>(
      `SELECT account, sum(state = 'queued') AS queued, min(CASE WHEN state = 'queued' THEN next_attempt END) AS nextAttempt,
                    sum(state = 'failed') AS failed FROM outbox GROUP BY account ORDER BY account`,
    ),
    lastError: db.prepare<
      [string],
      { e: string }
    >(`SELECT last_error AS e FROM outbox WHERE account = ? AND state = 'queued' AND last_error IS NOT NULL
                    ORDER BY coalesce(next_attempt, 0) DESC LIMIT 1`),
    prune: db.prepare<[number]>(`DELETE FROM outbox WHERE state IN ('sent', 'dropped') AND finished_at < ?`),
  };
}

/** Prepared statements over the `outbox` table (migration 3). */
export class OutboxIndex {
  private readonly s: ReturnType<typeof prepareStatements>;

  constructor(readonly db: StateDb) {
    this.s = prepareStatements(db);
  }

  /** Insert or refresh the row of an entry (queued, or finished as sent/failed). */
  put(e: OutboxEntry, dedupe: string | null, finishedAt: number | null = null): void {
    const state = entryState(e);
    this.s.upsert.run({
      id: e.id,
      account: e.account,
      state,
      mailFrom: e.from,
      recipients: e.recipients.length,
      pending: pendingRecipients(e).length,
      size: e.size,
      messageId: e.messageId ?? null,
      dedupe,
      createdAt: e.createdAt,
      nextAttempt: state === 'queued' ? e.nextAttempt : null,
      tries: e.tries,
      lastError: e.lastError ?? null,
      finishedAt: state === 'queued' ? null : finishedAt,
    });
  }

  /** Mark a row finished in a given state (dropped by the user, or given up). */
  setState(id: string, state: OutboxRowState, at: number): void {
    this.s.setState.run(state, at, id);
  }

  /** Show another next-attempt time for a queued entry (its account is blocked); the JSON keeps its own. */
  setNextAttempt(id: string, at: number): void {
    this.s.setNext.run(at, id);
  }

  /** Forget a row (an acceptance that did not complete). */
  remove(id: string): void {
    this.s.remove.run(id);
  }

  /** One row. */
  get(id: string): OutboxRow | undefined {
    return this.s.byId.get(id);
  }

  /** Ids of the rows in state queued. */
  queuedIds(): string[] {
    return this.s.queuedIds.all().map((r) => r.id);
  }

  /** The id of an earlier queued or sent entry with the same dedupe key accepted since `since`. */
  findDuplicate(dedupe: string, since: number): string | undefined {
    return this.s.duplicate.get(dedupe, since)?.id;
  }

  /** Queued and failed entries, oldest first. */
  list(): OutboxRow[] {
    return this.s.list.all();
  }

  /** The last `n` finished entries (sent or dropped), newest first. */
  recent(n: number): OutboxRow[] {
    return this.s.recent.all(n);
  }

  /** Per-account queue summary. */
  summary(): OutboxSummary[] {
    const rows = this.s.summary.all();
    return rows.map((r) => ({
      ...r,
      queued: r.queued ?? 0,
      failed: r.failed ?? 0,
      lastError: this.s.lastError.get(r.account)?.e ?? null,
    }));
  }

  /** Delete rows of sent and dropped entries finished before `before`. */
  prune(before: number): number {
    return this.s.prune.run(before).changes;
  }
}
