/**
 * The durable outbox: the queue of accepted messages, one lock per entry, and the commands on
 * it (record an attempt, give up, retry, drop). Failure semantics first:
 *
 * - **Accepted means durable** (`accept.ts`). `enqueue()` resolves only after `<id>.eml`
 *   (the client's bytes, never rewritten) and `<id>.json` (envelope with every RCPT, Bcc
 *   included, and delivery state) are fsynced in `outbox/tmp/`, renamed into `outbox/` and the
 *   directory fsynced. Only then may the SMTP listener answer 250. Any failure on the way (disk
 *   full included) rejects, and the files written so far are removed: nothing half-written
 *   stays behind. A crash leaves at worst temp files or an `.eml` without its `.json`, which
 *   start-up recovery removes, since neither was ever acknowledged. (After a kill between the
 *   last rename and the client reading 250, the message is queued although the client may not
 *   know it: the usual SMTP window, kept to one directory fsync.)
 * - **Duplicates.** A message with the same Message-ID, envelope and bytes from the same
 *   account, accepted within `dedupeWindowMs` (30 minutes) of a queued or sent copy, is
 *   acknowledged with the earlier id and not queued again.
 * - **Per-recipient state.** Each attempt is recorded with `recordAttempt()`: recipients the
 *   upstream accepted become `sent` (written durably before anything else happens),
 *   permanently refused ones become `failed` and are bounced into the sender's local INBOX
 *   (`bounce.ts`), the rest stay `pending` with the next attempt time the caller computed
 *   (`transitions.ts`).
 * - **Finishing.** An entry with nothing pending leaves the queue: deleted when everything was
 *   sent, moved to `outbox/failed/` when anything failed. `giveUp()` (maxAge) fails every
 *   pending recipient at once. `retry()` re-queues a failed entry; `drop()` deletes one.
 * - **Moves are ordered so that recovery can finish them:** the `.eml` leaves `outbox/`
 *   before its `.json`, and comes back after it (see `recovery.ts`).
 *
 * The JSON is the truth; the state.db rows (`rows.ts`) follow it. Operations on one entry run
 * one at a time, in call order.
 */
import { EventEmitter } from 'node:events';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../shared/clock.js';
import { DirSyncer, fsyncDir, renameDurable, writeFileDurable } from '../../shared/durable-fs.js';
import { errorMessage } from '../../shared/errors.js';
import { KeyedSerial } from '../../shared/serial.js';
import type { AccountStore } from '../message-store.js';
import type { StateDb } from '../state-db.js';
import { type AcceptContext, accept, type EnqueueRequest, type EnqueueResult } from './accept.js';
import type { BounceReason } from './bounce.js';
import { CommitGroup } from './commit-group.js';
import {
  dedupeKey,
  entryState,
  isOutboxId,
  type OutboxEntry,
  parseEntry,
  pendingRecipients,
  serializeEntry,
} from './entry.js';
import { defaultIo, type OutboxIo } from './io.js';
import { type OutboxRecoveryReport, recoverOutbox } from './recovery.js';
import { OutboxIndex, openIndexDb } from './rows.js';
import {
  type AttemptRecord,
  applyAttempt,
  bounce,
  exists,
  leaveQueue,
  type TransitionContext,
  unbounced,
} from './transitions.js';

export { type EnqueueRequest, type EnqueueResult, MessageTooLargeError } from './accept.js';
export type { OutboxIo, OutboxWriteHandle } from './io.js';
export type { AttemptRecord, RcptOutcome } from './transitions.js';

/** Options of `Outbox.open`. */
export interface OutboxOptions {
  dataDir: string;
  db: StateDb;
  log: Logger;
  clock?: Clock;
  /** The store of an account, for bounces; undefined when the account is not configured. */
  bounceStore?: (account: string) => AccountStore | undefined;
  /** Window of duplicate detection; default 30 minutes. */
  dedupeWindowMs?: number;
  /** Keep rows of sent and dropped entries this long; default 7 days. */
  historyMs?: number;
  io?: Partial<OutboxIo>;
}

const DEFAULT_DEDUPE_MS = 30 * 60_000;
const DEFAULT_HISTORY_MS = 7 * 24 * 3_600_000;

/** The outbox: see the module comment. Emits `queued` (entry) when something became due. */
export class Outbox extends EventEmitter {
  /** `outbox/` */
  readonly dir: string;
  readonly index: OutboxIndex;
  private readonly entries = new Map<string, OutboxEntry>();
  /** Row updates waiting for the end of the turn (`putRowSoon`). */
  private rowBatch: { fn: () => void; resolve: () => void }[] = [];
  /** Operations on one entry, by id, one at a time. */
  private readonly locks = new KeyedSerial<string>();
  private readonly io: OutboxIo;
  private readonly dirSync: DirSyncer;
  private readonly clock: Clock;
  private readonly acceptContext: AcceptContext;
  private readonly transitions: TransitionContext;
  private readonly log: Logger;
  /** What start-up recovery did. */
  recovery?: OutboxRecoveryReport;

