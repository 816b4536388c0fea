/**
 * The state.db statements of the local IMAP view (migrations 9 and 10, docs/imap-server.md): the
 * `folders` table, the account's MODSEQ counter, and the IMAP columns of `messages` (keywords,
 * modseq, internal_date). Prepared once per database; nothing here touches files (callers write
 * rows only after the files they describe are durable, as `ledger.ts` does).
 *
 * Invariants: `uid_next` and `highest_modseq` only grow (`raiseFolder` takes the max); a MODSEQ
 * handed out by `nextModseq` is never handed out again (the counter is in the same transaction
 * as the change that uses it).
 */
import type { StateDb } from './state-db.js';

/** What SELECT reads of a row: uid, wsize, flag letters, keywords, MODSEQ, INTERNALDATE. */
export type SelectRow = [number, number, string, string, number, number];

/** A `folders` row. */
export interface FolderRow {
  folder: string;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  specialUse: string | null;
  subscribed: number;
  /** 1: created or renamed through the local IMAP server (always in the account's folder set). */
  local: number;
  /** 0: an upstream folder outside the pulled set: not shown, its cached mail kept. */
  shown: number;
}

/** Per folder: messages, unseen, highest UID and MODSEQ of its rows. */
export interface FolderStats {
  folder: string;
  count: number;
  unseen: number;
  maxUid: number;
  maxModseq: number;
}

/** What an IMAP session needs of a row. */
export interface ImapRow {
  uid: number;
  folder: string;
  file: string;
  key: string;
  wsize: number;
  flags: string;
  keywords: string;
  modseq: number;
  internalDate: number;
}

const FOLDER_COLS = `folder, uidvalidity AS uidValidity, uid_next AS uidNext, highest_modseq AS highestModseq,
  special_use AS specialUse, subscribed, local, shown`;
const IMAP_COLS = `uid, folder, file, key, wsize, flags, keywords, max(modseq, 1) AS modseq,
  coalesce(internal_date, stored_at) AS internalDate`;
const STATS = `SELECT folder, count(*) AS count, sum(instr(flags, 'S') = 0) AS unseen, max(uid) AS maxUid,
  max(max(modseq, 1)) AS maxModseq FROM messages WHERE account = ?`;
/** `folder` is `@from` or below it. */
const UNDER = `(folder = @from OR substr(folder, 1, length(@from) + 1) = @from || '/')`;
const MOVED = `@to || substr(folder, length(@from) + 1)`;

