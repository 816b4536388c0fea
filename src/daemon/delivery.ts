/**
 * The delivery loop: sends queued outbox entries through each account's upstream whenever it
 * is reachable; being offline only delays mail, and nothing is sent twice.
 *
 * - Each account's due entries go over its sender's pooled connections (`outgoing.maxConnections`),
 *   one message at a time on each; accounts run in parallel. On a connection, a send starts only
 *   once the previous send's result is recorded, so a kill -9 can repeat at most one message per
 *   connection: the ones on the wire, whose 250 may have come before the record
 *   (docs/guarantees.md). An entry is due when its stored `nextAttempt` has come (or a flush asked for
 *   it) and its account is not blocked. One timer wakes the loop at the earliest stored time.
 * - A per-recipient result is recorded at once (`Outbox.recordAttempt`: "sent" is durable
 *   before anything else, so nothing is sent twice). Deferred recipients, and a message-level 4xx, reschedule the
 *   entry alone with exponential backoff and jitter (`retry-policy.ts`).
 * - A connection-level failure (network, timeout, 421), a refused login or a TLS/config fault
 *   also blocks the whole account for a backoff period, so one outage costs one attempt, not
 *   one per message. Nothing but a permanent reply fails a recipient; a refused login is
 *   logged at error level once per change of state (loud, but the mail stays), being offline at warn once.
 * - `flush()` (at start, when connectivity says "back online", or from the CLI) lifts every
 *   block and makes every entry due at once. Entries past `maxAge` are given up (bounced) even while blocked.
 * - `stop()` aborts sends in flight; an aborted attempt is not counted.
 */
