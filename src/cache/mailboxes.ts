/**
 * The contract between the local IMAP server (`listeners/imap/`), the cache and the upstream
 * change journal: what a client sees of an account's cached folders, and the changes it may make.
 * Types only; the cache implements `MailboxStore` (one per account) and `ChangeJournal`.
 *
 * Model (docs/imap-server.md):
 * - A folder's IMAP UIDs are the account's local UIDs (never reused, invariant 5), so they only
 *   grow within a folder and UIDVALIDITY never has to change; a folder's UIDVALIDITY is chosen when
 *   the folder is first known (and a new one if a folder of that name is deleted and created again);
 *   UIDVALIDITY values are unique within an account and a RENAME keeps the folder's (the IMAP
 *   session tells a rename of its selected folder from a delete by it).
 *   A copied, moved or appended message gets a new local UID in its target folder (IMAP semantics);
 *   a message keeps its UID, and so its POP3 UIDL, as long as it stays in its folder.
 * - Flags and keywords live in state.db; the Maildir name keeps the flags it was written with.
 *   Every change of a message's flags, and every message added, takes the next MODSEQ of the
 *   account (RFC 7162); a folder's HIGHESTMODSEQ is the largest MODSEQ of a change in it,
 *   expunges included.
 * - Every change a client makes is durable before the promise resolves (so before the client's
 *   OK): files fsynced and renamed, directories fsynced, rows written in one SQLite transaction
 *   together with, for an IMAP account, the change journal entry that carries it upstream.
 * - Changes by any writer (a pull, a POP3 QUIT, another IMAP session, the journal replay) are
 *   announced to listeners after they are durable, so sessions can send untagged EXISTS,
 *   EXPUNGE and FETCH responses (IDLE, NOOP, after any command).
 */

/** IMAP system flags; any other flag is a keyword (an atom). `\Recent` is session state, never stored. */
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;

/** Special-use attributes (RFC 6154) a folder may carry. */
export type SpecialUse = '\\Sent' | '\\Drafts' | '\\Trash' | '\\Junk' | '\\Archive' | '\\All' | '\\Flagged';

/** The hierarchy delimiter of the names the IMAP server shows. */
export const IMAP_DELIMITER = '/';

/** One message as an IMAP session sees it. */
export interface MailboxMessage {
  /** IMAP UID: the local UID. */
  uid: number;
  /** RFC822.SIZE: octets with CRLF line ends (the file's `W=`). */
  size: number;
  /** Flags and keywords, IMAP spelling (`\Seen`, `$Forwarded`, `Junk`), sorted, no duplicates. */
  flags: readonly string[];
  /** CONDSTORE MODSEQ of the last change of this message (> 0). */
  modseq: number;
  /** INTERNALDATE, ms since epoch. */
  internalDate: number;
}

/** A folder as LIST, STATUS and SELECT show it. */
export interface MailboxInfo {
  /** The IMAP name (`INBOX`, or the upstream name with `/` as delimiter), a JS string. */
  name: string;
  specialUse?: SpecialUse;
  /** Nonzero, below 2^32. */
  uidValidity: number;
  /** Greater than every UID the folder ever held; changes only when a message is added. */
  uidNext: number;
  highestModseq: number;
  messages: number;
  /** Messages without `\Seen`. */
  unseen: number;
  subscribed: boolean;
  /** False for a name that only exists as the parent of others (`\Noselect`). */
  selectable: boolean;
}

/** What SELECT/EXAMINE takes: the folder and its messages in UID order. */
export interface MailboxSnapshot {
  info: MailboxInfo;
  messages: MailboxMessage[];
}

/** A STORE: `add`/`remove` these flags, or `replace` the whole set. */
export interface FlagChange {
  op: 'add' | 'remove' | 'replace';
  flags: readonly string[];
  /** CONDSTORE UNCHANGEDSINCE: messages with a greater MODSEQ are not changed and are returned in `modified`. */
  unchangedSince?: number;
}

/** Result of `setFlags`: the messages whose flags changed (new flags and MODSEQ), and those refused by UNCHANGEDSINCE. */
export interface FlagResult {
  changed: MailboxMessage[];
  modified: number[];
}

/** A UID of the source folder and the UID its copy got in the target (UIDPLUS COPYUID). */
export interface UidPair {
  from: number;
  to: number;
}

/** A change announced to every listener of the account, after it is durable. */
export type MailboxEvent =
  | { kind: 'added'; folder: string; messages: MailboxMessage[] }
  | { kind: 'flags'; folder: string; messages: MailboxMessage[] }
  | { kind: 'expunged'; folder: string; uids: number[] }
  /** Folders were created, renamed, deleted or (un)subscribed. */
  | { kind: 'folders' };

/** Raised for a folder that does not exist (the session answers `NO [NONEXISTENT]` or `NO [TRYCREATE]`). */
export class NoSuchFolderError extends Error {
  constructor(readonly folder: string) {
    super(`no folder ${JSON.stringify(folder)}`);
    this.name = 'NoSuchFolderError';
  }
}

