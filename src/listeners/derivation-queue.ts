/**
 * The bounded queue in front of the local logins' key derivations (scrypt), so a login flood
 * cannot take the daemon: scrypt runs on libuv's thread pool (four threads by default), which
 * file and DNS work for mail needs too.
 *
 * Invariants:
 * - At most `concurrency` derivations run at once and at most `maxQueued` wait; a task beyond
 *   that is refused at once (`busy`), never queued.
 * - A waiting task whose client has gone (`gone()`) is dropped when its turn comes, never run.
 * - After `stop()`, waiting tasks are dropped (`stopped`) and new ones refused; the running ones
 *   (bounded, and each bounded in cost by `parsePasswordHash`) finish on their own.
 */

/** A task's result, or why it did not run. */
export type Queued<T> = { ran: true; value: T } | { ran: false; reason: 'busy' | 'gone' | 'stopped' };

interface Waiting {
  start: () => void;
  drop: (reason: 'gone' | 'stopped') => void;
  gone: () => boolean;
}

/** Runs async tasks with bounded concurrency and a bounded wait list. */
export class DerivationQueue {
  private running = 0;
  private readonly waiting: Waiting[] = [];
  private stopped = false;

  constructor(
    readonly concurrency = 1,
    readonly maxQueued = 8,
  ) {}

  /** Tasks running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /** Runs `task` when a slot is free, unless refused or dropped first; rejects only as `task` does. */
  run<T>(task: () => Promise<T>, gone: () => boolean = () => false): Promise<Queued<T>> {
    if (this.stopped) return Promise.resolve({ ran: false, reason: 'stopped' });
    if (this.running >= this.concurrency && this.waiting.length >= this.maxQueued) {
      return Promise.resolve({ ran: false, reason: 'busy' });
    }
    return new Promise<Queued<T>>((resolve, reject) => {
      const start = (): void => {
        this.running++;
        task().then(
          (value) => {
            this.finished();
            resolve({ ran: true, value });
          },
          (err: unknown) => {
            this.finished();
            reject(err);
          },
        );
      };
      const drop = (reason: 'gone' | 'stopped'): void => resolve({ ran: false, reason });
      this.waiting.push({ start, drop, gone });
      this.next();
    });
  }

  /** Drops every waiting task and refuses new ones. */
  stop(): void {
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w.drop('stopped');
  }

  private finished(): void {
    this.running--;
    this.next();
  }

  /** Starts waiting tasks while slots are free, dropping those whose client has gone. */
  private next(): void {
    while (this.running < this.concurrency) {
      const w = this.waiting.shift();
      if (!w) return;
      if (w.gone()) w.drop('gone');
      else w.start();
    }
  }
}