import { link, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { type OutboxEntry, pendingRecipients } from '../cache/outbox/entry.js';
import type { Outbox } from '../cache/outbox/outbox.js';
import { isExpired, nextAttemptAt, type RetryPolicy, retryDelay } from '../cache/retry-policy.js';
import { type Clock, systemClock } from '../shared/clock.js';
import { errorMessage } from '../shared/errors.js';
import { type FailureScope, type SendResult, scopeOf } from '../upstream/smtp/classify.js';
import type { Sender } from '../upstream/smtp/sender.js';

/** Called with a hard link to a sent message (valid during the call): `outgoing.saveSent`. */
export type SentCopy = (file: string, entry: OutboxEntry) => Promise<void>;

/** Options of `DeliveryService`. */
export interface DeliveryOptions {
  outbox: Outbox;
  /** The sender of an account; undefined when it has no outgoing server. May throw (bad secret). */
  senderFor(account: string): Promise<Sender | undefined>;
  policy(): RetryPolicy;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  /** The Sent-folder upload of an account, when configured. */
  sentCopy?(account: string): SentCopy | undefined;
  /** Told whether an account's upstream answered (a hint for the connectivity monitor). */
  onReachability?(account: string, reachable: boolean): void;
}

/** What the loop knows about an account's upstream. */
export interface AccountDeliveryState {
  /** Consecutive account-level failures. */
  failures: number;
  /** No attempt before this time (0: not blocked). */
  blockedUntil: number;
  problem?: Exclude<FailureScope, 'message'>;
  lastError?: string;
}

const MAX_TIMER = 2 ** 31 - 1;

/** A send's outcome: whether its account is blocked now, its record, and all its bookkeeping. */
interface Attempt {
  blocked: boolean;
  recorded: Promise<void>;
  after: Promise<void>;
}

/** The delivery loop (see the module comment). */
export class DeliveryService {
  private readonly states = new Map<string, AccountDeliveryState>();
  private readonly forced = new Set<string>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private abort = new AbortController();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private watching = false;
  private readonly onQueued = () => this.kick();

  constructor(private readonly o: DeliveryOptions) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
  }

  /** Start watching the outbox and arming timers; due entries are sent right away. (Without
   * `start()`, `run()` and `flush()` still work: one pass, as the CLI uses them.) */
  start(): void {
    this.stopped = false;
    this.watching = true;
    this.abort = new AbortController();
    this.o.outbox.on('queued', this.onQueued);
    void this.flush(); // a (re)start is a moment to try everything: the user may just have fixed something
  }

  /** Stop: no new attempts, abort the ones in flight, wait for the loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.o.outbox.off('queued', this.onQueued);
    clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  /** The state of an account's upstream, for `status`. */
  state(account: string): AccountDeliveryState | undefined {
    const s = this.states.get(account);
    return s ? { ...s } : undefined;
  }

  /** When the entry will be tried: its stored time, or later if its account is blocked. */
  effectiveNextAttempt(e: OutboxEntry): number {
    return Math.max(e.nextAttempt, this.states.get(e.account)?.blockedUntil ?? 0);
  }

  /** Lift every block and send everything queued now (or only one account's). */
  flush(account?: string): Promise<void> {
    for (const [id, s] of this.states) {
      if ((account && id !== account) || !s.blockedUntil) continue;
      s.blockedUntil = 0;
      this.o.outbox.showAccountBlocked(id, 0);
    }
    for (const e of this.o.outbox.queued()) if (!account || e.account === account) this.forced.add(e.id);
    return this.run();
  }

  /** Run the loop soon. */
  kick(): void {
    if (!this.stopped && this.watching)
      setImmediate(() => {
        void this.run();
      });
  }

  /** One pass over the queue; concurrent calls join (and cause one more pass). */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
      this.schedule();
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    const byAccount = new Map<string, OutboxEntry[]>();
    for (const e of this.o.outbox.queued()) {
      const list = byAccount.get(e.account) ?? [];
      list.push(e);
      byAccount.set(e.account, list);
    }
    await Promise.all([...byAccount].map(([account, entries]) => this.deliverAccount(account, entries)));
  }

  /**
   * Send an account's due entries over its sender's connections: as many lanes as connections,
   * each taking the next due entry. In a lane, a send starts only once the previous send's
   * record is durable, so at most one message per connection is sent and unrecorded (see the
   * module comment); the Sent copy of a finished send overlaps the lane's next send, and records
   * stay in order within the lane.
   */
  private async deliverAccount(account: string, entries: OutboxEntry[]): Promise<void> {
    const policy = this.o.policy();
    const blockedUntil = this.stateOf(account).blockedUntil;
    if (blockedUntil > this.clock.now()) this.o.outbox.showAccountBlocked(account, blockedUntil); // entries queued since
    const sender = await this.o.senderFor(account).catch(() => undefined);
    const lanes = Math.max(1, Math.min(entries.length, sender?.connections ?? 1));
    let next = 0;
    const lane = async () => {
      let after: Promise<void> = Promise.resolve();
      let recorded: Promise<void> = Promise.resolve();
      try {
        for (let e = entries[next++]; e; e = entries[next++]) {
          if (this.stopped) return;
          const now = this.clock.now();
          if (isExpired(e.queuedAt, now, policy)) {
            await this.expire(e);
            continue;
          }
          // once the account is blocked, the rest of its entries only get the maxAge check
          const due = this.forced.has(e.id) || e.nextAttempt <= now;
          if (!due || this.stateOf(account).blockedUntil > now) continue;
          this.forced.delete(e.id);
          // Never two sends unrecorded on one connection: a kill then repeats at most the one on the wire.
          await recorded;
          const r = await this.attempt(e, after);
          await after;
          after = r.after;
          recorded = r.recorded;
        }
      } finally {
        await after;
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  /**
   * Send one entry. Resolves once the upstream answered, with whether its account is blocked
   * now, its record and the bookkeeping still running (`previous` is awaited before they start).
   */
  private async attempt(e: OutboxEntry, previous: Promise<void>): Promise<Attempt> {
    const account = e.account;
    const log = this.log.child({ account, id: e.id });
    const blocked = (scope: Exclude<FailureScope, 'message'>, message: string) => {
      this.accountFailed(account, scope, message);
      return { blocked: true, after: previous, recorded: previous };
    };
    let sender: Sender | undefined;
    try {
      sender = await this.o.senderFor(account);
    } catch (err) {
      return blocked('config', errorMessage(err));
    }
    if (!sender) return blocked('config', `account ${account} has no outgoing server configured`);
    const copy = this.o.sentCopy?.(account);
    const copyFile = copy ? path.join(this.o.outbox.dir, 'tmp', `${e.id}.sent-copy.eml`) : undefined;
    if (copyFile) await link(this.o.outbox.messagePath(e.id), copyFile).catch(() => undefined);
    const cleanup = async () => {
      if (copyFile) await rm(copyFile, { force: true });
    };
    const policy = this.o.policy();
    const retryAt = (at: number) =>
      nextAttemptAt({ tries: e.tries + 1, now: at, queuedAt: e.queuedAt }, policy, this.o.random);
    const to = pendingRecipients(e).map((r) => r.address);
    let result: SendResult;
    try {
      result = await sender.send(
        { path: this.o.outbox.messagePath(e.id), from: e.from, to, size: e.size, eightBit: e.eightBit },
        this.abort.signal,
      );
    } catch (err) {
      if (this.stopped) {
        await cleanup();
        return { blocked: true, after: previous, recorded: previous }; // aborted by stop(): not a try
      }
      const at = this.clock.now();
      const scope = scopeOf(err);
      const message = errorMessage(err);
      const after = this.chain(previous, log, async () => {
        await cleanup();
        await this.o.outbox.recordAttempt(e.id, { at, error: message, nextAttempt: retryAt(at) });
      });
      if (scope === 'message') {
        log.info({ err: message }, 'upstream deferred the message; will retry');
        return { blocked: false, after, recorded: after };
      }
      this.accountFailed(account, scope, message);
      return { blocked: true, after, recorded: after };
    }
    const at = this.clock.now();
    this.accountWorks(account);
    const sent = result;
    let saved = false;
    const recorded = this.chain(previous, log, async () => {
      const first = sent.deferred[0];
      await this.o.outbox.recordAttempt(e.id, {
        at,
        sent: sent.sent,
        failed: sent.failed,
        deferred: sent.deferred,
        ...(first
          ? {
              error: `${sent.deferred.length} recipient(s) deferred: ${first.response ?? first.code}`,
              nextAttempt: retryAt(at),
            }
          : {}),
      });
      saved = true;
      log.debug(
        { sent: sent.sent.length, failed: sent.failed.length, deferred: sent.deferred.length },
        'delivery attempt',
      );
    });
    // the Sent copy may overlap the next send; the temp link goes whatever happened
    const after = this.chain(recorded, log, async () => {
      try {
        if (saved && copy && copyFile && sent.sent.length) {
          await copy(copyFile, e).catch((err: unknown) =>
            log.warn({ err: errorMessage(err) }, 'could not file a copy in the Sent folder'),
          );
        }
      } finally {
        await cleanup();
      }
    });
    return { blocked: false, after, recorded };
  }

  /** Run `fn` after `previous`; a failure is logged (the entry stays as it was on disk). */
  private chain(previous: Promise<void>, log: Logger, fn: () => Promise<void>): Promise<void> {
    return previous
      .then(fn)
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'could not record a delivery attempt'));
  }

  /** Give up an entry whose maxAge has passed. */
  private async expire(e: OutboxEntry): Promise<void> {
    this.forced.delete(e.id);
    await this.o.outbox.giveUp(
      e.id,
      `not delivered within outbox.maxAge${e.lastError ? `; last error: ${e.lastError}` : ''}`,
    );
  }

  private stateOf(account: string): AccountDeliveryState {
    let s = this.states.get(account);
    if (!s) {
      s = { failures: 0, blockedUntil: 0 };
      this.states.set(account, s);
    }
    return s;
  }

  private accountWorks(account: string): void {
    const s = this.stateOf(account);
    this.o.onReachability?.(account, true);
    if (s.problem)
      this.log.info(
        { account },
        s.problem === 'auth' ? 'upstream SMTP accepts the login again' : 'upstream SMTP reachable again: sending',
      );
    if (s.blockedUntil) this.o.outbox.showAccountBlocked(account, 0);
    Object.assign(s, { failures: 0, blockedUntil: 0, problem: undefined, lastError: undefined });
  }

  private accountFailed(account: string, scope: Exclude<FailureScope, 'message'>, message: string): void {
    const s = this.stateOf(account);
    const now = this.clock.now();
    s.failures++;
    s.blockedUntil = now + retryDelay(s.failures, this.o.policy(), this.o.random);
    s.lastError = message;
    this.o.outbox.showAccountBlocked(account, s.blockedUntil);
    if (scope === 'connection') this.o.onReachability?.(account, false);
    if (s.problem === scope) return;
    s.problem = scope;
    const queued = this.o.outbox.queued().filter((e) => e.account === account).length;
    if (scope === 'auth') {
      this.log.error(
        { account, err: message, queued },
        'upstream SMTP refused the login: check outgoing.password (queued mail is kept and retried)',
      );
    } else if (scope === 'config') {
      this.log.error(
        { account, err: message, queued },
        'cannot send: check the outgoing server settings (queued mail is kept and retried)',
      );
    } else {
      this.log.warn({ account, err: message, queued }, 'upstream SMTP unreachable: mail stays queued until it is back');
    }
  }

  /** Arm the timer for the earliest moment anything can happen. */
  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped || !this.watching) return;
    const policy = this.o.policy();
    let wake = Infinity;
    for (const e of this.o.outbox.queued()) {
      const attemptAt = Math.max(
        this.forced.has(e.id) ? 0 : e.nextAttempt,
        this.states.get(e.account)?.blockedUntil ?? 0,
      );
      wake = Math.min(wake, attemptAt, e.queuedAt + policy.maxAge);
    }
    if (wake === Infinity) return;
    const delay = Math.min(MAX_TIMER, Math.max(0, wake - this.clock.now()));
    this.timer = setTimeout(() => {
      void this.run();
    }, delay);
    this.timer.unref();
  }
}
