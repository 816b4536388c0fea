/**
 * `localpost journal [list|retry ID|drop ID]`: local IMAP changes not yet carried upstream
 * (the change journal, docs/imap-server.md "Journal"), listed like `localpost outbox`.
 *
 * While a daemon runs, every action goes through its control socket (`GET /journal`,
 * `POST /journal/retry|drop/:id`): a retried entry is replayed at once by a pull of its account.
 * Without a daemon, `list` reads state.db read-only, and `retry`/`drop` change the row in-process
 * under the instance lock (the next start replays it). Dropping an entry never undoes the local
 * change: it only stops localpost from carrying it upstream; a running daemon refuses an entry in
 * flight (its completion re-keys what it created upstream). `list` loads neither the cache nor
 * the logger.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JournalChange, JournalEntry } from '../cache/mailboxes.js';
import type { Config } from '../config/schema.js';
import { ControlRequestError, ControlUnavailableError, control } from '../control/client.js';
import { lockHolder } from '../daemon/instance-lock.js';
import { errorMessage } from '../shared/errors.js';
import { type CliOut, lockOrDaemon, stdio } from './outbox.js';
import { relative } from './status.js';

const OK = 0;
const FAILURE = 1;

/** One entry's change in a few words: `flags +\Seen INBOX, 3 messages`, `move INBOX -> Archive, 2 messages`. */
export function describeChange(c: JournalChange): string {
  const n = (k: number) => `${k} message${k === 1 ? '' : 's'}`;
  switch (c.kind) {
    case 'flags': {
      const sign = c.op === 'add' ? '+' : c.op === 'remove' ? '-' : '=';
      return `flags ${sign}(${c.flags.join(' ')}) ${c.folder}, ${n(c.uids.length)}`;
    }
    case 'expunge':
      return `expunge ${c.folder}, ${n(c.uids.length)}`;
    case 'copy':
    case 'move':
      return `${c.kind} ${c.folder} -> ${c.to}, ${n(c.pairs.length)}`;
    case 'append':
      return `append to ${c.folder} (local UID ${c.uid})`;
    case 'create':
    case 'delete':
      return `${c.kind} folder ${c.folder}`;
    case 'rename':
      return `rename folder ${c.folder} -> ${c.to}`;
    default:
      return `unknown change ${JSON.stringify(c)}`;
  }
}

/** One line per entry not carried upstream yet (`journal list`). */
export function formatJournal(entries: readonly JournalEntry[], now = Date.now()): string[] {
  if (!entries.length) return ['journal is empty: every local IMAP change is upstream'];
  return entries.map((e) => {
    const when =
      e.state === 'failed'
        ? `FAILED (localpost journal retry ${e.id}, or drop ${e.id})`
        : e.state === 'inflight'
          ? 'being applied upstream'
          : `next attempt ${e.nextAttempt === undefined || e.nextAttempt <= now ? 'at the next pull' : relative(e.nextAttempt, now)}`;
    const tries = e.tries ? `, ${e.tries} tr${e.tries === 1 ? 'y' : 'ies'}` : '';
    const err = e.lastError ? `, last error: ${e.lastError}` : '';
    return `${e.id}  ${e.account}  ${new Date(e.createdAt).toISOString()}  ${describeChange(e.change)}  ${when}${tries}${err}`;
  });
}

/** The entries from the running daemon, else read-only from state.db. */
async function listEntries(cfg: Config): Promise<JournalEntry[]> {
  if (await lockHolder(cfg.dataDir)) {
    const live = await control.journal(cfg.dataDir).catch(() => undefined);
    if (live) return live;
  }
  const file = path.join(cfg.dataDir, 'state.db');
  if (!existsSync(file)) return [];
  const [{ default: Database }, { journalOf }] = await Promise.all([
    import('better-sqlite3'),
    import('../daemon/journal-report.js'),
  ]);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return journalOf(db)?.list() ?? [];
  } finally {
    db.close();
  }
}

/** Run one `journal` subcommand; returns the exit code. */
export async function journalCommand(
  cfg: Config,
  logger: () => Promise<Logger>,
  action: string,
  idText: string | undefined,
  io: CliOut = stdio,
): Promise<number> {
  if (action === 'list') {
    for (const line of formatJournal(await listEntries(cfg))) io.out(line);
    return OK;
  }
  if (action !== 'retry' && action !== 'drop') {
    io.err(`localpost: unknown journal action "${action}" (use list, retry ID or drop ID)`);
    return FAILURE;
  }
  const id = Number(idText);
  if (!idText || !Number.isSafeInteger(id) || id <= 0) {
    io.err(`localpost: journal ${action} needs the number of an entry (see "localpost journal list")`);
    return FAILURE;
  }
  const held = await lockOrDaemon(cfg, logger);
  if ('pid' in held) return throughDaemon(cfg.dataDir, held.pid, action, id, io);
  const { lock, log } = held;
  try {
    const [{ openStateDb }, { journalOf }] = await Promise.all([
      import('../cache/state-db.js'),
      import('../daemon/journal-report.js'),
    ]);
    const db = await openStateDb({ file: path.join(cfg.dataDir, 'state.db'), log });
    try {
      const journal = journalOf(db);
      if (!journal || !(action === 'retry' ? journal.retry(id) : journal.drop(id))) return notFound(action, id, io);
    } finally {
      db.close();
    }
    io.out(action === 'retry' ? `${id} queued: it is carried upstream at the next pull` : dropped(id));
    return OK;
  } catch (err) {
    io.err(`localpost: ${errorMessage(err)}`);
    return FAILURE;
  } finally {
    await lock.release();
  }
}

function dropped(id: number): string {
  return `${id} dropped: the change stays local and is never carried upstream`;
}

function notFound(action: 'retry' | 'drop', id: number, io: CliOut): number {
  io.err(`localpost: no ${action === 'retry' ? 'failed' : 'pending or failed'} journal entry ${id}`);
  return FAILURE;
}

/** retry or drop through the control socket of the daemon `pid`. */
async function throughDaemon(
  dataDir: string,
  pid: number,
  action: 'retry' | 'drop',
  id: number,
  io: CliOut,
): Promise<number> {
  try {
    if (action === 'retry') {
      await control.journalRetry(dataDir, id);
      io.out(`${id} queued: the daemon (pid ${pid}) carries it upstream now`);
    } else {
      await control.journalDrop(dataDir, id);
      io.out(dropped(id));
    }
    return OK;
  } catch (err) {
    if (err instanceof ControlRequestError && err.status === 404) return notFound(action, id, io);
    if (err instanceof ControlUnavailableError)
      io.err(`localpost: a daemon (pid ${pid}) is running on ${dataDir} but its control socket does not answer`);
    else io.err(`localpost: ${errorMessage(err)}`);
    return FAILURE;
  }
}
