/** The UID sets of the bulk FETCH (src/upstream/imap/fetcher.ts): ranges of wanted runs, chunked. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchChunks } from '../../src/upstream/imap/fetch-chunks.js';

test('consecutive new messages are one range per chunk; a cached UID splits a run', () => {
  const listed = [3, 4, 5, 9, 10, 11, 12, 20];
  const wanted = new Set([3, 4, 5, 9, 11, 12, 20]); // 10 is cached already
  assert.deepEqual(fetchChunks(listed, wanted, 500), [{ set: '3:9,11:20', uids: [3, 4, 5, 9, 11, 12, 20] }]);
  assert.deepEqual(fetchChunks(listed, wanted, 3), [
    { set: '3:5', uids: [3, 4, 5] },
    { set: '9,11:12', uids: [9, 11, 12] },
    { set: '20', uids: [20] },
  ]);
  assert.deepEqual(fetchChunks(listed, new Set(), 500), []);
  const many = Array.from({ length: 1200 }, (_, i) => i + 1);
  assert.deepEqual(
    fetchChunks(many, new Set(many), 500).map((c) => c.set),
    ['1:500', '501:1000', '1001:1200'],
  );
});