  private constructor(o: OutboxOptions) {
    super();
    this.dir = path.join(o.dataDir, 'outbox');
    this.index = new OutboxIndex(openIndexDb(o.db));
    this.io = { ...defaultIo, ...o.io };
    this.dirSync = new DirSyncer(this.dir, (d) => this.io.fsyncDir(d), true); // changes made in one turn share an fsync
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
    this.acceptContext = {
      dir: this.dir,
      io: this.io,
      commits: new CommitGroup({ io: this.io, dirSync: this.dirSync, index: this.index }),
      index: this.index,
      clock: this.clock,
      log: this.log,
      dedupeWindowMs: o.dedupeWindowMs ?? DEFAULT_DEDUPE_MS,
      inflight: new Map(),
    };
    this.transitions = {
      dir: this.dir,
      failedDir: this.failedDir,
      dirSync: this.dirSync,
      clock: this.clock,
      log: this.log,
      bounceStore: o.bounceStore,
    };
  }

  /** Create the directories, run start-up recovery, load the queue. */
  static async open(o: OutboxOptions): Promise<Outbox> {
    const ob = new Outbox(o);
    try {
      const { report, queued } = await recoverOutbox({
        dir: ob.dir,
        index: ob.index,
        log: ob.log,
        now: ob.clock.now(),
        finish: (e) => ob.finish(e),
      });
      for (const e of queued) ob.entries.set(e.id, e);
      ob.recovery = report;
      ob.index.prune(ob.clock.now() - (o.historyMs ?? DEFAULT_HISTORY_MS));
    } catch (err) {
      ob.close();
      throw err;
    }
    return ob;
  }

  /** Close the index connection (the files need no closing). */
  close(): void {
    this.flushRows();
    if (this.index.db.open) this.index.db.close();
  }

  /** `outbox/failed/` */
  get failedDir(): string {
    return path.join(this.dir, 'failed');
  }

