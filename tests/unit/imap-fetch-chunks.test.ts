/**
 * UID sets (src/upstream/imap/fetch-chunks.ts, names.ts): the bulk FETCH's ranges of wanted runs, chunked; the
 * mirror's cached UIDs as ranges, cut under a line limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetchChunks } from '../../src/upstream/imap/fetch-chunks.js';
import { uidSetChunks } from '../../src/upstream/imap/names.js';

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

test("the mirror's known UIDs: one range for a run, sets cut between ranges under the limit", () => {
  const run = Array.from({ length: 100_000 }, (_, i) => i + 1);
  assert.deepEqual(uidSetChunks(run, 8000), ['1:100000']);
  assert.deepEqual(uidSetChunks([], 8000), []);
  assert.deepEqual(uidSetChunks([7, 1, 2, 3, 5, 9, 10], 7), ['1:3,5,7', '9:10']);
  const holes = Array.from({ length: 50_000 }, (_, i) => 2 * i + 1); // every other UID
  const sets = uidSetChunks(holes, 8000);
  assert.ok(sets.every((s) => s.length <= 8000));
  assert.equal(sets.join(','), holes.join(','));
});
