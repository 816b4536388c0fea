/**
 * Opening `<dataDir>/state.db` (invariant 6): better-sqlite3 in WAL mode with
 * `synchronous=FULL` and foreign keys on, schema versions tracked in `user_version`.
 *
 * `MIGRATIONS` is append-only: each entry runs once, in its own transaction, in order. Never
 * edit a released entry; add a new one.
 *
 * A corrupt or unreadable database (not a database, malformed, failing `quick_check`) is never
 * fatal (invariant 8): it is moved aside as `state.db.broken-<ms>` (with its `-wal`/`-shm`) and a
 * fresh one is created; start-up recovery then rebuilds every message row from the Maildirs.
 * A database written by a newer localpost (higher `user_version`) is refused instead, untouched.
 * state.db and its `-wal`/`-shm` are mode 0600 and never symbolic links (`claimPrivateFile`,
 * before SQLite opens them by name; docs/security.md).
 */

import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../shared/clock.js';
import { claimPrivateFile, fsyncDir } from '../shared/durable-fs.js';

/** A handle on state.db. */
export type StateDb = Database.Database;

/** One schema step; `version` is the `user_version` after it ran. */
export interface Migration {
  version: number;
  sql: string;
}

/** The schema history of state.db (append-only). */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE messages (
        account   TEXT NOT NULL,
        uid       INTEGER NOT NULL,
        folder    TEXT NOT NULL,
        file      TEXT NOT NULL,      -- path relative to the folder directory: new/<name> or cur/<name>
        size      INTEGER NOT NULL,
        wsize     INTEGER NOT NULL,
        key       TEXT NOT NULL,
        flags     TEXT NOT NULL DEFAULT '',
        stored_at INTEGER NOT NULL,   -- ms since epoch
        PRIMARY KEY (account, uid)
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX messages_key ON messages (account, folder, key);
      CREATE INDEX messages_folder ON messages (account, folder, uid);

      CREATE TABLE accounts (
        account  TEXT PRIMARY KEY,
        next_uid INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE tombstones (
        account    TEXT NOT NULL,
        folder     TEXT NOT NULL,
        key        TEXT NOT NULL,
        deleted_at INTEGER NOT NULL,
        PRIMARY KEY (account, folder, key)
      ) WITHOUT ROWID;

      CREATE TABLE imap_cursors (
        account        TEXT NOT NULL,
        folder         TEXT NOT NULL,
        uidvalidity    TEXT NOT NULL,
        last_uid       INTEGER NOT NULL,
        highest_modseq TEXT,
        PRIMARY KEY (account, folder)
      ) WITHOUT ROWID;

      CREATE TABLE sync_history (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        account      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER NOT NULL,
        result       TEXT NOT NULL,
        new_messages INTEGER NOT NULL,
        bytes        INTEGER NOT NULL,
        skipped      INTEGER NOT NULL,
        error        TEXT
      );
      CREATE INDEX sync_history_account ON sync_history (account, id);
    `,
  },
  {
    // Local POP3 serving: whether a message has an empty line ending its header (NULL: not
    // known yet; the POP3 listener computes it once), and upstream deletion requested by a
    // local deletion (tombstones.upstream: NULL keep upstream, 'pending', 'done').
    version: 2,
    sql: `
      ALTER TABLE messages ADD COLUMN eoh INTEGER;
      ALTER TABLE tombstones ADD COLUMN upstream TEXT;
      CREATE INDEX tombstones_upstream ON tombstones (account, folder, upstream);
    `,
  },
  {
    // The outbox index (cache/outbox-index.ts): one row per outbox entry, whose truth is
    // outbox/<id>.json; finished entries stay as rows for status and duplicate detection.
    version: 3,
    sql: `
      CREATE TABLE outbox (
        id           TEXT PRIMARY KEY,
        account      TEXT NOT NULL,
        state        TEXT NOT NULL,      -- queued | sent | failed | dropped
        mail_from    TEXT NOT NULL,
        recipients   INTEGER NOT NULL,
        pending      INTEGER NOT NULL,
        size         INTEGER NOT NULL,
        message_id   TEXT,
        dedupe       TEXT,               -- hash of account, envelope and bytes; NULL without a Message-ID
        created_at   INTEGER NOT NULL,
        next_attempt INTEGER,
        tries        INTEGER NOT NULL,
        last_error   TEXT,
        finished_at  INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX outbox_state ON outbox (state, created_at);
      CREATE INDEX outbox_dedupe ON outbox (dedupe, created_at);
    `,
  },
  {
    // Pull backoff (cache/pull-backoff.ts) per account, so a restart neither forgets the wait
    // nor resets the doubling; no row: no backoff.
    version: 4,
    sql: `
      CREATE TABLE pull_backoff (
        account  TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        until    INTEGER NOT NULL,   -- ms since epoch
        reason   TEXT NOT NULL,      -- auth | throttled | error
        error    TEXT
      ) WITHOUT ROWID;
    `,
  },
  {
    // Content identity (cache/content-identity.ts) of live rows (filled when first needed) and
    // of tombstones (taken when the message is deleted locally), so a changed upstream key
    // (UIDVALIDITY, a POP3 provider renumbering its UIDLs) is matched by content; the POP3
    // UIDL served for a row (NULL: the local UID in hex) and each account's UIDL mode
    // ('local' | 'upstream'), fixed when the account's cache is created.
    version: 5,
    sql: `
      ALTER TABLE messages ADD COLUMN ident TEXT;
      ALTER TABLE messages ADD COLUMN uidl TEXT;
      CREATE UNIQUE INDEX messages_uidl ON messages (account, folder, uidl);
      ALTER TABLE tombstones ADD COLUMN ident TEXT;
      ALTER TABLE accounts ADD COLUMN uidl_mode TEXT;
    `,
  },
  {
    // POP3 messages RETRed in a session whose QUIT has not succeeded yet: Gmail counts a message
    // as popped only at a clean QUIT and offers it again otherwise (docs/pitfalls.md#gmail-pop-window).
    version: 6,
    sql: `
      CREATE TABLE pop3_unconfirmed (
        account TEXT NOT NULL,
        key     TEXT NOT NULL,
        PRIMARY KEY (account, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Upstream key changes matched by content (cache/key-changes.ts): a POP3 provider that
    // renumbered its UIDLs. A row without finished_at is an adoption still under way (resumed
    // at the next pull); the latest row is shown by `status`.
    version: 7,
    sql: `
      CREATE TABLE key_changes (
        account     TEXT NOT NULL,
        folder      TEXT NOT NULL,
        kind        TEXT NOT NULL,      -- uidl
        detected_at INTEGER NOT NULL,   -- ms since epoch
        finished_at INTEGER,
        matched     INTEGER NOT NULL,
        fresh       INTEGER NOT NULL,
        PRIMARY KEY (account, folder, detected_at)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Messages abandoned mid-download for sending more than their receive limit
    // (upstream/size-guard.ts): not downloaded again unless that limit grows.
    version: 8,
    sql: `
      CREATE TABLE oversized (
        account  TEXT NOT NULL,
        folder   TEXT NOT NULL,
        key      TEXT NOT NULL,
        lim      INTEGER NOT NULL,
        received INTEGER NOT NULL,
        PRIMARY KEY (account, folder, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    // The local IMAP server (cache/mailboxes.ts, docs/imap-server.md): flags beyond the Maildir
    // letters, CONDSTORE MODSEQs, INTERNALDATE of appended messages, the folder list with each
    // folder's UIDVALIDITY/UIDNEXT, and the change journal that carries local changes upstream.
    version: 9,
    sql: `
      ALTER TABLE messages ADD COLUMN keywords TEXT NOT NULL DEFAULT '';   -- space-separated IMAP keywords
      ALTER TABLE messages ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;   -- 0: never changed (reads as 1)
      ALTER TABLE messages ADD COLUMN internal_date INTEGER;               -- ms; NULL: stored_at
      ALTER TABLE accounts ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;   -- the last MODSEQ given out
      CREATE TABLE folders (
        account        TEXT NOT NULL,
        folder         TEXT NOT NULL,
        uidvalidity    INTEGER NOT NULL,
        uid_next       INTEGER NOT NULL,
        highest_modseq INTEGER NOT NULL DEFAULT 1,
        special_use    TEXT,             -- Sent | Drafts | Trash | ...
        subscribed     INTEGER NOT NULL DEFAULT 1,
        created_at     INTEGER NOT NULL, -- ms since epoch
        PRIMARY KEY (account, folder)
      ) WITHOUT ROWID;
      CREATE TABLE journal (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        account       TEXT NOT NULL,
        change        TEXT NOT NULL,     -- JSON JournalChange
        state         TEXT NOT NULL,     -- queued | inflight | failed | done | dropped
        created_at    INTEGER NOT NULL,
        tries         INTEGER NOT NULL DEFAULT 0,
        next_attempt  INTEGER,
        last_error    TEXT,
        inflight_note TEXT,
        done_at       INTEGER
      );
      CREATE INDEX journal_account ON journal (account, state, id);
    `,
  },
  {
    // Which folders an IMAP account shows and pulls (docs/imap-server.md "Which folders"): a
    // folder created or renamed through the local IMAP server stays in the set; an upstream
    // folder outside the set keeps its row and cached mail but is not shown. Folders created
    // locally before this version are found in the journal. A pull records the configured
    // folders the upstream lacked.
    version: 10,
    sql: `
      ALTER TABLE folders ADD COLUMN local INTEGER NOT NULL DEFAULT 0;  -- 1: created or renamed through the local IMAP server
      ALTER TABLE folders ADD COLUMN shown INTEGER NOT NULL DEFAULT 1;  -- 0: an upstream folder outside the pulled set
      UPDATE folders SET local = 1 WHERE EXISTS (
        SELECT 1 FROM journal j WHERE j.account = folders.account AND j.state <> 'dropped' AND (
          (json_extract(j.change, '$.kind') = 'create' AND json_extract(j.change, '$.folder') = folders.folder) OR
          (json_extract(j.change, '$.kind') = 'rename' AND json_extract(j.change, '$.to') = folders.folder)));
      ALTER TABLE sync_history ADD COLUMN missing_folders TEXT;        -- JSON list of configured folders not found upstream
    `,
  },
];

/** Raised when state.db comes from a newer localpost; we refuse to touch it. */
class StateDbTooNewError extends Error {
  override name = 'StateDbTooNewError';
}

/** Options of `openStateDb`. */
export interface OpenStateDbOptions {
  file: string;
  log: Logger;
  clock?: Clock;
  migrations?: readonly Migration[];
}

class CorruptDbError extends Error {}

/** True for errors that mean "this file is not a usable database", as opposed to a bug or EACCES on the dir. */
function isCorruption(err: unknown, file: string): boolean {
  if (err instanceof CorruptDbError) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return true;
  return code.startsWith('SQLITE_CANTOPEN') && existsSync(file);
}

/** Open, configure, check and migrate; throws on any problem (the db is closed first). */
async function openOnce(file: string, migrations: readonly Migration[]): Promise<StateDb> {
  await claimPrivateFile(file, true);
  for (const suffix of ['-wal', '-shm']) await claimPrivateFile(file + suffix, false);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new CorruptDbError(`quick_check: ${String(check)}`);
    migrate(db, migrations);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Bring the schema up to the last migration. */
function migrate(db: StateDb, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new StateDbTooNewError(`state.db has schema ${current}, this localpost knows up to ${latest}`);
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

/** Move state.db and its -wal/-shm aside as `state.db.broken-<ms>[-wal|-shm]`; returns the new name. */
async function moveAside(file: string, clock: Clock): Promise<string> {
  const aside = `${file}.broken-${clock.now()}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
  }
  await fsyncDir(path.dirname(file));
  return aside;
}

/** Open state.db, replacing a corrupt one by a fresh database (see the module comment). */
export async function openStateDb(opts: OpenStateDbOptions): Promise<StateDb> {
  const clock = opts.clock ?? systemClock;
  const migrations = opts.migrations ?? MIGRATIONS;
  try {
    return await openOnce(opts.file, migrations);
  } catch (err) {
    if (!isCorruption(err, opts.file)) throw err;
    const aside = await moveAside(opts.file, clock);
    opts.log.error(
      { err, file: opts.file, movedTo: aside },
      'state.db is unreadable; moved aside, starting a fresh one and rebuilding from the Maildirs',
    );
    return await openOnce(opts.file, migrations);
  }
}
