/**
 * `AccountStore` over one account's Maildir and the ledger (the MessageStore contract of
 * `message-store.ts`, invariants 1, 3, 4, 5).
 *
 * Write path: `begin()` allocates the UID in memory and opens `tmp/<uid>.<pid>.<n>`;
 * `finish()` (`pending-write.ts`) ends the stream, fsyncs and closes the file, names it with S=
 * and W= (counted while writing) and renames it into `new/` without a directory fsync;
 * `commit()` fsyncs each touched `new/` once, then ONE transaction inserts the rows, raises the
 * stored next UID and runs the caller's `inTransaction`. `finish()` calls may overlap and complete in any order; commits,
 * rekeys and removals run one at a time. A crash anywhere leaves files that start-up recovery
 * indexes from their names, so a key once renamed into `new/` is never downloaded again.
 *
 * `has()` answers from memory: keys cached or tombstoned (loaded at open, kept up to date here)
 * plus keys begun, finished or pending in the open batch.
 */

import { existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { createExclusive, fsyncDir, renameDurable, writeFileDurable } from '../shared/durable-fs.js';
import { Serial } from '../shared/serial.js';
import type { Ledger, MessageRow } from './ledger.js';
import {
  accountDir,
  ensureFolder,
  fileHasEoh,
  folderDir,
  isValidKey,
  normalizeFolder,
  parseName,
  replaceKey,
  splitInfo,
  tmpName,
  uidl,
} from './maildir.js';
import { type AccountStore, type CachedMessage, type IndexEntry, type PendingMessage, TRASH } from './message-store.js';
import { type PendingOwner, PendingWrite } from './pending-write.js';
import { UID_FLOOR_FILE } from './recovery.js';

/** Dependencies of an AccountStoreImpl. */
export interface AccountStoreDeps {
  accountId: string;
  dataDir: string;
  maildir: string;
  ledger: Ledger;
  log: Logger;
  clock: Clock;
}

interface Finished {
  msg: CachedMessage;
  newDir: string;
}

/** The per-account implementation of `AccountStore`, plus `remove()` and `tombstone()`. */
export class AccountStoreImpl implements AccountStore, PendingOwner {
  readonly accountId: string;
  private nextUid: number;
  private batch: Finished[] = [];
  private readonly cached = new Map<string, Set<string>>();
  private readonly tombs = new Map<string, Set<string>>();
  /** `folder\0key` of messages begun, finished or pending in the batch. */
  private readonly open = new Set<string>();
  private readonly folders = new Map<string, Promise<string>>();
  /** Commits, rekeys, removals and moves to Trash, one at a time. */
  private readonly serial = new Serial();

  constructor(private readonly d: AccountStoreDeps) {
    this.accountId = d.accountId;
    this.nextUid = d.ledger.nextUid(d.accountId);
    for (const { folder, key } of d.ledger.messageKeys(d.accountId)) setOf(this.cached, folder).add(key);
    for (const { folder, key } of d.ledger.tombstones(d.accountId)) setOf(this.tombs, folder).add(key);
  }

  get pendingCount(): number {
    return this.batch.length;
  }

  has(folder: string, key: string): boolean {
    const f = normalizeFolder(folder);
    return this.open.has(`${f}\0${key}`) || !!this.cached.get(f)?.has(key) || !!this.tombs.get(f)?.has(key);
  }

  async begin(folder: string, key: string): Promise<PendingMessage> {
    const f = normalizeFolder(folder);
    if (!isValidKey(key)) throw new Error(`invalid message key ${JSON.stringify(key)}`);
    if (this.has(f, key)) throw new Error(`message ${key} in ${f} is already cached, pending or tombstoned`);
    const fk = `${f}\0${key}`;
    this.open.add(fk);
    const uid = this.nextUid++;
    try {
      const dir = await this.folderReady(f);
      const tmp = path.join(dir, 'tmp', tmpName(uid));
      const fh = await createExclusive(tmp);
      return new PendingWrite(this, this.d.clock, { uid, key, folder: f, dir, tmp, fh });
    } catch (err) {
      this.open.delete(fk);
      throw err;
    }
  }

  commit(inTransaction?: () => void): Promise<CachedMessage[]> {
    return this.serial.run(async () => {
      const batch = this.batch;
      this.batch = [];
      const { ledger, accountId } = this.d;
      try {
        await Promise.all([...new Set(batch.map((b) => b.newDir))].map((dir) => fsyncDir(dir)));
        ledger.transaction(() => {
          for (const { msg } of batch) ledger.insertMessage(toRow(accountId, msg));
          ledger.raiseNextUid(accountId, this.nextUid);
          inTransaction?.();
        });
      } catch (err) {
        this.batch = batch.concat(this.batch);
        throw err;
      }
      for (const { msg } of batch) {
        this.open.delete(`${msg.folder}\0${msg.key}`);
        setOf(this.cached, msg.folder).add(msg.key);
      }
      return batch.map((b) => b.msg);
    });
  }

  list(folder: string): CachedMessage[] {
    const f = normalizeFolder(folder);
    return this.d.ledger.folderMessages(this.accountId, f).map((r) => this.toCached(r));
  }

  rekey(uid: number, newKey: string): Promise<void> {
    return this.serial.run(async () => {
      if (!isValidKey(newKey)) throw new Error(`invalid message key ${JSON.stringify(newKey)}`);
      const row = this.d.ledger.message(this.accountId, uid);
      if (!row) throw new Error(`no cached message with UID ${uidl(uid)}`);
      if (row.key === newKey) return;
      if (this.has(row.folder, newKey)) throw new Error(`key ${newKey} already present in ${row.folder}`);
      const dir = folderDir(this.d.maildir, row.folder);
      const file = (await this.locate(row)) ?? row.file;
      const newFile = `${path.dirname(file)}/${replaceKey(path.basename(file), newKey)}`;
      await renameDurable(path.join(dir, file), path.join(dir, newFile));
      this.d.ledger.setFileKey(this.accountId, uid, newFile, newKey);
      this.cached.get(row.folder)?.delete(row.key);
      setOf(this.cached, row.folder).add(newKey);
    });
  }

  keysWithPrefix(folder: string, prefix: string): Map<string, CachedMessage> {
    const f = normalizeFolder(folder);
    const rows = this.d.ledger.messagesWithKeyPrefix(this.accountId, f, prefix);
    return new Map(rows.map((r) => [r.key, this.toCached(r)]));
  }

  /**
   * Delete cached messages locally (addition to the interface; the POP3 UPDATE state uses it):
   * write the next-UID floor, then ONE transaction deletes the rows and tombstones their keys,
   * then the files are unlinked. Recovery finishes the unlinks after a crash. Returns the count.
   */
  remove(uids: readonly number[]): Promise<number> {
    return this.serial.run(async () => {
      const { ledger, accountId, clock } = this.d;
      const rows = uids.map((u) => ledger.message(accountId, u)).filter((r): r is MessageRow => !!r);
      if (!rows.length) return 0;
      await writeFileDurable(path.join(accountDir(this.d.dataDir, accountId), UID_FLOOR_FILE), `${this.nextUid}\n`);
      const now = clock.now();
      ledger.transaction(() => {
        for (const r of rows) {
          ledger.deleteMessage(accountId, r.uid);
          ledger.addTombstone(accountId, r.folder, r.key, now);
        }
      });
      const dirs = new Set<string>();
      for (const r of rows) {
        this.cached.get(r.folder)?.delete(r.key);
        setOf(this.tombs, r.folder).add(r.key);
        const file = await this.locate(r);
        if (!file) continue;
        const full = path.join(folderDir(this.d.maildir, r.folder), file);
        await rm(full, { force: true });
        dirs.add(path.dirname(full));
      }
      for (const dir of dirs) await fsyncDir(dir);
      return rows.length;
    });
  }

  /**
   * Move cached messages into the local Trash folder (Maildir++ `.Trash/cur/`, flag S added)
   * and tombstone their keys in their old folder, so they are never fetched again; with
   * `deleteUpstream` the tombstones also ask the fetcher to delete the upstream copies.
   * ONE transaction moves the rows and writes the tombstones, then the files are renamed and
   * the directories fsynced. After a crash in between, recovery puts the row back where the
   * file still is (the message reappears once; the tombstone keeps it from being refetched).
   * Messages already in Trash are skipped. Returns how many moved.
   */
  trash(uids: readonly number[], opts: { deleteUpstream: boolean }): Promise<number> {
    return this.serial.run(async () => {
      const { ledger, accountId, clock } = this.d;
      const rows = uids
        .map((u) => ledger.message(accountId, u))
        .filter((r): r is MessageRow => !!r && r.folder !== TRASH);
      if (!rows.length) return 0;
      const trashDir = await this.folderReady(TRASH);
      const moves: Array<{ row: MessageRow; from: string; to: string; file: string; flags: string }> = [];
      for (const row of rows) {
        const file = (await this.locate(row)) ?? row.file;
        const { base, flags } = splitInfo(path.basename(file));
        const newFlags = [...new Set(`${flags}S`)].sort().join('');
        const rel = `cur/${base}:2,${newFlags}`;
        moves.push({
          row,
          from: path.join(folderDir(this.d.maildir, row.folder), file),
          to: path.join(trashDir, rel),
          file: rel,
          flags: newFlags,
        });
      }
      const now = clock.now();
      ledger.transaction(() => {
        for (const m of moves) {
          ledger.moveMessage(accountId, m.row.uid, TRASH, m.file, m.flags);
          ledger.addTombstoneUpstream(accountId, m.row.folder, m.row.key, now, opts.deleteUpstream ? 'pending' : null);
        }
      });
      const dirs = new Set<string>([path.join(trashDir, 'cur')]);
      for (const m of moves) {
        this.cached.get(m.row.folder)?.delete(m.row.key);
        setOf(this.tombs, m.row.folder).add(m.row.key);
        setOf(this.cached, TRASH).add(m.row.key);
        try {
          await rename(m.from, m.to);
          dirs.add(path.dirname(m.from));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          this.d.log.warn(
            { account: accountId, uid: uidl(m.row.uid), file: m.from },
            'message file vanished before it could be moved to Trash',
          );
        }
      }
      for (const dir of dirs) await fsyncDir(dir);
      return moves.length;
    });
  }

  /** Delete for good the Trash messages moved there more than `retentionMs` ago; returns the count. */
  async purgeTrash(retentionMs: number, from = 'INBOX'): Promise<number> {
    const uids = this.d.ledger.trashedBefore(
      this.accountId,
      normalizeFolder(from),
      TRASH,
      this.d.clock.now() - retentionMs,
    );
    return uids.length ? this.remove(uids) : 0;
  }

  pendingUpstreamDeletes(folder: string): string[] {
    return this.d.ledger.pendingUpstreamDeletes(this.accountId, normalizeFolder(folder));
  }

  markUpstreamDeleted(folder: string, keys: readonly string[]): void {
    if (keys.length) this.d.ledger.markUpstreamDeleted(this.accountId, normalizeFolder(folder), keys);
  }

  /**
   * The current absolute path of a cached message: `msg.path` if it is still there, else
   * found by UID in `new/` or `cur/` (another Maildir reader moved it); undefined when gone.
   */
  async messagePath(msg: CachedMessage): Promise<string | undefined> {
    if (existsSync(msg.path)) return msg.path;
    const row = this.d.ledger.message(this.accountId, msg.uid);
    if (!row) return undefined;
    const file = await this.locate(row);
    return file ? path.join(folderDir(this.d.maildir, row.folder), file) : undefined;
  }

  /**
   * The lean index of a folder in UID order (for POP3 snapshots: one raw query, no paths), with
   * `hasEoh` filled in where it was unknown (the header is read once and the answer recorded).
   */
  async index(folder: string): Promise<IndexEntry[]> {
    const rows = this.d.ledger.folderIndex(this.accountId, normalizeFolder(folder));
    const out: IndexEntry[] = rows.map(([uid, wsize, eoh]) =>
      eoh === null ? { uid, wsize } : { uid, wsize, hasEoh: eoh === 1 },
    );
    for (const e of out) {
      if (e.hasEoh !== undefined) continue;
      const m = this.message(e.uid);
      const file = m && (await this.messagePath(m));
      if (!file) continue;
      e.hasEoh = await fileHasEoh(file);
      this.d.ledger.setEoh(this.accountId, e.uid, e.hasEoh ? 1 : 0);
    }
    return out;
  }

  /** One cached message by UID, or undefined. */
  message(uid: number): CachedMessage | undefined {
    const r = this.d.ledger.message(this.accountId, uid);
    return r && this.toCached(r);
  }

  /** Record a tombstone for (folder, key); see `Cache.tombstone`. */
  tombstone(folder: string, key: string): void {
    const f = normalizeFolder(folder);
    this.d.ledger.addTombstone(this.accountId, f, key, this.d.clock.now());
    setOf(this.tombs, f).add(key);
  }

  /** @internal Called by PendingWrite once its file is in `new/`. */
  addFinished(msg: CachedMessage, newDir: string): void {
    this.batch.push({ msg, newDir });
  }

  /** @internal Called by PendingWrite when it is thrown away. */
  release(folder: string, key: string): void {
    this.open.delete(`${folder}\0${key}`);
  }

  private folderReady(folder: string): Promise<string> {
    let p = this.folders.get(folder);
    if (!p) {
      p = ensureFolder(this.d.maildir, folder);
      p.catch(() => this.folders.delete(folder));
      this.folders.set(folder, p);
    }
    return p;
  }

  /** Current relative path of a row's file: the recorded one, or found by UID (a reader moved it). */
  private async locate(row: MessageRow): Promise<string | undefined> {
    const dir = folderDir(this.d.maildir, row.folder);
    if (existsSync(path.join(dir, row.file))) return row.file;
    for (const sub of ['new', 'cur']) {
      const names = await readdir(path.join(dir, sub)).catch(() => [] as string[]);
      const name = names.find((n) => parseName(n)?.uid === row.uid);
      if (name) return `${sub}/${name}`;
    }
    return undefined;
  }

  private toCached(r: MessageRow): CachedMessage {
    return {
      uid: r.uid,
      uidl: uidl(r.uid),
      folder: r.folder,
      path: path.join(folderDir(this.d.maildir, r.folder), r.file),
      size: r.size,
      wsize: r.wsize,
      key: r.key,
      flags: r.flags,
      storedAt: r.storedAt,
      ...(r.eoh === null || r.eoh === undefined ? {} : { hasEoh: r.eoh === 1 }),
    };
  }
}

function setOf(m: Map<string, Set<string>>, folder: string): Set<string> {
  let s = m.get(folder);
  if (!s) {
    s = new Set();
    m.set(folder, s);
  }
  return s;
}

function toRow(account: string, m: CachedMessage): MessageRow {
  return {
    account,
    uid: m.uid,
    folder: m.folder,
    file: `new/${path.basename(m.path)}`,
    size: m.size,
    wsize: m.wsize,
    key: m.key,
    flags: m.flags,
    storedAt: m.storedAt,
    eoh: m.hasEoh === undefined ? null : m.hasEoh ? 1 : 0,
  };
}
