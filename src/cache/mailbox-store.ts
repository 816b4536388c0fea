/**
 * `MailboxStore` (mailboxes.ts) of one account: what the local IMAP server sees and changes,
 * built on the account store's write path (docs/imap-server.md). Reads come from state.db;
 * message changes are here, folder changes in `mailbox-folders.ts`, file-creating changes
 * (copy, move, append) in `mailbox-writes.ts`.
 *
 * Invariants:
 * - Every change runs in the account's serial queue (with the pull's commits and the POP3
 *   removals), is durable before its promise resolves, and writes its rows, its MODSEQ and,
 *   for an IMAP account, its journal entry in ONE transaction; it is announced after that.
 * - A change that touches files first records its intent (`mailbox-intent.ts`), so a crash
 *   leaves the account as before or as after it.
 * - Flag changes never rename files (readers keep their paths); state.db is the truth for flags.
 * - Every folder has a `folders` row once this store exists: INBOX, each folder with rows, and
 *   for a POP3 account Sent, Drafts and Trash (special use).
 * - A hidden row (`shown = 0`: an upstream folder outside the IMAP account's pulled set,
 *   upstream-mirror.ts) is no folder to a client: not listed, not selectable; its mail is kept.
 */
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurable } from '../shared/durable-fs.js';
import { addJournalEntry } from './change-journal.js';
import { identitiesOf } from './known-messages.js';
import { type MailboxAccountStore, type MailboxView, mailboxMessage } from './mailbox-account.js';
import { applyFlagChange, imapFlags, sameFlags } from './mailbox-flags.js';
import { FolderOps } from './mailbox-folders.js';
import { clearIntent, removePaths, writeIntent } from './mailbox-intent.js';
import type { FolderRow, FolderStats, ImapRow } from './mailbox-rows.js';
import { MailboxWrites } from './mailbox-writes.js';
import {
  type FlagChange,
  type FlagResult,
  IMAP_DELIMITER,
  type JournalChange,
  type MailboxEvent,
  type MailboxInfo,
  type MailboxMessage,
  type MailboxSnapshot,
  type MailboxStore,
  NoSuchFolderError,
  type SpecialUse,
  type UidPair,
} from './mailboxes.js';
import { accountDir, decodeFolder, folderDir, isLocalKey, locateFile, normalizeFolder } from './maildir.js';
import { INBOX, SENT } from './message-store.js';
import { UID_FLOOR_FILE } from './recovery.js';

/** Local folders of a POP3 account besides INBOX, with their special use. */
const POP3_FOLDERS: ReadonlyArray<[string, string]> = [
  [SENT, 'Sent'],
  ['Drafts', 'Drafts'],
  ['Trash', 'Trash'],
];

/** INBOX first, then by name. */
const byName = (a: MailboxInfo, b: MailboxInfo): number =>
  a.name === INBOX ? -1 : b.name === INBOX ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** The MailboxStore of one account. */
export class MailboxStoreImpl implements MailboxStore, MailboxView {
  readonly accountId: string;
  private readonly folderOps: FolderOps;
  private readonly writes: MailboxWrites;

  constructor(readonly s: MailboxAccountStore) {
    this.accountId = s.accountId;
    this.folderOps = new FolderOps(s, this);
    this.writes = new MailboxWrites(s, this);
    this.ensureRows();
  }

  /** True when changes are journaled for the upstream replay. */
  get journaled(): boolean {
    return this.s.options?.protocol === 'imap';
  }

  /** Folder rows for INBOX, every folder with rows or a Maildir++ directory with messages, POP3's local ones. */
  private ensureRows(): void {
    const { ledger, maildir } = this.s.deps;
    ledger.transaction(() => {
      this.s.ensureFolderRow(INBOX);
      for (const f of this.s.rows.usedFolders(this.accountId)) this.s.ensureFolderRow(f);
      let dirs: string[] = [];
      try {
        dirs = readdirSync(maildir).filter((n) => n.startsWith('.'));
      } catch {}
      for (const d of dirs) {
        const f = decodeFolder(d);
        const has = (sub: string) => {
          try {
            return readdirSync(path.join(maildir, d, sub)).length > 0;
          } catch {
            return false;
          }
        };
        if (f && (has('new') || has('cur'))) this.s.ensureFolderRow(f);
      }
      if (this.s.options?.protocol === 'pop3') {
        for (const [f, use] of POP3_FOLDERS) {
          this.s.ensureFolderRow(f, use);
          if (!this.s.rows.folder(this.accountId, f)?.specialUse) this.s.rows.setSpecialUse(this.accountId, f, use);
        }
      }
    });
  }

  private info(row: FolderRow, st: FolderStats | undefined): MailboxInfo {
    return {
      name: row.folder,
      ...(row.specialUse ? { specialUse: `\\${row.specialUse}` as SpecialUse } : {}),
      uidValidity: row.uidValidity,
      uidNext: Math.max(row.uidNext, (st?.maxUid ?? 0) + 1),
      highestModseq: Math.max(row.highestModseq, st?.maxModseq ?? 1),
      messages: st?.count ?? 0,
      unseen: st?.unseen ?? 0,
      subscribed: row.subscribed !== 0,
      selectable: true,
    };
  }