/** Raised for a create/rename onto a name that exists, deleting INBOX, etc. (the session answers `NO`). */
export class FolderOperationError extends Error {
  constructor(
    message: string,
    /** RFC 5530 response code the session puts in its `NO`. */
    readonly code: 'ALREADYEXISTS' | 'CANNOT' | 'NONEXISTENT' | 'INUSE' | 'LIMIT',
  ) {
    super(message);
    this.name = 'FolderOperationError';
  }
}

/** One account's folders as the local IMAP server sees and changes them. */
export interface MailboxStore {
  readonly accountId: string;
  /** Every folder, INBOX first then by name; parents of nested names included (`selectable: false` when not real folders). */
  folders(): MailboxInfo[];
  /** One folder (name compared case-insensitively for INBOX only), or undefined. */
  folder(name: string): MailboxInfo | undefined;
  /** SELECT/EXAMINE: the folder and its messages in UID order; throws NoSuchFolderError. */
  select(name: string): MailboxSnapshot;
  /**
   * The message's bytes as stored (exact; the session converts bare LF to CRLF when `size`
   * says the file has bare LFs). Rejects when the message is gone (expunged meanwhile).
   */
  read(folder: string, uid: number): Promise<Buffer>;
  /** STORE. Durable (and journaled) before it resolves; UIDs not in the folder are ignored. */
  setFlags(folder: string, uids: readonly number[], change: FlagChange): Promise<FlagResult>;
  /** EXPUNGE / UID EXPUNGE / CLOSE: remove these messages; returns the UIDs removed, ascending. */
  expunge(folder: string, uids: readonly number[]): Promise<number[]>;
  /** COPY: new messages in `to` with the same bytes, flags and INTERNALDATE; throws NoSuchFolderError for `to`. */
  copy(from: string, uids: readonly number[], to: string): Promise<UidPair[]>;
  /** MOVE (RFC 6851): like COPY then EXPUNGE of the sources, as one durable step. */
  move(from: string, uids: readonly number[], to: string): Promise<UidPair[]>;
  /** APPEND: store `bytes` durably as a new message of `folder`. */
  append(
    folder: string,
    bytes: Buffer,
    opts?: { flags?: readonly string[]; internalDate?: number },
  ): Promise<{ uid: number; uidValidity: number }>;
  /** CREATE (intermediate parents are created too; a trailing delimiter is ignored). */
  createFolder(name: string): Promise<void>;
  /** RENAME (children follow; renaming INBOX moves its messages to the new folder and leaves INBOX empty, RFC 3501 §6.3.5). */
  renameFolder(from: string, to: string): Promise<void>;
  /** DELETE (its messages are removed; INBOX cannot be deleted). */
  deleteFolder(name: string): Promise<void>;
  /** SUBSCRIBE / UNSUBSCRIBE. */
  subscribe(name: string, subscribed: boolean): Promise<void>;
  /** Listen for changes of this account; returns the function that stops listening. */
  onChange(listener: (event: MailboxEvent) => void): () => void;
}

/**
 * Kinds of journaled change, each replayed upstream once, in order. `keys` (parallel to `uids`
 * or `pairs`, source side) are the messages' keys when the change was made, since a row may be
 * gone (expunged, moved out) by replay time; a local key (`l<hex>`) is replaced by the upstream one when
 * an earlier entry completes (`ChangeJournal.complete`).
 */
export type JournalChange =
  | {
      kind: 'flags';
      folder: string;
      uids: number[];
      op: 'add' | 'remove' | 'replace';
      flags: string[];
      keys?: string[];
    }
  | { kind: 'expunge'; folder: string; uids: number[]; keys?: string[] }
  | { kind: 'copy'; folder: string; to: string; pairs: UidPair[]; keys?: string[] }
  | { kind: 'move'; folder: string; to: string; pairs: UidPair[]; keys?: string[] }
  | { kind: 'append'; folder: string; uid: number }
  | { kind: 'create'; folder: string }
  | { kind: 'rename'; folder: string; to: string }
  | { kind: 'delete'; folder: string };

/** Where a journal entry stands: waiting, being applied upstream (a crash leaves it so), given up, or dropped by the user. */
export type JournalState = 'queued' | 'inflight' | 'failed' | 'done' | 'dropped';

/** One journal entry (`localpost journal` lists them). */
export interface JournalEntry {
  id: number;
  account: string;
  change: JournalChange;
  state: JournalState;
  /** ms since epoch. */
  createdAt: number;
  tries: number;
  /** ms since epoch; absent: as soon as the upstream is reachable. */
  nextAttempt?: number;
  lastError?: string;
  /**
   * What the replay noted before sending a change that is not idempotent (append, copy, move):
   * e.g. the target folder's UIDNEXT upstream, so that after a crash it can look whether the
   * change already landed instead of applying it twice.
   */
  inflightNote?: string;
}

