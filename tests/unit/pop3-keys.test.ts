import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keysForListing, pop3Key } from '../../src/upstream/pop3/fetcher.js';

test('POP3 keys are file-name safe, fixed length and stable, even for long UIDLs', () => {
  const long = 'x'.repeat(500);
  assert.match(pop3Key(long), /^p[0-9a-f]{24}$/);
  assert.equal(pop3Key('abc'), pop3Key('abc'));
  assert.notEqual(pop3Key('abc'), pop3Key('abd'));
});

test('a UIDL listed twice gets two distinct keys, stable across sessions', () => {
  const listing = [
    { msg: 1, uidl: 'a' },
    { msg: 2, uidl: 'b' },
    { msg: 3, uidl: 'a' },
  ];
  const k1 = keysForListing(listing);
  const k2 = keysForListing(listing);
  assert.deepEqual(k1, k2);
  assert.equal(new Set(k1.map((k) => k.key)).size, 3);
  assert.equal(k1[0]!.key, pop3Key('a'));
});
