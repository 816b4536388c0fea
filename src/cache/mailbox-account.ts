/**
 * An account's store as the local IMAP view needs it: `AccountStoreImpl` plus change events,
 * MODSEQ/UIDNEXT bookkeeping for messages added by a pull, and the few internals that
 * `mailbox-store.ts`, `change-journal.ts` and `upstream-mirror.ts` build on (the serial queue,
 * UID allocation, the in-memory key sets, folder directories).
 *
 * Invariants:
 * - Events are sent only after the change is durable (after the commit, removal or move to
 *   Trash resolved), in the order the changes were made; a listener that throws is ignored.
 *   A move to Trash (`mailbox-trash.ts`) is announced as expunged in its folder (old UID) and
 *   added in Trash (new UID).
 * - A pull's commit takes ONE new MODSEQ for its whole batch and raises each touched folder's
 *   UIDNEXT and HIGHESTMODSEQ in the same transaction as the rows (a folder first seen gets its
 *   `folders` row there too, with a fresh UIDVALIDITY).
 * - UIDVALIDITY values of an account only grow (unix seconds, or the last one + 1).
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { AccountStoreDeps } from './account-reader.js';
import { AccountStoreImpl } from './account-store.js';
import { keySetOf } from './key-set.js';
import type { MessageRow } from './ledger.js';
import { imapFlags } from './mailbox-flags.js';
import { settleIntent } from './mailbox-intent.js';
import type { ImapRow, MailboxRows } from './mailbox-rows.js';
import { moveToTrash } from './mailbox-trash.js';
import type { JournalChange, MailboxEvent, MailboxInfo, MailboxMessage } from './mailboxes.js';
import { folderDir, isValidKey, parseName, replaceKey } from './maildir.js';
import type { CachedMessage } from './message-store.js';
import { TRASH } from './message-store.js';

/** How the account's local changes reach the upstream. */
export interface MailboxOptions {
  /** `imap`: changes are journaled for the upstream replay; `pop3`: local only. */
  protocol: 'imap' | 'pop3';
  /** For POP3 INBOX expunges: also delete upstream (tombstone `pending`, as `trash()` does). */
  onLocalDelete?: 'keep-upstream' | 'delete-upstream';
}

/** What the parts of the IMAP view (`mailbox-writes.ts`, `mailbox-folders.ts`, `upstream-mirror.ts`) use of `MailboxStoreImpl`. */
export interface MailboxView {
  /** The folder's info, or NoSuchFolderError. */
  existing(name: string): MailboxInfo;
  /** Rows of `folder` with these UIDs, ascending (others ignored). */
  rowsIn(folder: string, uids: readonly number[]): ImapRow[];
  /** True when changes are journaled for the upstream replay. */
  readonly journaled: boolean;
  /** Queue a journal entry when the account is journaled (inside the change's transaction). */
  journal(change: JournalChange): void;
  /** Remove rows of `folder` and their files, durably, with `inTransaction` in their transaction (in the serial queue); `identify`: tombstones with content identities. */
  removeRows(folder: string, rows: readonly ImapRow[], inTransaction: () => void, identify?: boolean): Promise<void>;
}

/** The MailboxMessage of a row. */
export function mailboxMessage(r: ImapRow): MailboxMessage {
  return {
    uid: r.uid,
    size: r.wsize,
    flags: imapFlags(r.flags, r.keywords),
    modseq: r.modseq,
    internalDate: r.internalDate,
  };
}

/** `AccountStoreImpl` with events and what the IMAP view builds on. */
export class MailboxAccountStore extends AccountStoreImpl {
  private readonly listeners = new Set<(e: MailboxEvent) => void>();
  private lastUidValidity = 0;
  /** The MODSEQ the commit under way gave its batch. */
  private commitModseq = 1;
  options?: MailboxOptions;

  constructor(
    d: AccountStoreDeps,
    readonly rows: MailboxRows,
  ) {
    super(d);
  }

  get deps(): AccountStoreDeps {
    return this.d;
  }

