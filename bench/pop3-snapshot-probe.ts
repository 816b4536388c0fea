/**
 * Probe: login + STAT + UIDL + LIST time of the local POP3 server on large maildrops (Outlook lists them whole).
 * Rows are inserted straight into the ledger (files are not needed for STAT/UIDL/LIST).
 * Run: node --import tsx bench/pop3-snapshot-probe.ts [count...]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { Ledger } from '../src/cache/ledger.js';
import { LocalAuth } from '../src/listeners/local-auth.js';
import { CacheBackend } from '../src/listeners/pop3/backend.js';
import { Pop3Server } from '../src/listeners/pop3/server.js';
import { authenticated } from '../tests/support/pop3-server.js';

const log = pino({ level: 'silent' });
for (const n of process.argv.slice(2).map(Number).filter(Boolean).length
  ? process.argv.slice(2).map(Number)
  : [10_000, 100_000]) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lp-probe-'));
  const cache = await Cache.open({ dataDir, accounts: ['alice'], log });
  const ledger = new Ledger(cache.stateDb);
  ledger.transaction(() => {
    for (let uid = 1; uid <= n; uid++) {
      ledger.insertMessage({
        account: 'alice',
        uid,
        folder: 'INBOX',
        file: `new/x${uid}`,
        size: 4000,
        wsize: 4100,
        key: `k${uid}`,
        flags: '',
        storedAt: 0,
        eoh: 1,
      });
    }
  });
  const server = new Pop3Server({
    hosts: ['127.0.0.1'],
    port: 0,
    log,
    auth: new LocalAuth([{ accountId: 'alice', username: 'alice', password: 'pw' }], { baseDelayMs: 0 }),
    backend: new CacheBackend({ stores: cache, log, onLocalDelete: () => 'keep-upstream' }),
  });
  await server.start();
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const c = await authenticated(server.port, 'alice', 'pw');
    const tLogin = performance.now();
    await c.ask('STAT');
    c.cmd('UIDL');
    await c.line();
    const u = await c.lines();
    const tUidl = performance.now();
    c.cmd('LIST');
    await c.line();
    await c.lines();
    const tList = performance.now();
    await c.ask('QUIT');
    console.log(
      `${n} messages: login ${(tLogin - t0).toFixed(0)} ms, login+STAT+UIDL ${(tUidl - t0).toFixed(0)} ms (${u.length} lines), LIST ${(tList - tUidl).toFixed(0)} ms`,
    );
  }
  await server.stop();
  cache.close();
  await rm(dataDir, { recursive: true, force: true });
}
