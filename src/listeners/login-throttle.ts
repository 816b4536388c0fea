/**
 * The login throttle: failed local logins counted per user name and per client address over a
 * window, in memory. It knows nothing of protocols, so every local listener (POP3, SMTP, later
 * IMAP) shares one through `LocalAuth`. The numbers are in docs/guarantees.md#local-logins.
 *
 * Invariants:
 * - An attempt's delay is fixed when it begins, from the failures counted so far: with `n` the
 *   larger of its name's and its address's count, `baseDelayMs × 2^(n−1)` (up to `maxDelayMs`),
 *   none while `n` is 0. The caller applies it to the answer whatever the password turns out to
 *   be, so while a throttle is active a right password is answered no sooner than a wrong one.
 * - While a name or an address is throttled (a delay is due), an attempt for it is checked only when no
 *   other attempt for it is in progress (its delay included); otherwise `begin` refuses it at
 *   once, unchecked and uncounted, and the client gets a temporary error. A guesser thus gets one
 *   answer per delay, however many connections it opens.
 * - A wrong password counts as soon as it is known, whether or not the client still waits: closing
 *   the connection early saves nothing.
 * - A success clears its name's count, not its address's (a guesser on the shared loopback
 *   address cannot clear its record by logging in as itself).
 * - A count is forgotten `windowMs` after its last failure: no permanent lockout. At most
 *   `MAX_RECORDS` counts are kept (expired ones go first), so random names cannot grow memory.
 */
import { type Clock, systemClock } from '../shared/clock.js';

/** Options of `LoginThrottle`. */
export interface LoginThrottleOptions {
  /** Delay once one failure is counted (doubling per further failure); default 500 ms. */
  baseDelayMs?: number;
  /** Longest delay; default 8 s. */
  maxDelayMs?: number;
  /** A count is forgotten this long after its last failure; default 15 minutes. */
  windowMs?: number;
  /** Injected for tests. */
  clock?: Clock;
}

/** One admitted attempt: its delay, and how it ended. `end()` must be called once it is answered. */
export interface ThrottledAttempt {
  /** How long the answer must wait, right password or wrong. */
  readonly delayMs: number;
  failed(): void;
  succeeded(): void;
  end(): void;
}

/** Most counts kept (user names and addresses together). */
export const MAX_RECORDS = 10_000;

export const THROTTLE_DEFAULTS = { baseDelayMs: 500, maxDelayMs: 8000, windowMs: 15 * 60_000 };

/** Failure counts and attempts in progress, per user name (`u:`) and per address (`a:`). */
export class LoginThrottle {
  private readonly records = new Map<string, { count: number; last: number }>();
  private readonly inProgress = new Map<string, number>();
  private readonly clock: Clock;

  constructor(private readonly opts: LoginThrottleOptions = {}) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Count kept for each key (for tests and the size bound). */
  get size(): number {
    return this.records.size;
  }

  /** The delay that follows `n` counted failures. */
  delayFor(n: number): number {
    if (n <= 0) return 0;
    const base = this.opts.baseDelayMs ?? THROTTLE_DEFAULTS.baseDelayMs;
    return Math.min(this.opts.maxDelayMs ?? THROTTLE_DEFAULTS.maxDelayMs, base * 2 ** Math.min(n - 1, 30));
  }

  /** Admits an attempt (see the module comment), or undefined: refused while another is in progress. */
  begin(username: string, remote?: string): ThrottledAttempt | undefined {
    const keys = [`u:${username}`, ...(remote === undefined ? [] : [`a:${remote}`])];
    const delayMs = this.delayFor(Math.max(...keys.map((k) => this.count(k))));
    if (delayMs > 0 && keys.some((k) => (this.inProgress.get(k) ?? 0) > 0)) return undefined;
    for (const k of keys) this.inProgress.set(k, (this.inProgress.get(k) ?? 0) + 1);
    let ended = false;
    return {
      delayMs,
      failed: () => {
        for (const k of keys) this.fail(k);
      },
      succeeded: () => {
        this.records.delete(keys[0] as string);
      },
      end: () => {
        if (ended) return;
        ended = true;
        for (const k of keys) {
          const left = (this.inProgress.get(k) ?? 1) - 1;
          if (left > 0) this.inProgress.set(k, left);
          else this.inProgress.delete(k);
        }
      },
    };
  }

  /** The failures of `key` within the window. */
  private count(key: string): number {
    const r = this.records.get(key);
    return r && this.clock.now() - r.last < this.window() ? r.count : 0;
  }

  private window(): number {
    return this.opts.windowMs ?? THROTTLE_DEFAULTS.windowMs;
  }

  private fail(key: string): void {
    const now = this.clock.now();
    const count = this.count(key) + 1;
    if (!this.records.has(key) && this.records.size >= MAX_RECORDS) {
      for (const [k, v] of this.records) if (now - v.last >= this.window()) this.records.delete(k);
      if (this.records.size >= MAX_RECORDS) this.records.clear(); // bounded memory against random names
    }
    this.records.set(key, { count, last: now });
  }
}