  onChange(listener: (e: MailboxEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tell every listener (after the change is durable). */
  emit(e: MailboxEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.d.log.warn({ account: this.accountId, err }, 'a mailbox listener failed');
      }
    }
  }

  /**
   * Run `task` in the account's serial queue (one change at a time, commits included). A task
   * that fails midway has its intent settled at once (`mailbox-intent.ts`: undone before its
   * transaction, finished after), as start-up recovery would, so the next change starts clean.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      try {
        return await task();
      } catch (err) {
        const { dataDir, ledger, maildir, log } = this.d;
        await settleIntent(dataDir, this.accountId, ledger, maildir).catch((e: unknown) =>
          log.error({ account: this.accountId, err: e }, 'cannot settle a failed local IMAP change; start-up will'),
        );
        throw err;
      }
    });
  }

  /** A new local UID (written to state.db by the transaction that uses it: `raiseNextUid`). */
  allocUid(): number {
    return this.nextUid++;
  }

  /** The next UID not yet given out. */
  get uidFloor(): number {
    return this.nextUid;
  }

  /** In-memory key sets after a committed change: `added` cached, `removed` gone, `tombed` tombstoned. */
  noteKeys(folder: string, c: { added?: string[]; removed?: string[]; tombed?: string[] }): void {
    for (const k of c.added ?? []) keySetOf(this.cached, folder).add(k);
    for (const k of c.removed ?? []) this.cached.get(folder)?.delete(k);
    for (const k of c.tombed ?? []) keySetOf(this.tombs, folder).add(k);
  }

  /** Before a folder rename or delete: spare temp files released, directories made again at next use. */
  async forgetFolderDirs(): Promise<void> {
    await this.releaseSpares();
    this.folders.clear();
    this.pools.clear();
  }

  /** After a folder rename or delete: the key sets are read again from state.db at next use. */
  forgetFolderKeys(): void {
    this.keys = undefined;
  }

  /** The folder's directory, created durably when missing. */
  folderDirReady(folder: string): Promise<string> {
    return this.folderReady(folder);
  }

  /** A new UIDVALIDITY: unix seconds, and above every one this account gave out. */
  newUidValidity(): number {
    const v = Math.max(
      Math.floor(this.d.clock.now() / 1000),
      this.rows.maxUidValidity(this.accountId) + 1,
      this.lastUidValidity + 1,
    );
    this.lastUidValidity = v;
    return v;
  }

  /** Add the `folders` row of `folder` unless it exists (UIDNEXT above the rows it holds). */
  ensureFolderRow(folder: string, use?: string): boolean {
    if (this.rows.folder(this.accountId, folder)) return false; // a key lookup: the pull's commits call this
    const st = this.rows.folderStats(this.accountId, folder);
    return this.rows.insertFolder({
      account: this.accountId,
      folder,
      uidValidity: this.newUidValidity(),
      uidNext: (st?.maxUid ?? 0) + 1,
      at: this.d.clock.now(),
      ...(use ? { use } : {}),
    });
  }

  protected override committing(msgs: readonly CachedMessage[]): void {
    if (!msgs.length) return;
    const modseq = this.rows.nextModseq(this.accountId);
    this.commitModseq = modseq;
    const top = new Map<string, number>();
    let low = Number.MAX_SAFE_INTEGER;
    for (const m of msgs) {
      low = Math.min(low, m.uid);
      top.set(m.folder, Math.max(top.get(m.folder) ?? 0, m.uid));
    }
    // one range update: every row of the range with MODSEQ 0 is of this batch (UIDs only grow)
    this.rows.setBatchModseq(this.accountId, low, Math.max(...top.values()), modseq);
    for (const [folder, uid] of top) {
      this.ensureFolderRow(folder);
      this.rows.raiseFolder(this.accountId, folder, uid + 1, modseq);
    }
  }

  override async commit(inTransaction?: () => void): Promise<CachedMessage[]> {
    const msgs = await super.commit(inTransaction);
    const byFolder = new Map<string, MailboxMessage[]>();
    for (const m of msgs) {
      const list = byFolder.get(m.folder) ?? [];
      list.push({
        uid: m.uid,
        size: m.wsize,
        flags: imapFlags(m.flags, ''),
        modseq: this.commitModseq,
        internalDate: m.storedAt,
      });
      byFolder.set(m.folder, list);
    }
    for (const [folder, messages] of byFolder) this.emit({ kind: 'added', folder, messages });
    return msgs;
  }

