/** The outbox retry policy: exponential, jittered, bounded by initial/max and maxAge. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  deadline,
  isExpired,
  JITTER,
  nextAttemptAt,
  type RetryPolicy,
  retryDelay,
} from '../../src/cache/retry-policy.js';

const MIN = 60_000;
const p: RetryPolicy = { initial: MIN, max: 60 * MIN, maxAge: 5 * 24 * 60 * MIN };
const mid = () => 0.5; // factor exactly 1.0

describe('retryDelay', () => {
  test('doubles from initial up to max (no jitter at factor 1)', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(n, p, mid)),
      [1, 2, 4, 8, 16, 32, 60, 60].map((m) => m * MIN),
    );
  });

  test('jitter spreads the delay but never leaves [initial, max]', () => {
    for (const tries of [1, 2, 3, 5, 6, 7, 50, 5000]) {
      for (const r of [0, 0.1, 0.5, 0.9, 0.999999, 1, -3, Number.NaN]) {
        const d = retryDelay(tries, p, () => r);
        assert.ok(d >= p.initial && d <= p.max, `tries ${tries} r ${r}: ${d}`);
      }
    }
    // In the middle of the range the jitter is visible on both sides.
    const base = 8 * MIN;
    assert.equal(
      retryDelay(4, p, () => 0),
      Math.round(base * JITTER.low),
    );
    assert.ok(retryDelay(4, p, () => 0.999) > base * 1.2);
  });

  test('random jitter: messages failing together do not retry together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelay(4, p)));
    assert.ok(delays.size > 40);
  });

  test('zero or fractional tries count as the first', () => {
    assert.equal(retryDelay(0, p, mid), MIN);
    assert.equal(retryDelay(1.7, p, mid), MIN);
  });
});

describe('maxAge', () => {
  test('the next attempt is capped at the deadline', () => {
    const queuedAt = 1_000_000;
    const end = deadline(queuedAt, p);
    assert.equal(nextAttemptAt({ tries: 1, now: queuedAt, queuedAt }, p, mid), queuedAt + MIN);
    assert.equal(nextAttemptAt({ tries: 9, now: end - 5 * MIN, queuedAt }, p, mid), end);
  });

  test('expired exactly at queuedAt + maxAge', () => {
    assert.equal(isExpired(0, p.maxAge - 1, p), false);
    assert.equal(isExpired(0, p.maxAge, p), true);
  });
});
