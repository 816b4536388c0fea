/**
 * The SyncService: never two pulls of one account at once (a second request joins the running
 * pull), results classified and recorded in the sync history.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { parseConfigText } from '../../src/config/load.js';
import { SyncService } from '../../src/daemon/sync.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';
import { fakePop3ConfigText } from '../support/localpost.js';

const log = pino({ level: 'silent' });

function accountsFor(port: number, dataDir: string, password = 'pw') {
  return parseConfigText(fakePop3ConfigText(port, dataDir, password)).accounts;
}

test('concurrent sync requests for one account join one pull', async () => {
  const fake = await startFakePop3({
    user: 'alice',
    pass: 'pw',
    messages: [Buffer.from('Subject: 1\r\n\r\nx\r\n'), Buffer.from('Subject: 2\r\n\r\ny\r\n')],
    onCommand: (verb) => (verb === 'RETR' ? { delayMs: 150 } : undefined),
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-sync-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  try {
    const svc = new SyncService({ accounts: accountsFor(fake.port, dataDir), cache, log });
    const p1 = svc.sync('a');
    const p2 = svc.sync('a');
    assert.equal(p1, p2);
    assert.equal(svc.state('a')?.running, true);
    const [r1, r2] = await Promise.all([p1, p2]);
    assert.equal(r1.result, 'ok');
    assert.equal(r1.newMessages, 2);
    assert.equal(r2, r1);
    assert.equal(fake.connections, 2, 'one session with mail, one finding nothing new: no second pull');
    assert.equal(cache.lastSync('a')?.newMessages, 2);
    const again = await svc.sync('a');
    assert.equal(again.newMessages, 0);
    assert.notEqual(again, r1);
  } finally {
    cache.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('results are classified: offline, auth, ok', async () => {
  const fake = await startFakePop3({ user: 'alice', pass: 'pw' });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-sync-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  try {
    const bad = new SyncService({ accounts: accountsFor(fake.port, dataDir, 'nope'), cache, log });
    assert.equal((await bad.sync('a')).result, 'auth');
    const off = new SyncService({ accounts: accountsFor(1, dataDir), cache, log });
    const r = await off.sync('a');
    assert.equal(r.result, 'offline');
    assert.equal(off.state('a')?.online, false);
    const ok = new SyncService({ accounts: accountsFor(fake.port, dataDir), cache, log });
    assert.equal((await ok.sync('a')).result, 'ok');
    assert.equal(cache.lastSync('a')?.result, 'ok');
  } finally {
    cache.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
