/**
 * Promise-chain serialisers: tasks run one at a time, in call order.
 *
 * Invariants:
 * - A task starts only once the task before it has settled, or has handed over its turn
 *   early with `release()` (a pipelined command, say, once it is on the wire).
 * - A task that rejects (or throws) fails only its own caller; the next task runs as usual.
 * - Nothing here rejects on its own: the chain itself never holds a rejected promise.
 */

/** Runs async tasks one at a time, in call order. */
export class Serial {
  private tail: Promise<void> = Promise.resolve();
  private unsettled = 0;

  /** True when every task run so far has settled. */
  get idle(): boolean {
    return this.unsettled === 0;
  }

  /**
   * Runs `task` after every earlier task; resolves or rejects as it does. The task may call
   * `release()` to let the next one start before it settles.
   */
  run<T>(task: (release: () => void) => Promise<T>): Promise<T> {
    this.unsettled++;
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => {
      release = () => resolve();
    });
    const start = (): Promise<T> => task(release);
    const result = this.tail.then(start, start);
    const settle = (): void => {
      this.unsettled--;
      release();
    };
    void result.then(settle, settle);
    this.tail = released;
    return result;
  }
}

/** One `Serial` per key: tasks of one key run one at a time; keys do not wait for each other. */
export class KeyedSerial<K> {
  private readonly lanes = new Map<K, Serial>();

  /** Keys with a task queued or running. */
  get size(): number {
    return this.lanes.size;
  }

  /** Runs `task` after every earlier task of `key`; a key's lane is forgotten once idle. */
  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = new Serial();
      this.lanes.set(key, lane);
    }
    const own = lane;
    const result = own.run(task);
    // registered after the lane's own settle callback, so `idle` is already up to date here
    const forget = (): void => {
      if (own.idle && this.lanes.get(key) === own) this.lanes.delete(key);
    };
    void result.then(forget, forget);
    return result;
  }
}
