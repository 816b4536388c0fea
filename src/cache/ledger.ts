/**
 * The ledger in state.db (invariant 6): one row per cached message (local UID,
 * folder, file, sizes, upstream key, flags), the next local UID per account, tombstones of keys
 * deleted locally, IMAP cursors, the sync history (last `HISTORY_KEEP` per account) and the
 * pull backoff per account.
 *
 * Every statement is prepared once. Nothing here touches files: rows are written only after the
 * files they describe are durable (the callers in `account-store.ts` and `recovery.ts` ensure
 * that), and the next UID stored here is a floor that recovery may raise from the Maildir.
 */
import type { ImapCursor, SyncRecord } from './message-store.js';
import type { PullBackoff } from './pull-backoff.js';
import type { StateDb } from './state-db.js';

/** Sync records kept per account. */
const HISTORY_KEEP = 100;

/** A `messages` row. */
export interface MessageRow {
  account: string;
  uid: number;
  folder: string;
  /** Relative to the folder directory: `new/<name>` or `cur/<name>`. */
  file: string;
  size: number;
  wsize: number;
  key: string;
  flags: string;
  storedAt: number;
  /** 1: the header ends with an empty line; 0: it has none; null/absent: not known yet. */
  eoh?: number | null;
}

/** Upstream fate of a tombstoned key: kept, deletion pending (`delete-upstream`), or done. */
export type UpstreamDelete = 'pending' | 'done' | null;

const ROW_COLS = 'account, uid, folder, file, size, wsize, key, flags, stored_at AS storedAt, eoh';

type Key = { folder: string; key: string };
type CursorRow = { uidValidity: string; lastUid: number; highestModseq: string | null };
type SyncRow = Omit<SyncRecord, 'error'> & { error: string | null };
type BackoffRow = Omit<PullBackoff, 'error'> & { error: string | null };

