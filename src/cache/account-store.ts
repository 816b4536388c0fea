/**
 * `AccountStore` over one account's Maildir and the ledger (the MessageStore contract of
 * `message-store.ts`, invariants 1, 3, 4, 5).
 *
 * Write path: `begin()` allocates the UID in memory and takes an open temp file of `tmp/`
 * (created ahead of need, `tmp-pool.ts`; `releaseSpares()` removes the unused ones);
 * `finish()` (`pending-write.ts`) ends the stream, fsyncs and closes the file, names it with S=
 * and W= (counted while writing) and renames it into `new/` without a directory fsync;
 * `commit()` fsyncs each touched `new/` once, then ONE transaction inserts the rows, raises the
 * stored next UID and runs the caller's `inTransaction`. `finish()` calls may overlap and complete in any order; commits,
 * key adoptions and removals run one at a time. A crash anywhere leaves files that start-up recovery
 * indexes from their names, so a key once renamed into `new/` is never downloaded again.
 *
 * `has()` answers from memory: keys cached or tombstoned (loaded from state.db at the first call,
 * not at open, into compact `KeySet`s, then kept up to date here; state.db is written first, so a
 * load at any moment is current) plus keys begun, finished or pending in the open batch. Likewise the upstream UIDLs served
 * by live rows or taken by messages begun (`uidl-mode.ts`: never two at once), which a re-key
 * never changes.
 */

import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, renameDurable, writeFileDurable } from '../shared/durable-fs.js';
import { Serial } from '../shared/serial.js';
import { AccountReader, type AccountStoreDeps } from './account-reader.js';
import { JournalKeys } from './journal-keys.js';
import { KeyChanges } from './key-changes.js';
import { type AccountKeys, type KeySet, keySetOf, loadAccountKeys } from './key-set.js';
import { identitiesOf, knownMessages } from './known-messages.js';
import type { MessageRow } from './ledger.js';
import { accountDir, ensureFolder, folderDir, isValidKey, locateFile, normalizeFolder, replaceKey } from './maildir.js';
import {
  type AccountStore,
  type BeginOptions,
  type CachedMessage,
  type KeyChange,
  type KnownMessage,
  type OversizedInfo,
  type PendingMessage,
  TRASH,
} from './message-store.js';
import { type PendingOwner, PendingWrite, rowOf } from './pending-write.js';
import { UID_FLOOR_FILE } from './recovery.js';
import { TmpPool } from './tmp-pool.js';
import { isServableUidl } from './uidl-mode.js';

/** Temp files kept open ahead of need per folder: enough for the writes in flight to never wait for an open. */
const SPARE_TMP_FILES = 8;

interface Finished {
  msg: CachedMessage;
  newDir: string;
}

/** The per-account implementation of `AccountStore`, plus `remove()` and `tombstone()`. */
export class AccountStoreImpl extends AccountReader implements AccountStore, PendingOwner {
  protected nextUid: number;
  private batch: Finished[] = [];
  /** Keys cached and tombstoned, by folder, and the served UIDLs: loaded on first use. */
  protected keys?: AccountKeys;
  /** `folder\0key` of messages begun, finished or pending in the batch. */
  private readonly open = new Set<string>();
  protected readonly folders = new Map<string, Promise<string>>();
  protected readonly pools = new Map<string, TmpPool>();
  /** Commits, key adoptions, removals and moves to Trash (`mailbox-trash.ts`), one at a time. */
  protected readonly serial = new Serial();
  private changes?: KeyChanges;

  constructor(d: AccountStoreDeps) {
    super(d);
    this.nextUid = d.ledger.nextUid(d.accountId);
  }

  protected get cached(): Map<string, KeySet> {
    return this.loadKeys().cached;
  }
  protected get tombs(): Map<string, KeySet> {
    return this.loadKeys().tombs;
  }

  /** Upstream UIDLs served by live rows of any folder or taken by messages begun. */
  protected get served(): KeySet {
    return this.loadKeys().served;
  }

  private loadKeys(): AccountKeys {
    this.keys ??= loadAccountKeys(this.d.ledger, this.d.accountId, this.uidlMode);
    return this.keys;
  }

  get pendingCount(): number {
    return this.batch.length;
  }

  /** No write in flight: nothing begun or waiting for a commit, no commit or removal running. */
  get quiescent(): boolean {
    return this.batch.length === 0 && this.open.size === 0 && this.serial.idle;
  }

  has(folder: string, key: string): boolean {
    const f = normalizeFolder(folder);
    return this.open.has(`${f}\0${key}`) || !!this.cached.get(f)?.has(key) || !!this.tombs.get(f)?.has(key);
  }

