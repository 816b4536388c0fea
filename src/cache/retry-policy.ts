/**
 * When the outbox tries a message again (bounded backoff; a flap is not a failure). Pure functions: no clock,
 * no I/O, randomness injected, so tests never sleep.
 *
 * - After the n-th failed try (n ≥ 1) the pause is `min(max, initial × 2^(n−1))`, spread by a
 *   jitter factor in [0.75, 1.25) so that messages queued together do not retry in lockstep,
 *   and always kept within [initial, max].
 * - A message lives at most `maxAge` from the moment it was queued (or re-queued by the user):
 *   its next attempt is never scheduled past that deadline, and once the deadline has passed
 *   it is given up (moved to `failed/` with a bounce). Being offline only delays; only a
 *   permanent reply or `maxAge` ends a message's life.
 * - The computed time is stored with the entry, never recomputed from the try count later.
 */

/** The configured retry bounds, in milliseconds (`outbox.retry.initial/max`, `outbox.maxAge`). */
export interface RetryPolicy {
  initial: number;
  max: number;
  maxAge: number;
}

/** Lower and upper bound of the jitter factor applied to the exponential delay. */
export const JITTER = { low: 0.75, high: 1.25 } as const;

/** The pause after `tries` failed tries (tries ≥ 1), jittered, within [initial, max]. */
export function retryDelay(tries: number, p: RetryPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(tries));
  // 2^(n-1) overflows to Infinity for large n; min() keeps that harmless.
  const base = Math.min(p.max, p.initial * 2 ** Math.min(n - 1, 1024));
  const factor = JITTER.low + (JITTER.high - JITTER.low) * clamp01(random());
  return Math.round(Math.min(p.max, Math.max(p.initial, base * factor)));
}

/** The moment after which a message queued at `queuedAt` is given up. */
export function deadline(queuedAt: number, p: RetryPolicy): number {
  return queuedAt + p.maxAge;
}

/** True once `maxAge` has passed since `queuedAt`. */
export function isExpired(queuedAt: number, now: number, p: RetryPolicy): boolean {
  return now >= deadline(queuedAt, p);
}

/** When to try again after the `tries`-th failure at `now`: never later than the deadline. */
export function nextAttemptAt(
  o: { tries: number; now: number; queuedAt: number },
  p: RetryPolicy,
  random: () => number = Math.random,
): number {
  return Math.min(o.now + retryDelay(o.tries, p, random), deadline(o.queuedAt, p));
}

function clamp01(x: number): number {
  if (!Number.isFinite(x) || x < 0) return 0;
  return x >= 1 ? 0.999999 : x;
}
