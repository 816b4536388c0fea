/**
 * The ledger in state.db (invariant 6): one row per cached message (local UID,
 * folder, file, sizes, upstream key, flags), the next local UID per account, tombstones of keys
 * deleted locally, IMAP cursors, POP3 retrievals not yet confirmed by a QUIT, messages abandoned
 * for being larger than they said (the sync history and pull backoff are in
 * `sync-history.ts`).
 *
 * Every statement is prepared once. Nothing here touches files: rows are written only after the
 * files they describe are durable (the callers in `account-store.ts` and `recovery.ts` ensure
 * that), and the next UID stored here is a floor that recovery may raise from the Maildir.
 */
import type { ImapCursor } from './message-store.js';
import type { StateDb } from './state-db.js';

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
  /** Content identity (`content-identity.ts`); null/absent: not computed yet. */
  ident?: string | null;
  /** POP3 UIDL served for this message; null/absent: the local UID in hex. */
  uidl?: string | null;
}

/** Upstream fate of a tombstoned key: kept, deletion pending (`delete-upstream`), or done. */
export type UpstreamDelete = 'pending' | 'done' | null;

const ROW_COLS = 'account, uid, folder, file, size, wsize, key, flags, stored_at AS storedAt, eoh, ident, uidl';

type Key = { folder: string; key: string };
/** A message abandoned for sending more than `limit` bytes (`received` when it was stopped). */
export type OversizedRow = { key: string; limit: number; received: number };
type CursorRow = { uidValidity: string; lastUid: number; highestModseq: string | null };