/** Every statement of the ledger, prepared once and typed by its parameters and rows. */
function prepareStatements(db: StateDb) {
  return {
    insert: db.prepare<MessageRow & { eoh: number | null }>(
      `INSERT INTO messages (account, uid, folder, file, size, wsize, key, flags, stored_at, eoh)
                 VALUES (@account, @uid, @folder, @file, @size, @wsize, @key, @flags, @storedAt, @eoh)`,
    ),
    setEoh: db.prepare<[number, string, number]>('UPDATE messages SET eoh = ? WHERE account = ? AND uid = ?'),
    move: db.prepare<[string, string, string, string, number]>(
      'UPDATE messages SET folder = ?, file = ?, flags = ? WHERE account = ? AND uid = ?',
    ),
    delete: db.prepare<[string, number]>('DELETE FROM messages WHERE account = ? AND uid = ?'),
    byUid: db.prepare<[string, number], MessageRow>(`SELECT ${ROW_COLS} FROM messages WHERE account = ? AND uid = ?`),
    byFolder: db.prepare<[string, string], MessageRow>(
      `SELECT ${ROW_COLS} FROM messages WHERE account = ? AND folder = ? ORDER BY uid`,
    ),
    // rows as arrays: the POP3 snapshot reads 100k of them
    folderIndex: db
      .prepare<[string, string], [number, number, number | null]>(
        'SELECT uid, wsize, eoh FROM messages WHERE account = ? AND folder = ? ORDER BY uid',
      )
      .raw(true),
    byAccount: db.prepare<[string], MessageRow>(`SELECT ${ROW_COLS} FROM messages WHERE account = ? ORDER BY uid`),
    byPrefix: db.prepare<
      { account: string; folder: string; prefix: string },
      MessageRow
    >(`SELECT ${ROW_COLS} FROM messages
                   WHERE account = @account AND folder = @folder AND substr(key, 1, length(@prefix)) = @prefix ORDER BY uid`),
    keys: db.prepare<[string], Key>('SELECT folder, key FROM messages WHERE account = ?'),
    setFileKey: db.prepare<[string, string, string, number]>(
      'UPDATE messages SET file = ?, key = ? WHERE account = ? AND uid = ?',
    ),
    stats: db.prepare<[string], { messages: number; bytes: number }>(
      'SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM messages WHERE account = ?',
    ),
    maxUid: db.prepare<[string], { m: number | null }>('SELECT max(uid) AS m FROM messages WHERE account = ?'),
    nextUid: db.prepare<[string], { n: number }>('SELECT next_uid AS n FROM accounts WHERE account = ?'),
    raiseNextUid: db.prepare<{
      account: string;
      next: number;
    }>(`INSERT INTO accounts (account, next_uid) VALUES (@account, @next)
                       ON CONFLICT (account) DO UPDATE SET next_uid = max(next_uid, @next)`),
    tomb: db.prepare<
      [string, string, string, number]
    >(`INSERT INTO tombstones (account, folder, key, deleted_at) VALUES (?, ?, ?, ?)
               ON CONFLICT DO NOTHING`),
    tombUpstream: db.prepare<[string, string, string, number, UpstreamDelete]>(
      `INSERT INTO tombstones (account, folder, key, deleted_at, upstream) VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT DO UPDATE SET upstream = coalesce(excluded.upstream, upstream)`,
    ),
    pendingUp: db.prepare<[string, string], { key: string }>(
      `SELECT key FROM tombstones WHERE account = ? AND folder = ? AND upstream = 'pending' ORDER BY key`,
    ),
    doneUp: db.prepare<[string, string, string]>(
      `UPDATE tombstones SET upstream = 'done' WHERE account = ? AND folder = ? AND key = ? AND upstream = 'pending'`,
    ),
    trashedBefore: db.prepare<{ account: string; from: string; trash: string; cutoff: number }, { uid: number }>(
      `SELECT m.uid AS uid FROM messages m JOIN tombstones t
                          ON t.account = m.account AND t.folder = @from AND t.key = m.key
                        WHERE m.account = @account AND m.folder = @trash AND t.deleted_at < @cutoff ORDER BY m.uid`,
    ),
    tombs: db.prepare<[string], Key>('SELECT folder, key FROM tombstones WHERE account = ?'),
    isTomb: db.prepare<[string, string, string]>(
      'SELECT 1 FROM tombstones WHERE account = ? AND folder = ? AND key = ?',
    ),
    cursor: db.prepare<
      [string, string],
      CursorRow
    >(`SELECT uidvalidity AS uidValidity, last_uid AS lastUid, highest_modseq AS highestModseq
                 FROM imap_cursors WHERE account = ? AND folder = ?`),
    setCursor: db.prepare<
      [string, string, string, number, string | null]
    >(`INSERT INTO imap_cursors (account, folder, uidvalidity, last_uid, highest_modseq)
                    VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (account, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
                      last_uid = excluded.last_uid, highest_modseq = excluded.highest_modseq`),
    addSync: db.prepare<SyncRow>(
      `INSERT INTO sync_history (account, started_at, finished_at, result, new_messages, bytes, skipped, error)
                  VALUES (@account, @startedAt, @finishedAt, @result, @newMessages, @bytes, @skipped, @error)`,
    ),
    pruneSync: db.prepare<{
      account: string;
      keep: number;
    }>(`DELETE FROM sync_history WHERE account = @account AND id <= coalesce(
                      (SELECT id FROM sync_history WHERE account = @account ORDER BY id DESC LIMIT 1 OFFSET @keep), -1)`),
    lastSync: db.prepare<[string], SyncRow>(`SELECT account, started_at AS startedAt, finished_at AS finishedAt, result,
                     new_messages AS newMessages, bytes, skipped, error
                   FROM sync_history WHERE account = ? ORDER BY id DESC LIMIT 1`),
  };
}

/** The pull backoff statements, prepared on first use: a read-only `status` may open a state.db older than the table. */
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

/** Prepared statements over state.db. */
export class Ledger {
  private readonly s: ReturnType<typeof prepareStatements>;
  private backoffStatements?: ReturnType<typeof prepareBackoff>;

  constructor(readonly db: StateDb) {
    this.s = prepareStatements(db);
  }

  /** Run `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Insert one message row. */
  insertMessage(r: MessageRow): void {
    this.s.insert.run({ ...r, eoh: r.eoh ?? null });
  }

  /** Record whether a message's header ends with an empty line (1) or not (0). */
  setEoh(account: string, uid: number, eoh: number): void {
    this.s.setEoh.run(eoh, account, uid);
  }

  /** Point a row at another folder and file (a move between Maildir folders). */
  moveMessage(account: string, uid: number, folder: string, file: string, flags: string): void {
    this.s.move.run(folder, file, flags, account, uid);
  }

  /** Delete one message row. */
  deleteMessage(account: string, uid: number): void {
    this.s.delete.run(account, uid);
  }

  /** A message row by UID. */
  message(account: string, uid: number): MessageRow | undefined {
    return this.s.byUid.get(account, uid);
  }

  /** Rows of a folder in UID order. */
  folderMessages(account: string, folder: string): MessageRow[] {
    return this.s.byFolder.all(account, folder);
  }

  /** `[uid, wsize, eoh]` of a folder in UID order, as raw arrays (the POP3 snapshot: fast at 100k rows). */
  folderIndex(account: string, folder: string): Array<[number, number, number | null]> {
    return this.s.folderIndex.all(account, folder);
  }