  /** Queued entries, oldest first (live objects: do not modify). */
  queued(): OutboxEntry[] {
    return [...this.entries.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** A queued entry. */
  get(id: string): OutboxEntry | undefined {
    return this.entries.get(id);
  }

  /** Path of a queued entry's message. */
  messagePath(id: string): string {
    return path.join(this.dir, `${id}.eml`);
  }

  /** Entries in `failed/`, oldest first. */
  async failed(): Promise<OutboxEntry[]> {
    const names = await readdir(this.failedDir).catch(() => [] as string[]);
    const out: OutboxEntry[] = [];
    for (const n of names) {
      const id = n.endsWith('.json') ? n.slice(0, -5) : '';
      if (!isOutboxId(id)) continue;
      try {
        out.push(parseEntry(await readFile(path.join(this.failedDir, n), 'utf8'), id));
      } catch (err) {
        this.log.warn({ id, err: errorMessage(err) }, 'unreadable failed outbox entry');
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Stream a submitted message into the outbox; resolves once it is durable (see the module
   * comment and `outbox-accept.ts`). Always reads `source` to its end, even after a failure,
   * so that the SMTP session can answer. Rejects with MessageTooLargeError, or any local error
   * (→ 451).
   */
  async enqueue(req: EnqueueRequest, source: AsyncIterable<Buffer>): Promise<EnqueueResult> {
    const r = await accept(this.acceptContext, req, source);
    if ('duplicateOf' in r) {
      this.log.info(
        { id: r.duplicateOf, account: req.account },
        'duplicate submission: already queued or sent, not queued again',
      );
      return { id: r.duplicateOf, duplicate: true };
    }
    this.entries.set(r.entry.id, r.entry);
    this.log.info(
      { id: r.entry.id, account: req.account, size: r.entry.size, recipients: r.entry.recipients.length },
      'message queued',
    );
    this.emit('queued', r.entry);
    return { id: r.entry.id, duplicate: false };
  }

  /** Record one attempt (see AttemptRecord); resolves with the entry, or undefined if it is gone. */
  recordAttempt(id: string, rec: AttemptRecord): Promise<OutboxEntry | undefined> {
    return this.locks.run(id, async () => {
      const e = this.entries.get(id);
      if (!e) return undefined;
      applyAttempt(e, rec);
      // "sent" is on disk before anything else happens. When everything is sent, removing
      // the entry is that record (one directory fsync instead of a rewrite, then a removal).
      if (entryState(e) === 'sent') await this.finish(e);
      else await this.persist(e);
      await this.settle(e, 'rejected');
      return e;
    });
  }

  /** Fail every pending recipient (maxAge passed): bounce, move to failed/. */
  giveUp(id: string, why: string): Promise<OutboxEntry | undefined> {
    return this.locks.run(id, async () => {
      const e = this.entries.get(id);
      if (!e) return undefined;
      const at = this.clock.now();
      for (const r of pendingRecipients(e)) Object.assign(r, { state: 'failed', at, response: r.response ?? why });
      e.lastError = why;
      await this.persist(e);
      await this.settle(e, 'expired');
      return e;
    });
  }

  /**
   * Record in the index (for `status`) that nothing of `account` is tried before `until`, or,
   * with 0, that its entries are due at their own times again. The JSON files are not touched.
   */
  showAccountBlocked(account: string, until: number): void {
    this.safely(() =>
      this.index.db.transaction(() => {
        for (const e of this.entries.values())
          if (e.account === account) this.index.setNextAttempt(e.id, Math.max(e.nextAttempt, until));
      })(),
    );
  }

  /** Make a queued entry due now, or put a failed one back in the queue. Returns false if unknown. */
  retry(id: string): Promise<boolean> {
    if (!isOutboxId(id)) return Promise.resolve(false);
    return this.locks.run(id, async () => {
      const now = this.clock.now();
      const queued = this.entries.get(id);
      if (queued) {
        queued.nextAttempt = now;
        await this.persist(queued);
        this.emit('queued', queued);
        return true;
      }
      const jsonFile = path.join(this.failedDir, `${id}.json`);
      let e: OutboxEntry;
      try {
        e = parseEntry(await readFile(jsonFile, 'utf8'), id);
      } catch {
        return false;
      }
      for (const r of e.recipients) {
        if (r.state !== 'failed') continue;
        r.state = 'pending';
        delete r.at;
        delete r.bounced;
      }
      Object.assign(e, { queuedAt: now, nextAttempt: now, tries: 0 });
      // The .json comes back first; recovery completes a move whose .eml is still in failed/.
      await writeFileDurable(path.join(this.dir, `${id}.json`), serializeEntry(e));
      await rm(jsonFile, { force: true });
      await renameDurable(path.join(this.failedDir, `${id}.eml`), this.messagePath(id));
      this.entries.set(id, e);
      this.index.put(e, dedupeKey(e));
      this.log.info({ id }, 'failed message queued again');
      this.emit('queued', e);
      return true;
    });
  }

  /** Delete a queued or failed entry. Returns false if unknown. */
  drop(id: string): Promise<boolean> {
    if (!isOutboxId(id)) return Promise.resolve(false);
    return this.locks.run(id, async () => {
      const inQueue = this.entries.delete(id);
      const dir = inQueue ? this.dir : this.failedDir;
      const eml = path.join(dir, `${id}.eml`);
      const json = path.join(dir, `${id}.json`);
      const present = inQueue || (await exists(json));
      if (!present) return false;
      await rm(eml, { force: true });
      await rm(json, { force: true });
      await fsyncDir(dir);
      this.index.setState(id, 'dropped', this.clock.now());
      this.log.info({ id }, 'outbox entry dropped');
      return true;
    });
  }

  /** Bounce newly failed recipients, then finish the entry when nothing is pending. */
  private async settle(e: OutboxEntry, reason: BounceReason): Promise<void> {
    const failed = unbounced(e);
    if (failed.length) {
      await bounce(this.transitions, e, failed, reason, this.messagePath(e.id));
      await this.persist(e);
    }
    if (entryState(e) !== 'queued' && this.entries.has(e.id)) await this.finish(e);
  }

  /** Take a finished entry out of the queue: delete it (all sent) or move it to failed/. */
  private async finish(e: OutboxEntry): Promise<void> {
    const state = entryState(e);
    await leaveQueue(this.transitions, e);
    this.entries.delete(e.id);
    const at = this.clock.now();
    await this.putRowSoon(() => this.index.put(e, dedupeKey(e), at));
    this.log.info({ id: e.id, state, tries: e.tries }, state === 'sent' ? 'message sent' : 'message moved to failed/');
  }

  /** Rewrite `<id>.json` durably and refresh its row. */
  private async persist(e: OutboxEntry): Promise<void> {
    await writeFileDurable(path.join(this.dir, `${e.id}.json`), serializeEntry(e));
    this.safely(() => this.index.put(e, dedupeKey(e)));
  }

  /**
   * Row updates that follow a durable change, written together at the end of the event loop's
   * turn: the sends finished at the same time share one transaction. Resolves once written (or
   * logged as failed: the rows can be rebuilt from the files).
   */
  private putRowSoon(fn: () => void): Promise<void> {
    return new Promise((resolve) => {
      if (!this.rowBatch.length) setImmediate(() => this.flushRows());
      this.rowBatch.push({ fn, resolve });
    });
  }

  private flushRows(): void {
    const batch = this.rowBatch;
    this.rowBatch = [];
    if (!batch.length) return;
    if (this.index.db.open)
      this.safely(() =>
        this.index.db.transaction(() => {
          for (const b of batch) b.fn();
        })(),
      );
    for (const b of batch) b.resolve();
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'could not update the outbox index in state.db');
    }
  }
}