/** Every statement of the ledger, prepared once and typed by its parameters and rows. */
function prepareStatements(db: StateDb) {
  return {
    insert: db.prepare<MessageRow & { eoh: number | null; ident: string | null; uidl: string | null }>(
      `INSERT INTO messages (account, uid, folder, file, size, wsize, key, flags, stored_at, eoh, ident, uidl)
                 VALUES (@account, @uid, @folder, @file, @size, @wsize, @key, @flags, @storedAt, @eoh, @ident, @uidl)`,
    ),
    setIdent: db.prepare<[string, string, number]>('UPDATE messages SET ident = ? WHERE account = ? AND uid = ?'),
    setEoh: db.prepare<[number, string, number]>('UPDATE messages SET eoh = ? WHERE account = ? AND uid = ?'),
    move: db.prepare<[string, string, string, string, number]>(
      'UPDATE messages SET folder = ?, file = ?, flags = ? WHERE account = ? AND uid = ?',
    ),
    delete: db.prepare<[string, number]>('DELETE FROM messages WHERE account = ? AND uid = ?'),
    byUid: db.prepare<[string, number], MessageRow>(`SELECT ${ROW_COLS} FROM messages WHERE account = ? AND uid = ?`),
    byFolder: db.prepare<[string, string], MessageRow>(
      `SELECT ${ROW_COLS} FROM messages WHERE account = ? AND folder = ? ORDER BY uid`,
    ),
    // rows as arrays: the POP3 snapshot's fallback when `folderPacked` comes back out of order
    folderIndex: db
      .prepare<[string, string], [number, number, number | null, string | null]>(
        'SELECT uid, wsize, eoh, uidl FROM messages WHERE account = ? AND folder = ? ORDER BY uid',
      )
      .raw(true),
    // the whole POP3 snapshot as a few strings built by SQLite: one native call instead of one
    // per row (1M rows: ~0.3 s instead of ~1.5 s); rows are fed to group_concat in UID order
    // (the subquery's ORDER BY), which `folder-snapshot.ts` checks.
    folderPacked: db
      .prepare<[string, string], [number, string | null, string | null, string | null, string | null]>(
        `SELECT count(*), group_concat(uid), group_concat(wsize),
                group_concat(CASE WHEN eoh IS 1 THEN NULL ELSE uid || ':' || coalesce(eoh, '') END),
                group_concat(CASE WHEN uidl IS NULL THEN NULL ELSE uid || ' ' || uidl END, char(10))
           FROM (SELECT uid, wsize, eoh, uidl FROM messages WHERE account = ? AND folder = ? ORDER BY uid)`,
      )
      .raw(true),
    totalChanges: db.prepare<[], [number]>('SELECT total_changes()').raw(true),
    dataVersion: db.prepare<[], [number]>('PRAGMA data_version').raw(true),
    byAccount: db.prepare<[string], MessageRow>(`SELECT ${ROW_COLS} FROM messages WHERE account = ? ORDER BY uid`),
    keys: db.prepare<[string], Key>('SELECT folder, key FROM messages WHERE account = ?'),
    setFileKey: db.prepare<[string, string, string, number]>(
      'UPDATE messages SET file = ?, key = ? WHERE account = ? AND uid = ?',
    ),
    maxUid: db.prepare<[string], { m: number | null }>('SELECT max(uid) AS m FROM messages WHERE account = ?'),
    nextUid: db.prepare<[string], { n: number }>('SELECT next_uid AS n FROM accounts WHERE account = ?'),
    raiseNextUid: db.prepare<{
      account: string;
      next: number;
    }>(`INSERT INTO accounts (account, next_uid) VALUES (@account, @next)
                       ON CONFLICT (account) DO UPDATE SET next_uid = max(next_uid, @next)`),
    uidlMode: db.prepare<[string], { mode: string | null }>('SELECT uidl_mode AS mode FROM accounts WHERE account = ?'),
    setUidlMode: db.prepare<[string, string]>(
      `INSERT INTO accounts (account, next_uid, uidl_mode) VALUES (?, 1, ?)
         ON CONFLICT (account) DO UPDATE SET uidl_mode = excluded.uidl_mode`,
    ),
    servedUidls: db.prepare<[string], { uidl: string }>(
      'SELECT uidl FROM messages WHERE account = ? AND uidl IS NOT NULL',
    ),
    tomb: db.prepare<
      [string, string, string, number, string | null]
    >(`INSERT INTO tombstones (account, folder, key, deleted_at, ident) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT DO UPDATE SET ident = coalesce(ident, excluded.ident)`),
    tombUpstream: db.prepare<[string, string, string, number, UpstreamDelete, string | null]>(
      `INSERT INTO tombstones (account, folder, key, deleted_at, upstream, ident) VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT DO UPDATE SET upstream = coalesce(excluded.upstream, upstream),
                         ident = coalesce(ident, excluded.ident)`,
    ),
    folderTombs: db.prepare<[string, string], { key: string; ident: string | null }>(
      'SELECT key, ident FROM tombstones WHERE account = ? AND folder = ? ORDER BY key',
    ),
    setTombIdent: db.prepare<[string, string, string, string]>(
      'UPDATE tombstones SET ident = ? WHERE account = ? AND folder = ? AND key = ?',
    ),
    rekeyTomb: db.prepare<[string, string, string, string]>(
      'UPDATE OR IGNORE tombstones SET key = ? WHERE account = ? AND folder = ? AND key = ?',
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
    unconfirmed: db.prepare<[string], { key: string }>('SELECT key FROM pop3_unconfirmed WHERE account = ?'),
    addUnconfirmed: db.prepare<[string, string]>('INSERT OR IGNORE INTO pop3_unconfirmed (account, key) VALUES (?, ?)'),
    delUnconfirmed: db.prepare<[string, string]>('DELETE FROM pop3_unconfirmed WHERE account = ? AND key = ?'),
    oversized: db.prepare<[string, string], OversizedRow>(
      'SELECT key, lim AS "limit", received FROM oversized WHERE account = ? AND folder = ?',
    ),
    addOversized: db.prepare<[string, string, string, number, number]>(
      'INSERT OR REPLACE INTO oversized (account, folder, key, lim, received) VALUES (?, ?, ?, ?, ?)',
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
  };
}

/** Prepared statements over state.db. */
export class Ledger {
  private readonly s: ReturnType<typeof prepareStatements>;

  constructor(readonly db: StateDb) {
    this.s = prepareStatements(db);
  }

  /** Run `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Insert one message row. */
  insertMessage(r: MessageRow): void {
    this.s.insert.run({ ...r, eoh: r.eoh ?? null, ident: r.ident ?? null, uidl: r.uidl ?? null });
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

  /** `[uid, wsize, eoh, uidl]` of a folder in UID order, as raw arrays (one native call per row: `folderPacked` is the fast form). */
  folderIndex(account: string, folder: string): Array<[number, number, number | null, string | null]> {
    return this.s.folderIndex.all(account, folder);
  }

  /**
   * A folder's POP3 snapshot packed by SQLite (`folder-snapshot.ts` parses it): count, then
   * comma-separated UIDs and `W=` sizes in UID order, `uid:eoh` of rows whose header end is not
   * known to be there (eoh 0 or unknown), and LF-separated `uid uidl` of rows serving an upstream UIDL.
   */
  folderPacked(
    account: string,
    folder: string,
  ): { count: number; uids: string; wsizes: string; eohs: string; uidls: string } {
    const [count, uids, wsizes, eohs, uidls] = this.s.folderPacked.get(account, folder) ?? [0, null, null, null, null];
    return { count, uids: uids ?? '', wsizes: wsizes ?? '', eohs: eohs ?? '', uidls: uidls ?? '' };
  }

  /**
   * Changes when state.db may have changed: rows written by this connection
   * (`total_changes()`, never decreasing) or a commit by another connection (`data_version`).
   */
  changeStamp(): string {
    return `${this.s.totalChanges.get()?.[0]}:${this.s.dataVersion.get()?.[0]}`;
  }

  /** All rows of an account in UID order. */
  accountMessages(account: string): MessageRow[] {
    return this.s.byAccount.all(account);
  }

  /** Every (folder, key) cached for an account. */
  messageKeys(account: string): { folder: string; key: string }[] {
    return this.s.keys.all(account);
  }

  /** Point a row at a renamed file and/or a new key. */
  setFileKey(account: string, uid: number, file: string, key: string): void {
    this.s.setFileKey.run(file, key, account, uid);
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

  /** The account's recorded UIDL mode (`uidl-mode.ts`); `exists`: the account has a row at all. */
  uidlMode(account: string): { exists: boolean; mode: string | null } {
    const r = this.s.uidlMode.get(account);
    return { exists: r !== undefined, mode: r?.mode ?? null };
  }

  /** Record the account's UIDL mode (creating its row if needed). */
  setUidlMode(account: string, mode: string): void {
    this.s.setUidlMode.run(account, mode);
  }

  /** Every upstream UIDL served by a live row of the account (any folder). */
  servedUidls(account: string): string[] {
    return this.s.servedUidls.all(account).map((r) => r.uidl);
  }

  /** Record that `key` (of content `ident`, when known) was deleted locally (idempotent). */
  addTombstone(account: string, folder: string, key: string, deletedAt: number, ident?: string): void {
    this.s.tomb.run(account, folder, key, deletedAt, ident ?? null);
  }

  /** Tombstone `key`, optionally asking for its upstream deletion ('pending'); keeps an earlier request. */
  addTombstoneUpstream(
    account: string,
    folder: string,
    key: string,
    deletedAt: number,
    upstream: UpstreamDelete,
    ident?: string,
  ): void {
    this.s.tombUpstream.run(account, folder, key, deletedAt, upstream, ident ?? null);
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

  /** POP3 keys RETRed in a session whose QUIT has not succeeded yet. */
  unconfirmedRetrievals(account: string): string[] {
    return this.s.unconfirmed.all(account).map((r) => r.key);
  }

  /** Add (`confirmed` false) or clear (`confirmed` true) unconfirmed POP3 retrievals. */
  setRetrievals(account: string, keys: readonly string[], confirmed: boolean): void {
    const st = confirmed ? this.s.delUnconfirmed : this.s.addUnconfirmed;
    this.transaction(() => {
      for (const k of keys) st.run(account, k);
    });
  }

  /** Messages of a folder abandoned mid-download for sending more than their receive limit. */
  oversized(account: string, folder: string): OversizedRow[] {
    return this.s.oversized.all(account, folder);
  }

  /** Remember a message abandoned mid-download (replacing an earlier, lower limit). */
  addOversized(account: string, folder: string, row: OversizedRow): void {
    this.s.addOversized.run(account, folder, row.key, row.limit, row.received);
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

  /** Remember a live row's content identity (computed from its file once). */
  setMessageIdent(account: string, uid: number, ident: string): void {
    this.s.setIdent.run(ident, account, uid);
  }

  /** The tombstones of a folder with their content identity (null: deleted before identities were kept). */
  folderTombstones(account: string, folder: string): Array<{ key: string; ident: string | null }> {
    return this.s.folderTombs.all(account, folder);
  }

  /** Remember a tombstone's content identity. */
  setTombstoneIdent(account: string, folder: string, key: string, ident: string): void {
    this.s.setTombIdent.run(ident, account, folder, key);
  }

  /** Move a tombstone to the key its message has upstream now (its deletion time and upstream fate stay). */
  rekeyTombstone(account: string, folder: string, oldKey: string, newKey: string): void {
    this.s.rekeyTomb.run(newKey, account, folder, oldKey);
  }
}