  /** All rows of an account in UID order. */
  accountMessages(account: string): MessageRow[] {
    return this.s.byAccount.all(account);
  }

  /** Rows of a folder whose key starts with `prefix`. */
  messagesWithKeyPrefix(account: string, folder: string, prefix: string): MessageRow[] {
    return this.s.byPrefix.all({ account, folder, prefix });
  }

  /** Every (folder, key) cached for an account. */
  messageKeys(account: string): { folder: string; key: string }[] {
    return this.s.keys.all(account);
  }

  /** Point a row at a renamed file and/or a new key. */
  setFileKey(account: string, uid: number, file: string, key: string): void {
    this.s.setFileKey.run(file, key, account, uid);
  }

  /** Count and total bytes of an account's cached messages. */
  stats(account: string): { messages: number; bytes: number } {
    // an aggregate without GROUP BY always yields one row
    return this.s.stats.get(account) ?? { messages: 0, bytes: 0 };
  }

  /** Next local UID of an account: max(stored floor, highest row + 1, 1). */
  nextUid(account: string): number {
    const stored = this.s.nextUid.get(account)?.n ?? 1;
    const max = this.s.maxUid.get(account)?.m ?? 0;
    return Math.max(stored, max + 1, 1);
  }

  /** Raise the stored next UID to at least `next` (never lowers it). */
  raiseNextUid(account: string, next: number): void {
    this.s.raiseNextUid.run({ account, next });
  }

  /** Record that `key` was deleted locally (idempotent). */
  addTombstone(account: string, folder: string, key: string, deletedAt: number): void {
    this.s.tomb.run(account, folder, key, deletedAt);
  }

  /** Tombstone `key`, optionally asking for its upstream deletion ('pending'); keeps an earlier request. */
  addTombstoneUpstream(
    account: string,
    folder: string,
    key: string,
    deletedAt: number,
    upstream: UpstreamDelete,
  ): void {
    this.s.tombUpstream.run(account, folder, key, deletedAt, upstream);
  }

  /** Keys of a folder whose upstream deletion is pending (`onLocalDelete: delete-upstream`). */
  pendingUpstreamDeletes(account: string, folder: string): string[] {
    return this.s.pendingUp.all(account, folder).map((r) => r.key);
  }

  /** Record that the upstream copies of `keys` are gone (their tombstones stay). */
  markUpstreamDeleted(account: string, folder: string, keys: readonly string[]): void {
    this.transaction(() => {
      for (const k of keys) this.s.doneUp.run(account, folder, k);
    });
  }

  /** UIDs in `trash` whose deletion from `from` (its tombstone) is older than `cutoff`. */
  trashedBefore(account: string, from: string, trash: string, cutoff: number): number[] {
    return this.s.trashedBefore.all({ account, from, trash, cutoff }).map((r) => r.uid);
  }

  /** Every tombstoned (folder, key) of an account. */
  tombstones(account: string): { folder: string; key: string }[] {
    return this.s.tombs.all(account);
  }

  /** True when (folder, key) is tombstoned. */
  isTombstoned(account: string, folder: string, key: string): boolean {
    return this.s.isTomb.get(account, folder, key) !== undefined;
  }

  /** IMAP cursor of a folder. */
  cursor(account: string, folder: string): ImapCursor | undefined {
    const r = this.s.cursor.get(account, folder);
    if (!r) return undefined;
    return r.highestModseq === null
      ? { uidValidity: r.uidValidity, lastUid: r.lastUid }
      : { uidValidity: r.uidValidity, lastUid: r.lastUid, highestModseq: r.highestModseq };
  }

  /** Store an IMAP cursor. */
  setCursor(account: string, folder: string, c: ImapCursor): void {
    this.s.setCursor.run(account, folder, String(c.uidValidity), c.lastUid, c.highestModseq ?? null);
  }

  /** Append a sync record and drop all but the last `HISTORY_KEEP` of that account. */
  recordSync(r: SyncRecord): void {
    this.transaction(() => {
      this.s.addSync.run({ ...r, error: r.error ?? null });
      this.s.pruneSync.run({ account: r.account, keep: HISTORY_KEEP });
    });
  }

  /** The latest sync record of an account. */
  lastSync(account: string): SyncRecord | undefined {
    const r = this.s.lastSync.get(account);
    if (!r) return undefined;
    const { error, ...rest } = r;
    return error === null ? rest : { ...rest, error };
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

  private backoffSql(): ReturnType<typeof prepareBackoff> {
    this.backoffStatements ??= prepareBackoff(this.db);
    return this.backoffStatements;
  }
}
