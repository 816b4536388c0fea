/**
 * Batched durable writing shared by the fetchers (invariant 6 in docs/architecture.md): each message is
 * streamed into the store's tmp/ and finished (fsync + rename) while the next ones download, up
 * to MAX_INFLIGHT at once, so the file system commits their fsyncs together; every
 * BATCH_MAX_MESSAGES messages or BATCH_MAX_MS the batch is committed (once every message in
 * flight is finished: one directory fsync, one SQLite transaction) and only then handed to
 * `afterCommit`, where a fetcher may delete the batch upstream (invariant 3).
 */
import type { Writable } from 'node:stream';
import type { AccountStore, CachedMessage, PendingMessage } from '../cache/message-store.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import { BATCH_MAX_MESSAGES, BATCH_MAX_MS } from './types.js';

/**
 * At most this many messages finishing (writev, fsync, close, rename) at once: an open descriptor
 * each, but no buffered bytes (written before the fsync), so the download seldom waits for the
 * disk. Each holds at most one thread-pool job at a time, and libuv runs UV_THREADPOOL_SIZE
 * jobs at once (4 by default). The process cannot raise that itself: Node's ES module loader
 * starts the pool while loading the entry point, before any of our code runs.
 */
const MAX_INFLIGHT = 64;

export interface BatchWriterOptions {
  /** Runs inside the commit's SQLite transaction (cursor updates). */
  inTransaction?: () => void;
  /** Runs after each commit resolved, with the messages now durable. */
  afterCommit?: (committed: CachedMessage[]) => Promise<void>;
  clock?: Clock;
  maxMessages?: number;
  maxMs?: number;
}

/** Writes messages into an AccountStore in durable batches. */
export class BatchWriter {
  private inflight: Promise<CachedMessage>[] = [];
  /** Those of `inflight` not settled yet. */
  private readonly running = new Set<Promise<unknown>>();
  private batchStart = 0;
  private readonly clock: Clock;
  /** Messages and bytes committed so far. */
  committedCount = 0;
  committedBytes = 0;

  constructor(
    private readonly store: AccountStore,
    private readonly opts: BatchWriterOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Store one message: `produce` streams its bytes into the given stream (and must not end it).
   * On failure the partial file is removed and the error rethrown; earlier messages stay queued
   * for the next `flush()`.
   */
  async write(folder: string, key: string, produce: (sink: Writable) => Promise<unknown>): Promise<void> {
    const pending = await this.store.begin(folder, key);
    try {
      await produce(pending.stream);
    } catch (err) {
      await pending.abort();
      throw err;
    }
    await this.add(pending);
  }

  /**
   * Take a message whose bytes are completely written into `pending.stream`: finish it in the
   * background (fsync + rename) and commit the batch when it is full or old enough.
   */
  async add(pending: PendingMessage): Promise<void> {
    if (this.inflight.length === 0 && this.store.pendingCount === 0) this.batchStart = this.clock.now();
    const done = pending.finish();
    // observed in flush(); avoid an unhandled rejection meanwhile
    const settled: Promise<void> = done.then(
      () => void this.running.delete(settled),
      () => void this.running.delete(settled),
    );
    this.running.add(settled);
    this.inflight.push(done);
    if (this.running.size >= MAX_INFLIGHT) await Promise.race(this.running);
    const size = this.inflight.length + this.store.pendingCount;
    if (
      size >= (this.opts.maxMessages ?? BATCH_MAX_MESSAGES) ||
      this.clock.now() - this.batchStart >= (this.opts.maxMs ?? BATCH_MAX_MS)
    ) {
      await this.flush();
    }
  }

  /**
   * Run a download loop, then commit whatever it downloaded even when it failed (those files
   * are complete); rethrows the loop's error, or the commit's.
   */
  async drain(loop: () => Promise<void>): Promise<void> {
    let failure: { err: unknown } | undefined;
    try {
      await loop();
    } catch (err) {
      failure = { err };
    }
    try {
      await this.flush();
    } catch (err) {
      failure ??= { err };
    }
    await this.store.releaseSpares?.();
    if (failure) throw failure.err;
  }

  /** Wait for every message in flight, commit the batch, then run `afterCommit`. */
  async flush(): Promise<CachedMessage[]> {
    const inflight = this.inflight;
    this.inflight = [];
    const results = await Promise.allSettled(inflight);
    const failed = results.find((r) => r.status === 'rejected');
    // Commit what did finish, even when one failed: those files are complete and durable.
    let committed: CachedMessage[] = [];
    if (this.store.pendingCount > 0) {
      committed = await this.store.commit(this.opts.inTransaction);
      this.committedCount += committed.length;
      for (const m of committed) this.committedBytes += m.size;
    } else if (this.opts.inTransaction && !failed) {
      await this.store.commit(this.opts.inTransaction);
    }
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (committed.length && this.opts.afterCommit) await this.opts.afterCommit(committed);
    return committed;
  }
}
