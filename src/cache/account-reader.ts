/**
 * The read side of an account's cache (`AccountStoreImpl` adds the writes): messages by folder,
 * UID or key prefix, the lean POP3 index, and the current path of a file another Maildir reader
 * may have moved. Reads only committed rows (the cache's visibility rule).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
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

  /**
   * The lean index of a folder in UID order (for POP3 snapshots: one raw query, no paths), with
   * `hasEoh` filled in where it was unknown (the header is read once and the answer recorded).
   */
  async index(folder: string): Promise<IndexEntry[]> {
    const rows = this.d.ledger.folderIndex(this.accountId, normalizeFolder(folder));
    const out: IndexEntry[] = rows.map(([uid, wsize, eoh, u]) => {
      const e: IndexEntry = { uid, wsize };
      if (eoh !== null) e.hasEoh = eoh === 1;
      if (u !== null) e.uidl = u;
      return e;
    });
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
