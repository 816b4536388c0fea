/**
 * The POP3 listener's contract with the rest of localpost, and its
 * implementation over the durable cache. The daemon builds a `CacheBackend` and supplies what
 * only it knows (pull on login, each account's `onLocalDelete`); the listener never imports
 * the daemon or the upstream modules.
 *
 * Guarantees of a `Pop3Backend`:
 * - `snapshot()` lists the account's INBOX in UID order with `hasEoh` known for every message,
 *   and only messages whose batch is committed (the cache's visibility rule).
 * - `open()` finds a message even if another Maildir reader moved it to `cur/`, and rejects
 *   with `MessageGoneError` when its file no longer exists or no longer has its recorded size
 *   (a damaged file is never served under a LIST size it does not have; it is logged).
 * - `deleteMessages()` resolves only once the deletion is durable: the messages are out of the
 *   INBOX (in the local Trash) and tombstoned, so they are never fetched again.
 * - `beforeSnapshot()` never rejects and returns within its own time limit.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { FolderSnapshot } from '../../cache/folder-snapshot.js';
import type { MailboxAccountStore } from '../../cache/mailbox-account.js';
import { INBOX } from '../../cache/message-store.js';
import { errorMessage } from '../../shared/errors.js';

/** What the POP3 server needs from the cache and the daemon. */
export interface Pop3Backend {
  /** Called after a successful login, before the snapshot (pull on login). */
  beforeSnapshot(accountId: string): Promise<void>;
  /** The maildrop: INBOX in UID order, header ends known; shared, never modified by the caller. */
  snapshot(accountId: string): Promise<FolderSnapshot>;
  /** The stored bytes of one message, by local UID. */
  open(accountId: string, uid: number): Promise<AsyncIterable<Buffer> | Iterable<Buffer>>;
  /** Apply the UPDATE state's deletions durably (RFC 1939 §6). */
  deleteMessages(accountId: string, uids: readonly number[]): Promise<void>;
}

/** The message's file is gone (deleted by another reader), or damaged. */
export class MessageGoneError extends Error {
  override name = 'MessageGoneError';
}

/**
 * Messages up to this size are read in one synchronous call: a RETR then costs no thread-pool
 * round trips (open, read, read, close), which dominate serving small mail; larger ones stream.
 */
const READ_WHOLE_MAX = 256 * 1024;

/** What a local deletion does upstream (`incoming.onLocalDelete`). */
export type LocalDeletePolicy = 'keep-upstream' | 'delete-upstream';

/** Default time a locally deleted message stays in the local Trash folder. */
const TRASH_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** Options of `CacheBackend`. */
export interface CacheBackendOptions {
  /** The cache (or anything handing out account stores). */
  stores: { account(id: string): MailboxAccountStore };
  /** The account's `incoming.onLocalDelete` at the time of the deletion. */
  onLocalDelete(accountId: string): LocalDeletePolicy;
  /** Pull on login; must resolve within its own time limit. Default: nothing. */
  beforeSnapshot?(accountId: string): Promise<void>;
  /** How long Trash keeps messages; default `TRASH_RETENTION_MS`. */
  trashRetentionMs?: number;
  log: Logger;
}

/** `Pop3Backend` over the cache. */
export class CacheBackend implements Pop3Backend {
  constructor(private readonly o: CacheBackendOptions) {}

  async beforeSnapshot(accountId: string): Promise<void> {
    try {
      await this.o.beforeSnapshot?.(accountId);
    } catch (err) {
      this.o.log.warn({ account: accountId, err: errorMessage(err) }, 'pull on login failed; serving the cache');
    }
  }

  snapshot(accountId: string): Promise<FolderSnapshot> {
    return this.o.stores.account(accountId).snapshot(INBOX);
  }

  async open(accountId: string, uid: number): Promise<AsyncIterable<Buffer> | Iterable<Buffer>> {
    const store = this.o.stores.account(accountId);
    const msg = store.message(uid);
    // Try the recorded path first (no extra stat); on ENOENT look the file up by UID once.
    let file = msg?.path;
    for (let attempt = 0; msg && file && attempt < 2; attempt++) {
      try {
        if (msg.size <= READ_WHOLE_MAX) {
          const whole = readExact(file, msg.size);
          if (typeof whole === 'number') this.damaged(accountId, uid, file, whole, msg.size);
          return [whole];
        }
        const fh = await open(file, 'r');
        const { size } = await fh.stat();
        if (size !== msg.size) {
          await fh.close();
          this.damaged(accountId, uid, file, size, msg.size);
        }
        return fh.createReadStream({ highWaterMark: 64 * 1024 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        file = await store.messagePath(msg);
      }
    }
    throw new MessageGoneError(`message with UID ${uid} is no longer in the cache`);
  }

  private damaged(accountId: string, uid: number, file: string, size: number, expected: number): never {
    this.o.log.error(
      { account: accountId, uid, file, size, expected },
      'cached message file has the wrong size: not served',
    );
    throw new MessageGoneError(`message with UID ${uid} is damaged (${size} bytes instead of ${expected})`);
  }

  async deleteMessages(accountId: string, uids: readonly number[]): Promise<void> {
    const store = this.o.stores.account(accountId);
    const deleteUpstream = this.o.onLocalDelete(accountId) === 'delete-upstream';
    const moved = await store.trash(uids, { deleteUpstream });
    this.o.log.info({ account: accountId, moved, deleteUpstream }, 'POP3 deletions moved to Trash');
    await this.purgeTrash(accountId);
  }

  /** Remove Trash messages older than the retention period; failures are logged only. */
  async purgeTrash(accountId: string): Promise<void> {
    try {
      const n = await this.o.stores.account(accountId).purgeTrash(this.o.trashRetentionMs ?? TRASH_RETENTION_MS);
      if (n) this.o.log.info({ account: accountId, removed: n }, 'purged old messages from Trash');
    } catch (err) {
      this.o.log.error({ account: accountId, err: errorMessage(err) }, 'could not purge Trash');
    }
  }
}

/**
 * The file's bytes when it holds exactly `size` of them, else its real length. One read of
 * `size + 1` bytes tells both (a regular file reads short only at its end): open, read, close,
 * without the fstat a plain whole-file read makes.
 */
function readExact(file: string, size: number): Buffer | number {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return n === size ? buf.subarray(0, n) : fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}
