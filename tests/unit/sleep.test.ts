/** sleep(ms, signal): resolves after the delay, rejects with the signal's reason when it aborts. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sleep } from '../../src/shared/sleep.js';

describe('sleep', () => {
  test('resolves', async () => {
    assert.equal(await sleep(1), undefined);
  });

  test('rejects with the reason when the signal aborts', async () => {
    const ac = new AbortController();
    const slept = sleep(60_000, ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(slept, /stop/);
  });

  test('rejects at once on a signal aborted before', async () => {
    await assert.rejects(sleep(60_000, AbortSignal.abort(new Error('already'))), /already/);
  });
});