  folders(): MailboxInfo[] {
    const stats = new Map(this.s.rows.stats(this.accountId).map((st) => [st.folder, st]));
    const out = this.s.rows
      .folders(this.accountId)
      .filter((r) => r.shown)
      .map((r) => this.info(r, stats.get(r.folder)));
    const names = new Set(out.map((i) => i.name));
    for (const i of [...out]) {
      const parts = i.name.split(IMAP_DELIMITER);
      for (let n = 1; n < parts.length; n++) {
        const parent = parts.slice(0, n).join(IMAP_DELIMITER);
        if (names.has(parent)) continue;
        names.add(parent);
        out.push({
          name: parent,
          uidValidity: 1,
          uidNext: 1,
          highestModseq: 1,
          messages: 0,
          unseen: 0,
          subscribed: false,
          selectable: false,
        });
      }
    }
    return out.sort(byName);
  }

  folder(name: string): MailboxInfo | undefined {
    if (name === '' || name.includes('\0')) return undefined; // no folder has such a name (normalizeFolder throws)
    const f = normalizeFolder(name);
    const row = this.s.rows.folder(this.accountId, f);
    return row?.shown ? this.info(row, this.s.rows.folderStats(this.accountId, f)) : undefined;
  }

  /** The folder's info, or NoSuchFolderError. */
  existing(name: string): MailboxInfo {
    const i = this.folder(name);
    if (!i) throw new NoSuchFolderError(name);
    return i;
  }

  /**
   * One pass over lean rows: the folder's counts come from the same rows, and messages with the
   * same flags share one (read-only) flag list (100,000 messages: a few distinct lists).
   */
  select(name: string): MailboxSnapshot {
    if (name === '' || name.includes('\0')) throw new NoSuchFolderError(name);
    const f = normalizeFolder(name);
    const row = this.s.rows.folder(this.accountId, f);
    if (!row?.shown) throw new NoSuchFolderError(name);
    const shared = new Map<string, readonly string[]>();
    let unseen = 0;
    let maxModseq = 1;
    const messages = this.s.rows.selectRows(this.accountId, f).map(([uid, size, letters, keywords, modseq, date]) => {
      const k = `${letters}\0${keywords}`;
      let flags = shared.get(k);
      if (!flags) {
        flags = imapFlags(letters, keywords);
        shared.set(k, flags);
      }
      if (!letters.includes('S')) unseen++;
      if (modseq > maxModseq) maxModseq = modseq;
      return { uid, size, flags, modseq, internalDate: date };
    });
    const count = messages.length;
    const stats = count ? { folder: f, count, unseen, maxUid: messages[count - 1]?.uid ?? 0, maxModseq } : undefined;
    return { info: this.info(row, stats), messages };
  }

  async read(folder: string, uid: number): Promise<Buffer> {
    const f = normalizeFolder(folder);
    const row = this.s.deps.ledger.message(this.accountId, uid);
    if (!row || row.folder !== f) throw new Error(`message ${uid} is not in ${f}`);
    const file = await locateFile(this.s.deps.maildir, row);
    if (!file) throw new Error(`message ${uid} of ${f} is gone`);
    return readFile(path.join(folderDir(this.s.deps.maildir, f), file));
  }

