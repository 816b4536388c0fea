/**
 * Carries an IMAP account's local changes upstream: the durable change journal
 * (`cache/mailboxes.ts` ChangeJournal) is drained in id order over one imapflow connection,
 * each entry exactly once whatever crashes (docs/imap-server.md):
 *
 *   markInflight(id, note)  — durable, before the first upstream change of the entry
 *   apply upstream           — journal-apply.ts
 *   complete(id, keys)       — durable; local messages get their upstream keys in the same transaction
 *
 * An entry found inflight (a crash, or a connection lost mid-command) is checked first: idempotent
 * kinds are applied again, append/copy/move look in their target for what landed (journal-landed.ts).
 *
 * Failures:
 * - the connection is lost or the server is unavailable: the drain stops; an append/copy/move
 *   already sent stays inflight (checked next time), anything else goes back to the queue with a
 *   growing `nextAttempt`;
 * - permanent (a folder or the messages gone upstream, a stale key the pull could not re-key):
 *   `fail(permanent)`, shown by `localpost journal`, and the drain goes on;
 * - a refusal the server may lift (NO without a telling code): retried with backoff, then given
 *   up as permanent after MAX_TRIES tries.
 * Entries wait in order: the drain stops at the first one whose `nextAttempt` is still ahead.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { ChangeJournal, JournalEntry } from '../../cache/mailboxes.js';
import type { ImapCursor } from '../../cache/message-store.js';
import { errorMessage, isOfflineError, TemporaryError } from '../../shared/errors.js';
import { withTlsHint } from '../tls-hint.js';
import type { UpstreamEndpoint } from '../types.js';
import { classifyImapError, createImapClient } from './connect.js';
import {
  type ApplyContext,
  applierOf,
  laterRenames,
  PermanentChangeError,
  type ReplayStore,
  targetFolder,
} from './journal-apply.js';
import type { MirrorStore } from './mirror.js';

export type { ReplayStore } from './journal-apply.js';

/** Tries (markInflight calls) after which an entry the server keeps refusing is given up. */
export const MAX_TRIES = 8;
/** First retry delay after a temporary failure; doubles per try, up to RETRY_MAX_MS. */
const RETRY_BASE_MS = 30_000;
const RETRY_MAX_MS = 60 * 60_000;

/** What the pull of an account served by the local IMAP server uses to carry changes both ways. */
export interface ImapChanges {
  journal: ChangeJournal;
  store: ReplayStore & MirrorStore;
}

/** What the replay needs besides the connection. */
export interface ReplayDeps {
  journal: ChangeJournal;
  store: ReplayStore;
  cursors: { getCursor(account: string, folder: string): ImapCursor | undefined };
  log: Logger;
  now?: () => number;
  signal?: AbortSignal;
}

/** What one drain did. */
export interface ReplayResult {
  /** Entries applied upstream and completed (recovered ones included). */
  applied: number;
  /** Of those, inflight entries found already applied (after a crash). */
  recovered: number;
  /** Entries failed permanently in this drain. */
  failed: number;
  /** Entries left pending (queued, inflight) when the drain stopped. */
  left: number;
  /** Why the drain stopped early (connection lost, a temporary failure), if it did. */
  stopped?: string;
}

/** Kinds not safe to send twice: after a failure once sent, they stay inflight for the landing check. */
const LANDING_KINDS = new Set(['append', 'copy', 'move']);

/** Drain the account's journal over `client` (connected). Never throws for one entry's failure. */
export async function replayJournal(client: ImapFlow, deps: ReplayDeps): Promise<ReplayResult> {
  const { journal, store, log } = deps;
  const now = deps.now ?? Date.now;
  const account = store.accountId;
  const ctx: ApplyContext = { client, store, cursors: deps.cursors, log, assigned: new Map(), localName: (f) => f };
  const result: ReplayResult = { applied: 0, recovered: 0, failed: 0, left: 0 };
  const entries = journal.pending(account);
  let i = 0;
  for (; i < entries.length; i++) {
    const entry = entries[i] as JournalEntry;
    if (deps.signal?.aborted) break;
    if (entry.state === 'queued' && entry.nextAttempt !== undefined && entry.nextAttempt > now()) {
      result.stopped = `entry ${entry.id} waits until ${new Date(entry.nextAttempt).toISOString()}`;
      break;
    }
    let marked = false;
    ctx.localName = laterRenames(entries, entry.id);
    try {
      const keys = await applyOne(ctx, entry, (note) => {
        journal.markInflight(entry.id, note);
        marked = true;
      });
      journal.complete(entry.id, keys.list);
      for (const k of keys.list) ctx.assigned.set(`${targetFolder(entry.change)}\0${k.uid}`, k.key);
      result.applied++;
      if (keys.recovered) result.recovered++;
      log.debug({ id: entry.id, kind: entry.change.kind, keys: keys.list.length }, 'journal entry applied upstream');
    } catch (caught) {
      const err = classifyImapError(caught);
      const msg = errorMessage(err);
      const temporary = !client.usable || err instanceof TemporaryError || isOfflineError(err);
      const giveUp = entry.tries + (marked ? 1 : 0) >= MAX_TRIES;
      if (err instanceof PermanentChangeError || (!temporary && giveUp)) {
        journal.fail(entry.id, msg, { permanent: true });
        result.failed++;
        log.warn(
          { id: entry.id, kind: entry.change.kind, folder: entry.change.folder, err: msg },
          'local change could not be applied upstream: given up (see `localpost journal`)',
        );
        continue;
      }
      // Sent (or maybe sent) and not safe to send twice: stays inflight, checked before the next try.
      if (!((marked || entry.state === 'inflight') && LANDING_KINDS.has(entry.change.kind))) {
        const tries = entry.tries + (marked ? 1 : 0);
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, tries - 1));
        journal.fail(entry.id, msg, { permanent: false, nextAttempt: now() + (temporary ? 0 : delay) });
      }
      result.stopped = msg;
      log.info({ id: entry.id, kind: entry.change.kind, err: msg }, 'journal replay stopped: retried later');
      break;
    }
  }
  result.left = entries.length - result.applied - result.failed;
  if (result.applied || result.failed) log.info({ ...result }, 'journal replay done');
  return result;
}

/** One entry: the landing check of an inflight one, else (again) the applier with `markInflight` first. */
async function applyOne(
  ctx: ApplyContext,
  entry: JournalEntry,
  mark: (note?: string) => void,
): Promise<{ list: Array<{ uid: number; key: string }>; recovered: boolean }> {
  const applier = applierOf(entry.change);
  if (entry.state === 'inflight' && applier.recover) {
    const keys = await applier.recover(ctx, entry.change, entry);
    if (keys) return { list: keys, recovered: true };
  }
  let marked = false;
  const list = await applier.run(ctx, entry.change, (note) => {
    if (marked) return; // once per try: tries counts attempts, not commands
    marked = true;
    mark(note);
  });
  return { list, recovered: false };
}

/**
 * A drain on a connection of its own (the prompt replay after a local change, outside a pull).
 * Connection failures reject (classified like a pull's: offline, auth, throttled).
 */
export async function replayAccount(endpoint: UpstreamEndpoint, deps: ReplayDeps): Promise<ReplayResult> {
  const client = createImapClient(endpoint, deps.log);
  client.on('error', (err: Error) => deps.log.debug({ err: err.message }, 'imap connection error (journal replay)'));
  await client.connect().catch((err: unknown) => {
    throw withTlsHint(err);
  });
  try {
    const r = await replayJournal(client, deps);
    await client.logout();
    return r;
  } finally {
    client.close();
  }
}
