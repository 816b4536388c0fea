/**
 * The read side of an account's cache (`AccountStoreImpl` adds the writes): messages by folder,
 * UID or key prefix, the lean POP3 index, and the current path of a file another Maildir reader
 * may have moved. Reads only committed rows (the cache's visibility rule).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { FolderSnapshot } from './folder-snapshot.js';
import type { Ledger, MessageRow } from './ledger.js';
import { fileHasEoh, folderDir, locateFile, normalizeFolder, uidl } from './maildir.js';
import type { CachedMessage, IndexEntry } from './message-store.js';
import type { UidlMode } from './uidl-mode.js';

/** Dependencies of an account's store. */
export interface AccountStoreDeps {
  accountId: string;
  dataDir: string;
  maildir: string;
  ledger: Ledger;
  log: Logger;
  clock: Clock;
  /** Which UIDLs new messages serve (`uidl-mode.ts`); default `local`. */
  uidlMode?: UidlMode;
}

/** Reads of one account's cache. */
export class AccountReader {
  readonly accountId: string;
  /** The last snapshot built and the state.db stamp it was read at. */
  private lastSnapshot?: { folder: string; stamp: string; snap: FolderSnapshot };

  constructor(protected readonly d: AccountStoreDeps) {
    this.accountId = d.accountId;
  }

  /** Which UIDLs new messages serve (fixed when the account's cache was created). */
  get uidlMode(): UidlMode {
    return this.d.uidlMode ?? 'local';
  }

  list(folder: string): CachedMessage[] {
    const f = normalizeFolder(folder);
    return this.d.ledger.folderMessages(this.accountId, f).map((r) => this.toCached(r));
  }

  /**
   * The current absolute path of a cached message: `msg.path` if it is still there, else
   * found by UID in `new/` or `cur/` (another Maildir reader moved it); undefined when gone.
   */
  async messagePath(msg: CachedMessage): Promise<string | undefined> {
    if (existsSync(msg.path)) return msg.path;
    const row = this.d.ledger.message(this.accountId, msg.uid);
    if (!row) return undefined;
    const file = await locateFile(this.d.maildir, row);
    return file ? path.join(folderDir(this.d.maildir, row.folder), file) : undefined;
  }

  /** The lean index of a folder in UID order, one object per message (`snapshot()` is the compact form). */
  async index(folder: string): Promise<IndexEntry[]> {
    return (await this.snapshot(folder)).entries();
  }

  /**
   * The POP3 snapshot of a folder in UID order, with every header end known (a file whose
   * answer was unknown is read once and the answer recorded). The last one built is reused
   * while state.db is unchanged (`Ledger.changeStamp`): a login on an unchanged maildrop
   * reads no rows; one snapshot per account is kept, so memory stays bounded.
   */
  async snapshot(folder: string): Promise<FolderSnapshot> {
    const f = normalizeFolder(folder);
    const { ledger } = this.d;
    const last = this.lastSnapshot;
    if (last?.folder === f && last.stamp === ledger.changeStamp()) return last.snap;
    this.lastSnapshot = undefined;
    const stamp = ledger.changeStamp();
    let awaited = false;
    const snap =
      FolderSnapshot.fromPacked(ledger.folderPacked(this.accountId, f)) ??
      FolderSnapshot.fromEntries(
        ledger.folderIndex(this.accountId, f).map(([uid, wsize, eoh, u]) => {
          const e: IndexEntry = { uid, wsize };
          if (eoh !== null) e.hasEoh = eoh === 1;
          if (u !== null) e.uidl = u;
          return e;
        }),
      );
    for (const [i, eoh] of snap.eoh) {
      if (eoh !== undefined) continue;
      awaited = true;
      const uid = snap.uids[i] as number;
      const m = this.message(uid);
      const file = m && (await this.messagePath(m));
      if (!file) continue;
      const has = await fileHasEoh(file);
      if (has) snap.eoh.delete(i);
      else snap.eoh.set(i, 0);
      ledger.setEoh(this.accountId, uid, has ? 1 : 0);
    }
    // kept only when read in one go: after an await, a commit may have come in since `stamp`
    if (!awaited) this.lastSnapshot = { folder: f, stamp, snap };
    return snap;
  }

  /** One cached message by UID, or undefined. */
  message(uid: number): CachedMessage | undefined {
    const r = this.d.ledger.message(this.accountId, uid);
    return r && this.toCached(r);
  }

  protected toCached(r: MessageRow): CachedMessage {
    return {
      uid: r.uid,
      uidl: r.uidl ?? uidl(r.uid),
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
