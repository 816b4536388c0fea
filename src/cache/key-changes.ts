/**
 * Upstream key changes matched by content (`known-messages.ts`), as recorded in state.db's
 * `key_changes` table: a POP3 provider that renumbered every UIDL of a folder. A change is
 * written before its first record is adopted and updated after each durable step, so an
 * adoption cut short (crash, kill -9) is found again and finished at the next pull; the latest
 * change of an account is what `status` shows.
 *
 * Statements are prepared on first use; a read-only `status` checks that the table exists first.
 */
import type { KeyChange } from './message-store.js';
import type { StateDb } from './state-db.js';

interface KeyChangeRow {
  folder: string;
  kind: string;
  detectedAt: number;
  finishedAt: number | null;
  matched: number;
  fresh: number;
}

const COLS =
  'folder, kind, detected_at AS detectedAt, finished_at AS finishedAt, matched, fresh FROM key_changes WHERE account = ?';

function prepare(db: StateDb) {
  return {
    upsert: db.prepare<KeyChangeRow & { account: string }>(
      `INSERT INTO key_changes (account, folder, kind, detected_at, finished_at, matched, fresh)
       VALUES (@account, @folder, @kind, @detectedAt, @finishedAt, @matched, @fresh)
       ON CONFLICT (account, folder, detected_at) DO UPDATE SET finished_at = excluded.finished_at,
         matched = excluded.matched, fresh = excluded.fresh`,
    ),
    unfinished: db.prepare<[string, string], KeyChangeRow>(
      `SELECT ${COLS} AND folder = ? AND finished_at IS NULL ORDER BY detected_at DESC LIMIT 1`,
    ),
    latest: db.prepare<[string], KeyChangeRow>(`SELECT ${COLS} ORDER BY detected_at DESC LIMIT 1`),
  };
}

function fromRow(r: KeyChangeRow | undefined): KeyChange | undefined {
  if (!r) return undefined;
  const { finishedAt, kind, ...rest } = r;
  return { ...rest, kind: kind as KeyChange['kind'], ...(finishedAt === null ? {} : { finishedAt }) };
}

/** The `key_changes` table of one state.db. */
export class KeyChanges {
  private sql?: ReturnType<typeof prepare>;

  constructor(private readonly db: StateDb) {}

  /** True when the table exists (state.db written by an older localpost, opened read-only). */
  static present(db: StateDb): boolean {
    return Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'key_changes'").get());
  }

  /** Insert or update a change (keyed by account, folder and detection time). */
  note(account: string, c: KeyChange): void {
    this.s().upsert.run({ account, ...c, finishedAt: c.finishedAt ?? null });
  }

  /** The change of (account, folder) whose adoption has not finished, if any. */
  unfinished(account: string, folder: string): KeyChange | undefined {
    return fromRow(this.s().unfinished.get(account, folder));
  }

  /** The latest change of an account, finished or not. */
  latest(account: string): KeyChange | undefined {
    return fromRow(this.s().latest.get(account));
  }

  private s(): ReturnType<typeof prepare> {
    this.sql ??= prepare(this.db);
    return this.sql;
  }
}