  override async remove(uids: readonly number[]): Promise<number> {
    const before = this.rowsOf(uids);
    const n = await super.remove(uids, (rows) => this.raiseGone(rows));
    this.announceGone(before);
    return n;
  }

  /** Move messages into the local Trash folder, each under a new UID (`mailbox-trash.ts`); returns how many moved. */
  trash(uids: readonly number[], opts: { deleteUpstream: boolean }): Promise<number> {
    return this.exclusive(async () => {
      const done = await moveToTrash(this, uids, opts);
      for (const [folder, list] of done.expunged) this.emit({ kind: 'expunged', folder, uids: list });
      if (done.added.length) this.emit({ kind: 'added', folder: TRASH, messages: done.added.map(mailboxMessage) });
      return [...done.expunged.values()].reduce((n, l) => n + l.length, 0);
    });
  }

  private rowsOf(uids: readonly number[]): MessageRow[] {
    return uids.map((u) => this.d.ledger.message(this.accountId, u)).filter((r): r is MessageRow => !!r);
  }

  /**
   * In the transaction that deletes the rows: their folders take the next MODSEQ, so HIGHESTMODSEQ
   * moves with the expunge, never after it (a QRESYNC client that sees it unchanged has missed no
   * expunge, even across a crash; src/listeners/imap/qresync.ts).
   */
  private raiseGone(rows: readonly MessageRow[]): void {
    const modseq = this.rows.nextModseq(this.accountId);
    for (const f of new Set(rows.map((r) => r.folder))) this.rows.raiseFolder(this.accountId, f, 0, modseq);
  }

  /** Announce the rows of `before` that are gone (their folders' HIGHESTMODSEQ moved with them). */
  private announceGone(before: MessageRow[]): void {
    const gone = before.filter((r) => !this.d.ledger.message(this.accountId, r.uid));
    const byFolder = new Map<string, number[]>();
    for (const r of gone) byFolder.set(r.folder, [...(byFolder.get(r.folder) ?? []), r.uid]);
    for (const [folder, list] of byFolder) this.emit({ kind: 'expunged', folder, uids: list.sort((a, b) => a - b) });
  }

  /**
   * Give a local message its upstream key (`ChangeJournal.complete`): the file is renamed with
   * the new `K=` (durably) and `inTransaction` receives the row change to make in the caller's
   * transaction; the key sets follow once `after` is called. Synchronous (the journal's API is).
   */
  rekeyLocal(uid: number, key: string): { apply: () => void; after: () => void } | undefined {
    if (!isValidKey(key)) throw new Error(`invalid message key ${JSON.stringify(key)}`);
    const row = this.d.ledger.message(this.accountId, uid);
    if (!row || row.key === key) return undefined;
    if (this.has(row.folder, key)) {
      this.d.log.warn({ account: this.accountId, uid, key }, 'upstream key already cached; local key kept');
      return undefined;
    }
    const dir = folderDir(this.d.maildir, row.folder);
    const file = locateFileSync(dir, row);
    if (!file) return undefined;
    const newFile = `${path.dirname(file)}/${replaceKey(path.basename(file), key)}`;
    renameSync(path.join(dir, file), path.join(dir, newFile));
    fsyncDirSync(path.join(dir, path.dirname(file)));
    return {
      apply: () => this.d.ledger.setFileKey(this.accountId, uid, newFile, key),
      after: () => this.noteKeys(row.folder, { removed: [row.key], added: [key] }),
    };
  }
}

function locateFileSync(dir: string, row: { file: string; uid: number }): string | undefined {
  if (existsSync(path.join(dir, row.file))) return row.file;
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    const name = names.find((n) => parseName(n)?.uid === row.uid);
    if (name) return `${sub}/${name}`;
  }
  return undefined;
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
