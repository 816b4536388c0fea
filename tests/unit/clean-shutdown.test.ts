/**
 * The clean-shutdown record (`cache/clean-shutdown.ts`): after `shutdown()` the next open reads no
 * `new/` or `cur/` directory; a write in flight, a crash after that open, or a change made while
 * stopped brings the full scan back. Counted by the directories recovery reads, not by time.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { CLEAN_SHUTDOWN_FILE } from '../../src/cache/clean-shutdown.js';
import { accountDir, maildirPath } from '../../src/cache/maildir.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const open = (dataDir: string): Promise<Cache> => Cache.open({ dataDir, accounts: ['acct'], log });
const record = (dataDir: string): string => path.join(accountDir(dataDir, 'acct'), CLEAN_SHUTDOWN_FILE);

async function store(cache: Cache, folder: string, key: string): Promise<void> {
  const p = await cache.account('acct').begin(folder, key);
  p.stream.write(`Subject: ${key}\r\n\r\nbody\r\n`);
  await p.finish();
}

async function seeded(): Promise<string> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'localpost-clean-'));
  dirs.push(dataDir);
  const cache = await open(dataDir);
  for (const k of ['p1', 'p2', 'p3']) await store(cache, 'INBOX', k);
  await store(cache, 'Archive', 'i1_1');
  await cache.account('acct').commit();
  await cache.shutdown();
  return dataDir;
}

describe('clean-shutdown record', () => {
  it('lets the next open skip reading new/ and cur/, and is removed by that open', async () => {
    const dataDir = await seeded();
    assert.ok(existsSync(record(dataDir)));
    const cache = await open(dataDir);
    const r = cache.recovery.get('acct')!;
    assert.equal(r.scannedDirs, 0);
    assert.ok(!existsSync(record(dataDir)), 'removed before the first write');
    const s = cache.account('acct');
    assert.deepEqual(
      s.list('INBOX').map((m) => m.key),
      ['p1', 'p2', 'p3'],
    );
    assert.ok(s.has('Archive', 'i1_1') && !s.has('INBOX', 'p4'));
    cache.close();
  });

  it('a crash after a clean open is recovered in full', async () => {
    const dataDir = await seeded();
    let cache = await open(dataDir);
    await store(cache, 'INBOX', 'p4'); // renamed into new/, never committed
    cache.close(); // the crash
    cache = await open(dataDir);
    assert.equal(cache.recovery.get('acct')!.scannedDirs, 4);
    assert.ok(cache.account('acct').has('INBOX', 'p4'), 'indexed from its name');
    cache.close();
  });

  it('writes no record while a write is in flight', async () => {
    const dataDir = await seeded();
    const cache = await open(dataDir);
    await store(cache, 'INBOX', 'p4');
    await cache.shutdown();
    assert.ok(!existsSync(record(dataDir)));
    const again = await open(dataDir);
    assert.equal(again.recovery.get('acct')!.rebuilt, 1);
    again.close();
  });

  it('sees a message another Maildir reader flagged while localpost was stopped', async () => {
    const dataDir = await seeded();
    const md = maildirPath(dataDir, 'acct');
    const [name] = (await readdir(path.join(md, 'new'))).sort();
    await rename(path.join(md, 'new', name!), path.join(md, 'cur', `${name}:2,S`));
    const cache = await open(dataDir);
    assert.ok(cache.recovery.get('acct')!.scannedDirs > 0);
    assert.equal(cache.account('acct').list('INBOX')[0]!.flags, 'S');
    cache.close();
  });
});
