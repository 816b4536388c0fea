/**
 * The contract between the upstream fetchers (writers), the local listeners (readers) and the
 * durable cache. Implemented by `maildir.ts` + `ledger.ts`; see docs/architecture.md.
 *
 * Guarantees:
 * - A message is visible to readers only once its file is in `new/` or `cur/` AND its batch was
 *   committed (file fsynced, directory fsynced, ledger row written in one SQLite transaction).
 * - `commit()` returns only after all of that is on disk; only then may a fetcher delete the
 *   batch's messages upstream (invariant 3).
 * - A key that is cached, pending in the open batch, or tombstoned is reported by `has()`, so a
 *   fetcher never downloads it twice (invariant 4), whatever crashed before.
 * - Local UIDs are allocated once per account and never reused (invariant 5).
 */
import type { Writable } from 'node:stream';

/** Name of the INBOX folder; other folders are Maildir++ `.<name>` subfolders. */
export const INBOX = 'INBOX';
/** The local folder (Maildir++ `.Trash`) that messages deleted through a local listener go to. */
export const TRASH = 'Trash';
/** The local folder a POP3 account's sent mail is filed in (`daemon/outgoing.ts`). */
export const SENT = 'Sent';

/** One cached message as the index knows it. */
export interface CachedMessage {
  /** Local UID, never reused within the account. */
  uid: number;
  /** The POP3 UIDL we serve: the UID as 8 upper-case hex digits, or the upstream UIDL (`uidl-mode.ts`). */
  uidl: string;
  /** Folder name (`INBOX` or an IMAP folder name). */
  folder: string;
  /** Absolute path of the file as of the last scan or write. */
  path: string;
  /** Stored bytes (`S=`). */
  size: number;
  /** Octets with CRLF line ends, as POP3 RETR sends them before dot-stuffing (`W=`). */
  wsize: number;
  /** Upstream identity key (`K=`): `p<hex>` for POP3, `i<uidvalidity>_<uid>` for IMAP. */
  key: string;
  /** Maildir flags (the letters after `:2,`), e.g. `S` for seen. */
  flags: string;
  /** When it was stored, ms since epoch. */
  storedAt: number;
  /** True when the header ends with an empty line; undefined when not known yet. */
  hasEoh?: boolean;
}

/** What a POP3 snapshot needs of a message; the rest is read with `message(uid)` when used. */
export interface IndexEntry {
  uid: number;
  /** `W=`: octets with CRLF line ends. */
  wsize: number;
  /** True when the header ends with an empty line; undefined when not known yet. */
  hasEoh?: boolean;
  /** The upstream UIDL it serves; undefined: the local UID in hex. */
  uidl?: string;
}

/** What a writer knows of a message beyond its key. */
export interface BeginOptions {
  /**
   * The upstream POP3 UIDL, for the first message the server lists with it. Served as the
   * local UIDL when the account's mode is `upstream` and it is servable and not served yet
   * (`uidl-mode.ts`); otherwise the local UID in hex is.
   */
  uidl?: string;
}

/** A message being written: stream the upstream bytes into `stream`, then `finish()`. */
export interface PendingMessage {
  readonly uid: number;
  readonly key: string;
  /** A file stream in the folder's `tmp/`; write the exact upstream bytes (dot-unstuffed). */
  readonly stream: Writable;
  /**
   * Close and fsync the temp file, compute S= and W=, and rename it into `new/`. The message is
   * part of the open batch from now on (visible after `commit()`).
   */
  finish(): Promise<CachedMessage>;
  /** Throw away the temp file (download failed or was too large). Idempotent. */
  abort(): Promise<void>;
}

/** One record matched by content identity (content-identity.ts): a live row of a folder, or a tombstone of it. */
export interface KnownMessage {
  key: string;
  ident: string;
  /** 'live': a row of the folder; 'deleted': a tombstone (its file possibly in Trash). */
  kind: 'live' | 'deleted';
}

/** A message listed upstream under its current key, with its content identity. */
export interface ListedMessage {
  key: string;
  ident: string;
}

