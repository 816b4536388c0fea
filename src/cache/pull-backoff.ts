/**
 * When an account's automatic pulls pause after failures. Providers lock accounts
 * that keep logging in with a wrong password or keep coming back while throttled (Microsoft's
 * `Server Unavailable. 21`), so after a pull fails for a reason other than "offline" the
 * schedule and pull-on-login leave the account alone until `now + delay`:
 *
 * - the n-th consecutive failure waits `retryDelay(n)` of the outbox's policy (retry-policy.ts):
 *   1 min doubling to 1 h, jittered by ×[0.75, 1.25) and kept within those bounds;
 * - only failures that involved the upstream count: a configuration problem or a missing
 *   sign-in (nothing was sent) leaves the backoff as it was;
 * - a success ends it and resets the count; an "offline" result neither grows nor starts it
 *   (the connectivity monitor governs an unreachable server) but ends a window that is running,
 *   since a pull just ran;
 * - an explicit `localpost sync` ignores it (see SyncService) and a config reload that changes
 *   the account's incoming settings ends it (the user probably fixed the password).
 *
 * Pure functions: no clock, no I/O, randomness injected, so tests never sleep.
 */

import type { SyncRecord } from './message-store.js';
import { type RetryPolicy, retryDelay } from './retry-policy.js';

/** Why an account backs off: the login was refused, the server throttles us, or another upstream failure. */
export type BackoffReason = 'auth' | 'throttled' | 'error';

/** An account's backoff after consecutive failures. */
export interface PullBackoff {
  /** Consecutive failed pulls (offline results aside). */
  failures: number;
  /** No automatic pull before this moment (ms since the epoch). */
  until: number;
  reason: BackoffReason;
  /** The last failure's message. */
  error?: string;
}

/** The default bounds: 1 min doubling to 1 h (`maxAge` is unused here). */
export const PULL_BACKOFF: RetryPolicy = { initial: 60_000, max: 60 * 60_000, maxAge: Number.POSITIVE_INFINITY };

/** The backoff after a failure that follows `previous` (undefined: the first failure). */
export function nextBackoff(
  previous: PullBackoff | undefined,
  failure: { now: number; reason: BackoffReason; error?: string },
  policy: RetryPolicy = PULL_BACKOFF,
  random: () => number = Math.random,
): PullBackoff {
  const failures = (previous?.failures ?? 0) + 1;
  return {
    failures,
    until: failure.now + retryDelay(failures, policy, random),
    reason: failure.reason,
    error: failure.error,
  };
}

/**
 * The backoff after a pull finished with `result`. A failure backs off only with a `reason`; one
 * without (a configuration problem, a sign-in that is missing: nothing reached the upstream)
 * leaves the backoff as it was.
 */
export function backoffAfter(
  previous: PullBackoff | undefined,
  outcome: { result: SyncRecord['result']; now: number; reason?: BackoffReason; error?: string },
  policy: RetryPolicy = PULL_BACKOFF,
  random: () => number = Math.random,
): PullBackoff | undefined {
  if (outcome.result === 'ok') return undefined;
  if (outcome.result === 'offline') return previous && { ...previous, until: outcome.now };
  if (!outcome.reason) return previous;
  return nextBackoff(previous, { now: outcome.now, reason: outcome.reason, error: outcome.error }, policy, random);
}

/** True while the backoff keeps automatic pulls away. */
export function isBackingOff(b: PullBackoff | undefined, now: number): b is PullBackoff {
  return b !== undefined && now < b.until;
}

/** `14:05`: the local wall-clock time of a moment, for logs and `status`. */
export function clockTime(at: number): string {
  const d = new Date(at);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}
