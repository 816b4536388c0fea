/**
 * What happens to one queued outbox entry after an attempt: the recipients' new states, bounces
 * for the ones that failed, and leaving the queue (deleted when everything was sent, moved to
 * `outbox/failed/` when anything failed). `outbox.ts` runs these under the entry's lock and
 * keeps its queue and the state.db rows in step.
 *
 * Invariants:
 * - Only a pending recipient changes; a reply for one already sent or failed is ignored.
 * - A failed recipient is bounced at most once (`bounced`); when its bounce cannot be written
 *   (no store, a local error) that is logged and the entry goes on, never stuck in the queue.
 * - Moves are ordered so that start-up recovery (`recovery.ts`) can finish them: a failed
 *   entry's `.eml` moves to `failed/` before its `.json`; a sent entry loses its `.json` first,
 *   since a lone `.eml` is deleted at start-up.
 */
import { rmSync } from 'node:fs';
import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.js';
import { type DirSyncer, renameDurable, writeFileDurable } from '../../shared/durable-fs.js';
import { errorMessage } from '../../shared/errors.js';
import type { AccountStore } from '../message-store.js';
import { type BounceReason, deliverBounce, readHeaderBlock } from './bounce.js';
import { entryState, type OutboxEntry, type OutboxRecipient, serializeEntry } from './entry.js';

/** One recipient's reply in an attempt. */
export interface RcptOutcome {
  address: string;
  code?: number;
  response?: string;
}

/** The outcome of one delivery attempt. */
export interface AttemptRecord {
  at: number;
  /** Recipients the upstream accepted (250 after DATA). */
  sent?: RcptOutcome[];
  /** Recipients refused for good. */
  failed?: RcptOutcome[];
  /** Recipients refused for now (their reply is kept; they stay pending). */
  deferred?: RcptOutcome[];
  /** Why anything is still pending; counts as a failed try. */
  error?: string;
  /** When to try the pending recipients again. */
  nextAttempt?: number;
}

/** Applies an attempt to the entry in memory: recipients' states and replies, tries, next attempt. */
export function applyAttempt(e: OutboxEntry, rec: AttemptRecord): void {
  const byAddr = new Map(e.recipients.map((r) => [r.address, r]));
  const set = (list: RcptOutcome[] | undefined, state: OutboxRecipient['state']) => {
    for (const o of list ?? []) {
      const r = byAddr.get(o.address);
      if (r?.state !== 'pending') continue;
      r.state = state;
      if (o.code !== undefined) r.code = o.code;
      if (o.response !== undefined) r.response = o.response;
      if (state !== 'pending') r.at = rec.at;
    }
  };
  set(rec.sent, 'sent');
  set(rec.failed, 'failed');
  set(rec.deferred, 'pending');
  e.lastAttempt = rec.at;
  if (rec.error !== undefined) {
    e.tries++;
    e.lastError = rec.error;
  }
  if (rec.nextAttempt !== undefined) e.nextAttempt = rec.nextAttempt;
}

/** What the transitions need of the outbox. */
export interface TransitionContext {
  /** `outbox/` */
  dir: string;
  /** `outbox/failed/` */
  failedDir: string;
  /** Batches the fsyncs of `outbox/`. */
  dirSync: DirSyncer;
  clock: Clock;
  log: Logger;
  /** The store of an account, for bounces; undefined when the account is not configured. */
  bounceStore?: (account: string) => AccountStore | undefined;
}

/** Recipients that failed and have no bounce yet. */
export function unbounced(e: OutboxEntry): OutboxRecipient[] {
  return e.recipients.filter((r) => r.state === 'failed' && !r.bounced);
}

/** Writes a bounce for `failed` into the sender's INBOX; marks them bounced (in memory). */
export async function bounce(
  ctx: TransitionContext,
  e: OutboxEntry,
  failed: OutboxRecipient[],
  reason: BounceReason,
  eml: string,
): Promise<void> {
  const store = ctx.bounceStore?.(e.account);
  if (!store) {
    ctx.log.error({ id: e.id, account: e.account }, 'cannot bounce: the account is not configured any more');
  } else {
    try {
      const originalHeader = await readHeaderBlock(eml).catch(() => Buffer.alloc(0));
      await deliverBounce(store, { entry: e, failed, reason, originalHeader, now: ctx.clock.now() });
      ctx.log.warn(
        { id: e.id, account: e.account, failed: failed.map((r) => r.address), reason },
        'delivery failed: bounce put in the local inbox',
      );
    } catch (err) {
      ctx.log.error({ id: e.id, err: errorMessage(err) }, 'could not write the bounce into the local inbox');
      return;
    }
  }
  for (const r of failed) r.bounced = true;
}

/**
 * Takes a finished entry's files out of the queue: deletes them (all sent) or moves them to
 * failed/, bouncing any failed recipient not bounced yet; then fsyncs `outbox/`.
 */
export async function leaveQueue(ctx: TransitionContext, e: OutboxEntry): Promise<void> {
  const eml = path.join(ctx.dir, `${e.id}.eml`);
  const json = path.join(ctx.dir, `${e.id}.json`);
  if (entryState(e) === 'failed') {
    const failedEml = path.join(ctx.failedDir, `${e.id}.eml`);
    const left = unbounced(e);
    if (left.length) await bounce(ctx, e, left, 'rejected', (await exists(eml)) ? eml : failedEml);
    await renameIfPresent(eml, failedEml);
    await writeFileDurable(path.join(ctx.failedDir, `${e.id}.json`), serializeEntry(e));
    await rm(json, { force: true });
  } else {
    // The .json goes first: without it the entry is finished (a lone .eml is deleted at start-up).
    // Synchronous unlinks: metadata in memory, no thread-pool hop; the directory fsync is shared.
    rmSync(json, { force: true });
    rmSync(eml, { force: true });
  }
  await ctx.dirSync.sync();
}

export async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await renameDurable(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