/** The per-account writer and reader of the cache. */
export interface AccountStore {
  readonly accountId: string;
  /** True when `key` in `folder` is cached, pending in the open batch, or tombstoned. */
  has(folder: string, key: string): boolean;
  /** Start writing a new message; allocates its local UID and chooses the UIDL it serves. */
  begin(folder: string, key: string, opts?: BeginOptions): Promise<PendingMessage>;
  /** Close and remove the temp files created ahead of need (end of a pull; recovery removes them after a crash). */
  releaseSpares?(): Promise<void>;
  /** Number of finished messages waiting for `commit()`. */
  readonly pendingCount: number;
  /**
   * Make the open batch durable: fsync the touched directories, then in ONE SQLite transaction
   * insert the message rows and run `inTransaction` (for cursor updates). Returns the committed
   * messages. Only after this resolves may their upstream copies be deleted.
   */
  commit(inTransaction?: () => void): Promise<CachedMessage[]>;
  /** Messages of a folder, in UID order (the POP3 maildrop snapshot uses INBOX). */
  list(folder: string): CachedMessage[];
  /**
   * Live rows and tombstones of `folder` whose key passes `keep`, with their content identities
   * (known-messages.ts); identities not yet recorded are computed from the files and stored.
   */
  known(folder: string, keep?: (key: string) => boolean): Promise<KnownMessage[]>;
  /**
   * Move records of `folder` to the keys their messages have upstream now (from `matchByIdentity`):
   * live rows with their files, tombstones with their Trash rows. Each move is durable on its own.
   * Returns how many moved.
   */
  adoptKeys(folder: string, moves: ReadonlyArray<{ from: string; to: string }>): Promise<number>;
  /**
   * Keys of `folder` deleted locally whose upstream copy should be deleted too
   * (`onLocalDelete: delete-upstream`). Their local files are already out of the folder.
   */
  pendingUpstreamDeletes(folder: string): string[];
  /** Record that the upstream copies of `keys` are gone; call only after the upstream confirmed it. */
  markUpstreamDeleted(folder: string, keys: readonly string[]): void;
  /**
   * POP3 (INBOX) keys RETRed in a session that has not ended with a clean QUIT yet: a server
   * like Gmail offers them again until one does (docs/pitfalls.md#gmail-pop-window).
   */
  unconfirmedRetrievals(): Set<string>;
  /** Durably note keys about to be RETRed (before the RETRs), or clear them once QUIT succeeded. */
  noteRetrievals(keys: readonly string[], confirmed: boolean): void;
  /**
   * Messages of `folder` abandoned mid-download for sending more than their receive limit
   * (docs/guarantees.md#hostile-upstream-servers), by key: not downloaded again unless the limit grows.
   */
  oversized(folder: string): Map<string, OversizedInfo>;
  /** Durably remember a message abandoned mid-download. */
  noteOversized(folder: string, key: string, info: OversizedInfo): void;
  /** The key change of `folder` whose adoption has not finished (cut short by a crash), if any. */
  unfinishedKeyChange(folder: string): KeyChange | undefined;
  /** Record a key change or its progress (see `key-changes.ts`). */
  noteKeyChange(change: KeyChange): void;
}

/** Why a message was abandoned: the receive limit it went past, and the bytes counted then. */
export interface OversizedInfo {
  limit: number;
  received: number;
}

/** Every upstream key of a folder changed and the records were matched by content (`key-changes.ts`). */
export interface KeyChange {
  folder: string;
  /** `uidl`: a POP3 provider renumbered its UIDLs. */
  kind: 'uidl';
  /** When it was detected (ms since epoch). */
  detectedAt: number;
  /** When the adoption finished; absent while it is under way. */
  finishedAt?: number;
  /** Records (messages and tombstones) moved to their new keys so far. */
  matched: number;
  /** Listed messages that matched nothing known: downloaded as new. */
  fresh: number;
}

/** IMAP per-folder sync cursor (stored as text: UIDVALIDITY and MODSEQ are 64-bit). */
export interface ImapCursor {
  uidValidity: string;
  lastUid: number;
  highestModseq?: string;
}

/** One recorded pull (sync history, shown by `localpost status`). */
export interface SyncRecord {
  account: string;
  startedAt: number;
  finishedAt: number;
  /** ok | offline | auth | throttled (the server asked us to slow down) | error */
  result: 'ok' | 'offline' | 'auth' | 'throttled' | 'error';
  newMessages: number;
  bytes: number;
  skipped: number;
  error?: string;
  /** IMAP: configured folders the upstream does not have (the pull went on without them). */
  missingFolders?: string[];
}

/** Write one whole message (already in memory) into `folder` and commit it: durable on return. */
export async function storeWholeMessage(
  store: AccountStore,
  folder: string,
  key: string,
  bytes: Buffer,
): Promise<void> {
  const pending = await store.begin(folder, key);
  try {
    await new Promise<void>((resolve, reject) => pending.stream.write(bytes, (err) => (err ? reject(err) : resolve())));
    await pending.finish();
  } catch (err) {
    await pending.abort();
    throw err;
  }
  await store.commit();
}