  /** Rows of `folder` with these UIDs, ascending (others ignored). */
  rowsIn(folder: string, uids: readonly number[]): ImapRow[] {
    const out: ImapRow[] = [];
    for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
      const r = this.s.rows.message(this.accountId, uid);
      if (r && r.folder === folder) out.push(r);
    }
    return out;
  }

  /** Queue a journal entry when the account is journaled (inside the change's transaction). */
  journal(change: JournalChange): void {
    if (this.journaled) addJournalEntry(this.s.deps.ledger.db, this.accountId, change, this.s.deps.clock.now());
  }

  setFlags(folder: string, uids: readonly number[], change: FlagChange): Promise<FlagResult> {
    const f = normalizeFolder(folder);
    return this.s.exclusive(async () => {
      this.existing(f);
      const { ledger } = this.s.deps;
      const changed: MailboxMessage[] = [];
      const modified: number[] = [];
      const applied: ImapRow[] = [];
      ledger.transaction(() => {
        let modseq = 0;
        for (const r of this.rowsIn(f, uids)) {
          if (change.unchangedSince !== undefined && r.modseq > change.unchangedSince) {
            modified.push(r.uid);
            continue;
          }
          applied.push(r);
          const cur = { letters: r.flags, keywords: r.keywords };
          const next = applyFlagChange(cur, change);
          if (sameFlags(cur, next)) continue;
          modseq ||= this.s.rows.nextModseq(this.accountId);
          this.s.rows.setFlags(this.accountId, r.uid, next.letters, next.keywords, modseq);
          changed.push(mailboxMessage({ ...r, flags: next.letters, keywords: next.keywords, modseq }));
        }
        if (!modseq) return;
        this.s.rows.raiseFolder(this.accountId, f, 0, modseq);
        const done = { uids: applied.map((r) => r.uid), keys: applied.map((r) => r.key) };
        this.journal({ kind: 'flags', folder: f, op: change.op, flags: [...change.flags], ...done });
      });
      if (changed.length) this.s.emit({ kind: 'flags', folder: f, messages: changed });
      return { changed, modified };
    });
  }

  expunge(folder: string, uids: readonly number[]): Promise<number[]> {
    const f = normalizeFolder(folder);
    return this.s.exclusive(async () => {
      this.existing(f);
      const rows = this.rowsIn(f, uids);
      if (!rows.length) return [];
      await this.removeRows(
        f,
        rows,
        () => this.journal({ kind: 'expunge', folder: f, uids: rows.map((r) => r.uid), keys: rows.map((r) => r.key) }),
        this.journaled,
      );
      this.s.emit({ kind: 'expunged', folder: f, uids: rows.map((r) => r.uid) });
      return rows.map((r) => r.uid);
    });
  }

  /**
   * Remove rows of `folder` and their files (in the serial queue): intent, UID floor, ONE
   * transaction (rows deleted, upstream keys tombstoned, MODSEQ, `inTransaction`), unlinks.
   * `identify`: the tombstones carry the content identity, so that a queued expunge can follow
   * its messages through a UIDVALIDITY re-key (known-messages.ts, journal-keys.ts).
   */
  async removeRows(
    folder: string,
    rows: readonly ImapRow[],
    inTransaction: () => void,
    identify = false,
  ): Promise<void> {
    const { ledger, maildir, dataDir, clock } = this.s.deps;
    const enc = path.relative(maildir, folderDir(maildir, folder));
    const obsolete: string[] = [];
    const located: Array<string | undefined> = [];
    for (const r of rows) {
      const file = await locateFile(maildir, r);
      located.push(file);
      if (file) obsolete.push(path.join(enc, file));
    }
    const upstreamKeyed = (r: ImapRow) => !isLocalKey(r.key);
    const idents = identify
      ? await identitiesOf(
          maildir,
          rows.filter(upstreamKeyed),
          located.filter((_, i) => upstreamKeyed(rows[i] as ImapRow)),
        )
      : [];
    await writeIntent(dataDir, this.accountId, { check: { gone: rows.map((r) => r.uid) }, obsolete });
    await writeFileDurable(path.join(accountDir(dataDir, this.accountId), UID_FLOOR_FILE), `${this.s.uidFloor}\n`);
    const upstream = this.upstreamOnDelete(folder);
    const tombed = rows.filter(upstreamKeyed).map((r) => r.key);
    const now = clock.now();
    ledger.transaction(() => {
      for (const r of rows) ledger.deleteMessage(this.accountId, r.uid);
      for (const [i, k] of tombed.entries())
        ledger.addTombstoneUpstream(this.accountId, folder, k, now, upstream, idents[i]);
      this.s.rows.raiseFolder(this.accountId, folder, 0, this.s.rows.nextModseq(this.accountId));
      inTransaction();
    });
    this.s.noteKeys(folder, { removed: rows.map((r) => r.key), tombed });
    await removePaths(maildir, obsolete);
    await clearIntent(dataDir, this.accountId);
  }

  /** POP3 INBOX deletions honour onLocalDelete; elsewhere the journal (or nothing) carries them. */
  private upstreamOnDelete(folder: string): 'pending' | null {
    const o = this.s.options;
    return o?.protocol === 'pop3' && folder === INBOX && o.onLocalDelete === 'delete-upstream' ? 'pending' : null;
  }

  copy(from: string, uids: readonly number[], to: string): Promise<UidPair[]> {
    return this.writes.copy(from, uids, to, false);
  }

  move(from: string, uids: readonly number[], to: string): Promise<UidPair[]> {
    return this.writes.copy(from, uids, to, true);
  }

  append(
    folder: string,
    bytes: Buffer,
    opts?: { flags?: readonly string[]; internalDate?: number },
  ): Promise<{ uid: number; uidValidity: number }> {
    return this.writes.append(folder, bytes, opts ?? {});
  }

  createFolder(name: string): Promise<void> {
    return this.folderOps.create(name);
  }

  renameFolder(from: string, to: string): Promise<void> {
    return this.folderOps.rename(from, to);
  }

  deleteFolder(name: string): Promise<void> {
    return this.folderOps.delete(name);
  }

  subscribe(name: string, subscribed: boolean): Promise<void> {
    return this.folderOps.subscribe(name, subscribed);
  }

  onChange(listener: (event: MailboxEvent) => void): () => void {
    return this.s.onChange(listener);
  }
}