/** Upstream identity of a local message, as the replay learns it (UIDPLUS APPENDUID/COPYUID, or a search). */
export interface KeyAssignment {
  uid: number;
  /** The upstream key (`i<UIDVALIDITY>_<UID>` within `folder`). */
  key: string;
}

/** The durable change journal (state.db): written by `MailboxStore`, drained by the upstream replay. */
export interface ChangeJournal {
  /** Entries of the account still to apply (queued and inflight), oldest first. */
  pending(account: string): JournalEntry[];
  /** Entries not done (queued, inflight, failed) of one account or all, oldest first: for `localpost journal` and `status`. */
  list(account?: string): JournalEntry[];
  /** Per account: how many entries wait (queued + inflight) and how many failed. */
  counts(): Map<string, { pending: number; failed: number }>;
  /** Durably mark an entry as being applied (tries + 1), with what a crash recovery needs to know. */
  markInflight(id: number, note?: string): void;
  /**
   * Durably mark an entry done and, in the same transaction, give local messages the upstream
   * keys they now have (so the next pull recognises them instead of downloading them again).
   */
  complete(id: number, keys?: readonly KeyAssignment[]): void;
  /** A temporary failure: back to queued, retried at `nextAttempt`; a permanent one: failed. */
  fail(id: number, error: string, opts: { permanent: boolean; nextAttempt?: number }): void;
  /** `localpost journal retry ID`: a failed entry back to queued, due now. Returns false when not failed. */
  retry(id: number): boolean;
  /** `localpost journal drop ID`: never apply this entry (the local change stays). Returns false when done already. */
  drop(id: number): boolean;
}

/** What `reconcileUpstreamFolders` did. */
export interface FolderReconcile {
  /** Folders that took their name (from the upstream spelling). */
  adopted: Array<{ from: string; to: string }>;
  /** Folders removed locally: gone upstream. */
  removed: string[];
  /** Folders gone upstream but kept locally, and why. */
  kept: Array<{ folder: string; why: string }>;
  /** Names not to pull in this pull (their mail is cached under another name, or they go locally), and why. */
  waiting: Array<{ folder: string; why: string }>;
}

/**
 * What a pull of an IMAP account tells the cache about changes made upstream by other devices
 * (implemented by the account's store; called by the IMAP fetcher after its listing of a folder).
 * Conflicts: an upstream expunge wins over anything local; flags merge per flag, a local change
 * still waiting in the journal winning for the flags it touches (it is the later one).
 */
export interface UpstreamMirror {
  /** Flags of cached messages as the upstream has them now (by upstream key); returns how many changed locally. */
  applyUpstreamFlags(folder: string, flags: ReadonlyArray<{ key: string; flags: readonly string[] }>): Promise<number>;
  /** Cached keys of `folder` that the upstream no longer lists: removed locally; returns how many. */
  applyUpstreamExpunges(folder: string, keys: readonly string[]): Promise<number>;
  /**
   * The upstream's folders with their special use, and whether this pull downloads each (the
   * account's folder set, docs/imap-server.md "Which folders"): a pulled folder is shown (its row
   * created, its special use recorded), one outside the set is hidden (its row and cached mail
   * kept; INBOX and folders created locally always shown). Folders the upstream does not list are
   * left as they are.
   */
  noteUpstreamFolders(
    folders: ReadonlyArray<{ name: string; specialUse?: SpecialUse; pulled: boolean }>,
  ): Promise<void>;
  /**
   * The upstream's selectable folders as this pull's LIST has them (`name` local, `path`
   * upstream), before `noteUpstreamFolders` (docs/imap-server.md "Which folders"):
   * - a folder cached under its upstream spelling `path` (an older localpost's name for a nested
   *   folder) takes its name, locally only; while a journal entry not done names it, the name is
   *   `waiting`: not to be pulled yet (its mail would come twice);
   * - a folder the account pulled (it has a pull cursor) that the LIST lacks is removed locally
   *   with its mail, without a journal entry (an upstream expunge wins), unless a journal entry
   *   not done names it or it holds messages not upstream yet (`kept`, with why);
   * - a folder renamed or deleted locally by a journal entry not done yet is `waiting` too.
   * `listed` must be a complete LIST: removals are skipped when INBOX is not in it; `gone`, when
   * given, confirms each removal (a folder a LIST does not show may still exist upstream).
   */
  reconcileUpstreamFolders(
    listed: ReadonlyArray<{ name: string; path: string }>,
    gone?: (folder: string) => Promise<boolean>,
  ): Promise<FolderReconcile>;
  /** Folders created or renamed through the local IMAP server: always in the account's folder set. */
  localFolders(): string[];
  /** True while a journal entry of `folder` is inflight (applied upstream or not: unknown): the pull must not download from it then. */
  unresolvedChanges(folder: string): boolean;
}