  async begin(folder: string, key: string, opts: BeginOptions = {}): Promise<PendingMessage> {
    const f = normalizeFolder(folder);
    if (!isValidKey(key)) throw new Error(`invalid message key ${JSON.stringify(key)}`);
    if (this.has(f, key)) throw new Error(`message ${key} in ${f} is already cached, pending or tombstoned`);
    const fk = `${f}\0${key}`;
    this.open.add(fk);
    const uid = this.nextUid++;
    const u = opts.uidl;
    const served = this.d.uidlMode === 'upstream' && u !== undefined && isServableUidl(u) && !this.served.has(u);
    if (served) this.served.add(u);
    try {
      const dir = await this.folderReady(f);
      let pool = this.pools.get(dir);
      if (!pool) {
        pool = new TmpPool(path.join(dir, 'tmp'), SPARE_TMP_FILES);
        this.pools.set(dir, pool);
      }
      const tmp = await pool.take();
      return new PendingWrite(this, this.d.clock, {
        uid,
        key,
        folder: f,
        dir,
        tmp,
        ...(served ? { uidl: u } : {}),
      });
    } catch (err) {
      this.release(f, key, served ? u : undefined);
      throw err;
    }
  }

  async releaseSpares(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.release()));
  }

  commit(inTransaction?: () => void): Promise<CachedMessage[]> {
    return this.serial.run(async () => {
      const batch = this.batch;
      this.batch = [];
      const { ledger, accountId } = this.d;
      try {
        await Promise.all([...new Set(batch.map((b) => b.newDir))].map((dir) => fsyncDir(dir)));
        ledger.transaction(() => {
          for (const { msg } of batch) ledger.insertMessage(rowOf(accountId, msg));
          ledger.raiseNextUid(accountId, this.nextUid);
          this.committing(batch.map((b) => b.msg));
          inTransaction?.();
        });
      } catch (err) {
        this.batch = batch.concat(this.batch);
        throw err;
      }
      for (const { msg } of batch) {
        this.open.delete(`${msg.folder}\0${msg.key}`);
        keySetOf(this.cached, msg.folder).add(msg.key);
      }
      return batch.map((b) => b.msg);
    });
  }

  /** Runs inside a commit's transaction, after its rows are inserted (`mailbox-account.ts`). */
  protected committing(_msgs: readonly CachedMessage[]): void {}

  known(folder: string, keep?: (key: string) => boolean): Promise<KnownMessage[]> {
    const { ledger, accountId, maildir } = this.d;
    return this.serial.run(() => knownMessages(ledger, accountId, maildir, normalizeFolder(folder), keep));
  }

  /**
   * Move records of `folder` to the keys their messages have upstream now (matched by content
   * identity, see known-messages.ts): a live row and its file take the new key; a tombstone moves,
   * and the Trash row of the same key (the deleted message itself) is re-keyed first. Journal
   * entries of the folder not done yet name the new key from the same transaction on
   * (`journal-keys.ts`). Each move is durable on its own; after a crash the rest is matched again
   * at the next pull. Returns the number of records moved.
   */
  adoptKeys(folder: string, moves: ReadonlyArray<{ from: string; to: string }>): Promise<number> {
    return this.serial.run(async () => {
      const f = normalizeFolder(folder);
      const { ledger, accountId } = this.d;
      const live = new Map(ledger.folderMessages(accountId, f).map((r) => [r.key, r]));
      const trashed = new Map(ledger.folderMessages(accountId, TRASH).map((r) => [r.key, r]));
      const journal = new JournalKeys(ledger.db, accountId, { folder: f });
      let moved = 0;
      for (const { from, to } of moves) {
        if (this.has(f, to)) continue;
        const row = live.get(from);
        const follow = () => journal.rename(new Map([[from, to]]));
        if (row) await this.rekeyRow(row, to, follow);
        else if (this.tombs.get(f)?.has(from)) {
          const t = trashed.get(from);
          if (t && !this.has(TRASH, to)) await this.rekeyRow(t, to);
          ledger.transaction(() => {
            ledger.rekeyTombstone(accountId, f, from, to);
            follow();
          });
          this.tombs.get(f)?.delete(from);
          keySetOf(this.tombs, f).add(to);
        } else continue;
        moved++;
      }
      return moved;
    });
  }

  unfinishedKeyChange(folder: string): KeyChange | undefined {
    return this.keyChanges().unfinished(this.accountId, normalizeFolder(folder));
  }

  noteKeyChange(change: KeyChange): void {
    this.keyChanges().note(this.accountId, { ...change, folder: normalizeFolder(change.folder) });
  }

  private keyChanges(): KeyChanges {
    this.changes ??= new KeyChanges(this.d.ledger.db);
    return this.changes;
  }

  private async rekeyRow(row: MessageRow, newKey: string, inTransaction?: () => void): Promise<void> {
    if (!isValidKey(newKey)) throw new Error(`invalid message key ${JSON.stringify(newKey)}`);
    if (row.key === newKey) return;
    if (this.has(row.folder, newKey)) throw new Error(`key ${newKey} already present in ${row.folder}`);
    const dir = folderDir(this.d.maildir, row.folder);
    const file = (await locateFile(this.d.maildir, row)) ?? row.file;
    const newFile = `${path.dirname(file)}/${replaceKey(path.basename(file), newKey)}`;
    await renameDurable(path.join(dir, file), path.join(dir, newFile));
    this.d.ledger.transaction(() => {
      this.d.ledger.setFileKey(this.accountId, row.uid, newFile, newKey);
      inTransaction?.();
    });
    this.cached.get(row.folder)?.delete(row.key);
    keySetOf(this.cached, row.folder).add(newKey);
  }

  /**
   * Delete cached messages locally (addition to the interface; the POP3 UPDATE state uses it):
   * write the next-UID floor, then ONE transaction deletes the rows and tombstones their keys,
   * then the files are unlinked. Recovery finishes the unlinks after a crash. Returns the count.
   * `inTransaction` runs inside that transaction with the rows deleted (the IMAP view's MODSEQ).
   */
  remove(uids: readonly number[], inTransaction?: (rows: readonly MessageRow[]) => void): Promise<number> {
    return this.serial.run(async () => {
      const { ledger, accountId, clock } = this.d;
      const rows = uids.map((u) => ledger.message(accountId, u)).filter((r): r is MessageRow => !!r);
      if (!rows.length) return 0;
      await writeFileDurable(path.join(accountDir(this.d.dataDir, accountId), UID_FLOOR_FILE), `${this.nextUid}\n`);
      const idents = await identitiesOf(this.d.maildir, rows);
      const now = clock.now();
      ledger.transaction(() => {
        for (const [i, r] of rows.entries()) {
          ledger.deleteMessage(accountId, r.uid);
          ledger.addTombstone(accountId, r.folder, r.key, now, idents[i]);
        }
        inTransaction?.(rows);
      });
      for (const r of rows) if (r.uidl) this.served.delete(r.uidl);
      const dirs = new Set<string>();
      for (const r of rows) {
        this.cached.get(r.folder)?.delete(r.key);
        keySetOf(this.tombs, r.folder).add(r.key);
        const file = await locateFile(this.d.maildir, r);
        if (!file) continue;
        const full = path.join(folderDir(this.d.maildir, r.folder), file);
        await rm(full, { force: true });
        dirs.add(path.dirname(full));
      }
      for (const dir of dirs) await fsyncDir(dir);
      return rows.length;
    });
  }

  /** Delete for good the Trash messages moved there more than `retentionMs` ago; returns the count. */
  async purgeTrash(retentionMs: number, from = 'INBOX'): Promise<number> {
    const cutoff = this.d.clock.now() - retentionMs;
    const uids = this.d.ledger.trashedBefore(this.accountId, normalizeFolder(from), TRASH, cutoff);
    return uids.length ? this.remove(uids) : 0;
  }

  pendingUpstreamDeletes(folder: string): string[] {
    return this.d.ledger.pendingUpstreamDeletes(this.accountId, normalizeFolder(folder));
  }

  markUpstreamDeleted(folder: string, keys: readonly string[]): void {
    if (keys.length) this.d.ledger.markUpstreamDeleted(this.accountId, normalizeFolder(folder), keys);
  }

  unconfirmedRetrievals(): Set<string> {
    return new Set(this.d.ledger.unconfirmedRetrievals(this.accountId));
  }

  noteRetrievals(keys: readonly string[], confirmed: boolean): void {
    if (keys.length) this.d.ledger.setRetrievals(this.accountId, keys, confirmed);
  }

  oversized(folder: string): Map<string, OversizedInfo> {
    const rows = this.d.ledger.oversized(this.accountId, normalizeFolder(folder));
    return new Map(rows.map((r) => [r.key, { limit: r.limit, received: r.received }]));
  }

  noteOversized(folder: string, key: string, info: OversizedInfo): void {
    this.d.ledger.addOversized(this.accountId, normalizeFolder(folder), { key, ...info });
  }

  /** Record a tombstone for (folder, key); see `Cache.tombstone`. */
  tombstone(folder: string, key: string): void {
    const f = normalizeFolder(folder);
    this.d.ledger.addTombstone(this.accountId, f, key, this.d.clock.now());
    keySetOf(this.tombs, f).add(key);
  }

  /** @internal Called by PendingWrite once its file is in `new/`. */
  addFinished(msg: CachedMessage, newDir: string): void {
    this.batch.push({ msg, newDir });
  }

  /** @internal Called by PendingWrite when it is thrown away. */
  release(folder: string, key: string, servedUidl?: string): void {
    this.open.delete(`${folder}\0${key}`);
    if (servedUidl !== undefined) this.served.delete(servedUidl);
  }

  protected folderReady(folder: string): Promise<string> {
    let p = this.folders.get(folder);
    if (!p) {
      p = ensureFolder(this.d.maildir, folder);
      p.catch(() => this.folders.delete(folder));
      this.folders.set(folder, p);
    }
    return p;
  }
}
