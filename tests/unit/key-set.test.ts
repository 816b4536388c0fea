/**
 * `KeySet` answers exactly like a Set<string> under any mix of loads, adds and deletes, and an
 * account store loads its keys from state.db at the first `has()`, not at open (counted by the
 * ledger calls made).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { KeySet } from '../../src/cache/key-set.js';
import { Ledger } from '../../src/cache/ledger.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('KeySet', () => {
  it('agrees with a Set<string> over random loads, adds and deletes', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    // short keys that are prefixes of one another, and many that share a hash slot
    const key = () => ['p', 'p1', 'p12', 'i3_4', 'x', ''][rnd(6)] + rnd(300).toString(36);
    for (let round = 0; round < 20; round++) {
      const initial = Array.from({ length: rnd(500) }, key);
      const model = new Set(initial);
      const ks = new KeySet(initial);
      for (let op = 0; op < 2000; op++) {
        const k = key();
        const r = rnd(3);
        if (r === 0) {
          assert.equal(ks.add(k), ks);
          model.add(k);
        } else if (r === 1) assert.equal(ks.delete(k), model.delete(k), `delete ${k}`);
        assert.equal(ks.has(k), model.has(k), `has ${k} after op ${op}`);
        assert.equal(ks.size, model.size);
      }
      for (const k of initial) assert.equal(ks.has(k), model.has(k));
      assert.ok(!ks.has(`${initial[0]}x`) || model.has(`${initial[0]}x`));
    }
  });

  it('refuses a key with a line break', () => {
    assert.throws(() => new KeySet(['a\nb']), /line break/);
  });
});

describe('account store keys', () => {
  it('are read from state.db at the first has(), not at open', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'localpost-keys-'));
    dirs.push(dataDir);
    const log = pino({ level: 'silent' });
    let cache = await Cache.open({ dataDir, accounts: ['a'], log });
    for (const k of ['p1', 'p2']) {
      const p = await cache.account('a').begin('INBOX', k);
      p.stream.write('Subject: x\r\n\r\n');
      await p.finish();
    }
    await cache.account('a').commit();
    await cache.account('a').trash([1], { deleteUpstream: false });
    cache.close();
    const loads = mock.method(Ledger.prototype, 'messageKeys');
    const tombLoads = mock.method(Ledger.prototype, 'tombstones');
    try {
      cache = await Cache.open({ dataDir, accounts: ['a'], log });
      const store = cache.account('a');
      assert.equal(loads.mock.callCount() + tombLoads.mock.callCount(), 0, 'nothing loaded at open');
      assert.ok(store.has('INBOX', 'p1'), 'tombstoned');
      assert.ok(store.has('INBOX', 'p2') && store.has('Trash', 'p1') && !store.has('INBOX', 'p3'));
      assert.equal(loads.mock.callCount(), 1);
      assert.equal(tombLoads.mock.callCount(), 1);
      cache.close();
    } finally {
      loads.mock.restore();
      tombLoads.mock.restore();
    }
  });
});