function prepare(db: StateDb) {
  return {
    folders: db.prepare<[string], FolderRow>(`SELECT ${FOLDER_COLS} FROM folders WHERE account = ? ORDER BY folder`),
    folder: db.prepare<[string, string], FolderRow>(
      `SELECT ${FOLDER_COLS} FROM folders WHERE account = ? AND folder = ?`,
    ),
    insertFolder: db.prepare<[string, string, number, number, string | null, number]>(
      `INSERT OR IGNORE INTO folders (account, folder, uidvalidity, uid_next, special_use, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    deleteFolder: db.prepare<[string, string]>('DELETE FROM folders WHERE account = ? AND folder = ?'),
    raiseFolder: db.prepare<[number, number, string, string]>(
      `UPDATE folders SET uid_next = max(uid_next, ?), highest_modseq = max(highest_modseq, ?)
       WHERE account = ? AND folder = ?`,
    ),
    subscribe: db.prepare<[number, string, string]>(
      'UPDATE folders SET subscribed = ? WHERE account = ? AND folder = ?',
    ),
    setShown: db.prepare<[number, string, string]>('UPDATE folders SET shown = ? WHERE account = ? AND folder = ?'),
    markLocal: db.prepare<[string, string]>('UPDATE folders SET local = 1, shown = 1 WHERE account = ? AND folder = ?'),
    localFolders: db.prepare<[string], { folder: string }>(
      'SELECT folder FROM folders WHERE account = ? AND local = 1 ORDER BY folder',
    ),
    specialUse: db.prepare<[string | null, string, string]>(
      'UPDATE folders SET special_use = ? WHERE account = ? AND folder = ?',
    ),
    maxUidValidity: db.prepare<[string], { m: number | null }>(
      'SELECT max(uidvalidity) AS m FROM folders WHERE account = ?',
    ),
    stats: db.prepare<[string], FolderStats>(`${STATS} GROUP BY folder`),
    folderStats: db.prepare<[string, string], FolderStats>(`${STATS} AND folder = ?`),
    messages: db.prepare<[string, string], ImapRow>(
      `SELECT ${IMAP_COLS} FROM messages WHERE account = ? AND folder = ? ORDER BY uid`,
    ),
    message: db.prepare<[string, number], ImapRow>(`SELECT ${IMAP_COLS} FROM messages WHERE account = ? AND uid = ?`),
    // SELECT of a huge folder: arrays, not objects, and only what a session keeps
    selectRows: db
      .prepare<[string, string], SelectRow>(
        `SELECT uid, wsize, flags, keywords, max(modseq, 1), coalesce(internal_date, stored_at)
           FROM messages WHERE account = ? AND folder = ? ORDER BY uid`,
      )
      .raw(true),
    nextModseq: db.prepare<[string], { m: number }>(
      `INSERT INTO accounts (account, next_uid, modseq) VALUES (?, 1, 2)
       ON CONFLICT (account) DO UPDATE SET modseq = modseq + 1 RETURNING modseq AS m`,
    ),
    setFlags: db.prepare<[string, string, number, string, number]>(
      'UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE account = ? AND uid = ?',
    ),
    setBatchModseq: db.prepare<[number, string, number, number]>(
      'UPDATE messages SET modseq = ? WHERE account = ? AND uid BETWEEN ? AND ? AND modseq = 0',
    ),
    setImap: db.prepare<[string, number, number | null, string, number]>(
      'UPDATE messages SET keywords = ?, modseq = ?, internal_date = ? WHERE account = ? AND uid = ?',
    ),
    renameMessages: db.prepare<{ account: string; from: string; to: string }>(
      `UPDATE messages SET folder = ${MOVED} WHERE account = @account AND ${UNDER}`,
    ),
    renameFolders: db.prepare<{ account: string; from: string; to: string }>(
      `UPDATE folders SET folder = ${MOVED} WHERE account = @account AND ${UNDER}`,
    ),
    renameTombs: db.prepare<{ account: string; from: string; to: string }>(
      `UPDATE OR IGNORE tombstones SET folder = ${MOVED} WHERE account = @account AND ${UNDER}`,
    ),
    usedFolders: db.prepare<[string], { folder: string }>('SELECT DISTINCT folder FROM messages WHERE account = ?'),
  };
}

/** The IMAP view's statements over state.db. */
export class MailboxRows {
  private readonly s: ReturnType<typeof prepare>;

  constructor(readonly db: StateDb) {
    this.s = prepare(db);
  }

  folders(account: string): FolderRow[] {
    return this.s.folders.all(account);
  }

  folder(account: string, folder: string): FolderRow | undefined {
    return this.s.folder.get(account, folder);
  }

  /** Add a folder row unless it exists; returns true when added. */
  insertFolder(f: {
    account: string;
    folder: string;
    uidValidity: number;
    uidNext: number;
    at: number;
    use?: string;
  }): boolean {
    return this.s.insertFolder.run(f.account, f.folder, f.uidValidity, f.uidNext, f.use ?? null, f.at).changes > 0;
  }

  deleteFolder(account: string, folder: string): void {
    this.s.deleteFolder.run(account, folder);
  }

  /** Raise a folder's UIDNEXT and HIGHESTMODSEQ to at least these values. */
  raiseFolder(account: string, folder: string, uidNext: number, modseq: number): void {
    this.s.raiseFolder.run(uidNext, modseq, account, folder);
  }

  subscribe(account: string, folder: string, on: boolean): void {
    this.s.subscribe.run(on ? 1 : 0, account, folder);
  }

  /** Show or hide an upstream folder (it enters or leaves the pulled set). */
  setShown(account: string, folder: string, shown: boolean): void {
    this.s.setShown.run(shown ? 1 : 0, account, folder);
  }

  /** A folder created or renamed through the local IMAP server: shown and pulled from now on. */
  markLocal(account: string, folder: string): void {
    this.s.markLocal.run(account, folder);
  }

  /** Folders created or renamed through the local IMAP server. */
  localFolders(account: string): string[] {
    return this.s.localFolders.all(account).map((r) => r.folder);
  }

  setSpecialUse(account: string, folder: string, use: string | null): void {
    this.s.specialUse.run(use, account, folder);
  }

  maxUidValidity(account: string): number {
    return this.s.maxUidValidity.get(account)?.m ?? 0;
  }

  /** Stats of every folder with rows. */
  stats(account: string): FolderStats[] {
    return this.s.stats.all(account);
  }

  folderStats(account: string, folder: string): FolderStats | undefined {
    const r = this.s.folderStats.get(account, folder);
    return r && r.count > 0 ? r : undefined;
  }

  messages(account: string, folder: string): ImapRow[] {
    return this.s.messages.all(account, folder);
  }

  /** The rows SELECT needs, as arrays, in UID order. */
  selectRows(account: string, folder: string): SelectRow[] {
    return this.s.selectRows.all(account, folder);
  }

  message(account: string, uid: number): ImapRow | undefined {
    return this.s.message.get(account, uid);
  }

  /** The account's next MODSEQ (call inside the transaction that uses it). */
  nextModseq(account: string): number {
    const r = this.s.nextModseq.get(account);
    if (!r) throw new Error(`no MODSEQ for ${account}`);
    return r.m;
  }

  setFlags(account: string, uid: number, letters: string, keywords: string, modseq: number): void {
    this.s.setFlags.run(letters, keywords, modseq, account, uid);
  }

  /** MODSEQ of the rows a commit just inserted (UIDs `low`..`high`, MODSEQ still 0). */
  setBatchModseq(account: string, low: number, high: number, modseq: number): void {
    this.s.setBatchModseq.run(modseq, account, low, high);
  }

  /** Keywords, MODSEQ and INTERNALDATE of a row just inserted. */
  setImap(account: string, uid: number, keywords: string, modseq: number, internalDate: number | null): void {
    this.s.setImap.run(keywords, modseq, internalDate, account, uid);
  }

  /** Move rows, folder rows and tombstones of `from` and its children under `to`. */
  renameFolder(account: string, from: string, to: string): void {
    const p = { account, from, to };
    this.s.renameMessages.run(p);
    this.s.renameFolders.run(p);
    this.s.renameTombs.run(p);
  }

  /** Folders that hold at least one row. */
  usedFolders(account: string): string[] {
    return this.s.usedFolders.all(account).map((r) => r.folder);
  }
}
