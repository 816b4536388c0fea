/**
 * The durable cache (src/cache): write path, naming, folders, has(), UID allocation, rekey,
 * removal, cursors and history, plus a printed throughput figure. Crash fixtures and the
 * SIGKILL test live in cache-recovery.test.ts.
 */

import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import {
  decodeFolder,
  encodeFolder,
  formatName,
  maildirPath,
  parseName,
  replaceKey,
  uidl,
} from '../../src/cache/maildir.js';
import type { AccountStore } from '../../src/cache/message-store.js';
import { CrlfSizer } from '../../src/shared/pop3-wire/dot-stuffing.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'localpost-cache-'));
  dirs.push(d);
  return d;
}

async function open(dataDir: string, accounts = ['acct']): Promise<Cache> {
  return Cache.open({ dataDir, accounts, log });
}

/** Write one message in the given chunks and finish it (not committed). */
async function put(store: AccountStore, folder: string, key: string, ...chunks: (string | Buffer)[]) {
  const p = await store.begin(folder, key);
  for (const c of chunks) p.stream.write(typeof c === 'string' ? Buffer.from(c) : c);
  return p.finish();
}

describe('file names and folders', () => {
  it('formats and parses names, tolerating cur/ flags and extra fields', () => {
    const base = formatName({ storedSec: 1764390000, uid: 0x123, size: 5120, wsize: 5187, key: 'p9f2c41aa07' });
    assert.equal(base, '1764390000.L00000123.localpost,S=5120,W=5187,K=p9f2c41aa07');
    const want = { storedSec: 1764390000, uid: 0x123, size: 5120, wsize: 5187, key: 'p9f2c41aa07' };
    assert.deepEqual(parseName(base), { ...want, flags: '' });
    assert.deepEqual(parseName(`${base}:2,RS`), { ...want, flags: 'RS' });
    assert.deepEqual(parseName(`${base},Z=9:2,S`), { ...want, flags: 'S' });
    assert.deepEqual(parseName('1764390000.L000123.localpost,S=1,W=3,K=i1733000000_42')?.key, 'i1733000000_42');
    assert.equal(parseName('1764390000.M12P34.host:2,S'), undefined);
    assert.equal(parseName('1764390000.L00000001.localpost,S=1,K=a'), undefined);
    assert.equal(replaceKey(`${base}:2,S`, 'i7_1'), '1764390000.L00000123.localpost,S=5120,W=5187,K=i7_1:2,S');
    assert.equal(uidl(255), '000000FF');
    assert.throws(() => formatName({ storedSec: 1, uid: 1, size: 0, wsize: 0, key: 'a.b' }));
  });

  it('round-trips Maildir++ folder names', () => {
    assert.equal(encodeFolder('INBOX'), '');
    assert.equal(encodeFolder('inbox'), '');
    assert.equal(encodeFolder('Archive'), '.Archive');
    assert.equal(encodeFolder('Lists/node'), '.Lists.node');
    for (const f of [
      'Archive',
      'Lists/node',
      'My Mail/Sent Items',
      'Ärger/Привет/日本',
      'a.b/c%d',
      'w:*?"<>|\\',
      'tab\there',
    ]) {
      const enc = encodeFolder(f);
      assert.ok(!enc.slice(1).includes('/') && !/[\x00-\x1f:*?"<>|\\]/.test(enc), enc);
      assert.equal(decodeFolder(enc), f);
    }
  });

  it('counts W= like POP3 sends it (the shared CrlfSizer the cache uses)', () => {
    const w = (...parts: string[]) => {
      const s = new CrlfSizer();
      for (const p of parts) s.update(Buffer.from(p));
      return s.size;
    };
    assert.equal(w(''), 0);
    assert.equal(w('a\nb\n'), 6);
    assert.equal(w('a\r\nb\r\n'), 6);
    assert.equal(w('a\r\nb'), 6);
    assert.equal(w('a\r', '\nb\n'), 6);
    assert.equal(w('a', '\n', '\n'), 5);
  });
});

describe('write, commit, list', () => {
  it('stores exact bytes with correct S= and W=, visible only after commit', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir);
    const store = cache.account('acct');
    const cases: [string, Buffer, number][] = [
      ['plf', Buffer.from('Subject: x\n\nbody\n.line\n'), 27],
      ['pcrlf', Buffer.from('Subject: x\r\n\r\nbody\r\n'), 20],
      ['pnoeol', Buffer.from('Subject: x\n\nno newline'), 26],
      ['p8bit', Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x0a, 0x0d]), 10],
      ['pempty', Buffer.alloc(0), 0],
    ];
    for (const [key, bytes] of cases) await put(store, 'INBOX', key, bytes.subarray(0, 3), bytes.subarray(3));
    assert.equal(store.pendingCount, cases.length);
    assert.deepEqual(store.list('INBOX'), []);
    const committed = await store.commit();
    assert.equal(committed.length, cases.length);
    assert.equal(store.pendingCount, 0);
    const listed = store.list('INBOX');
    assert.deepEqual(
      listed.map((m) => m.key),
      cases.map((c) => c[0]),
    );
    for (const [i, [key, bytes, wsize]] of cases.entries()) {
      const m = listed[i]!;
      assert.deepEqual(await readFile(m.path), bytes, key);
      assert.equal(m.size, bytes.length);
      assert.equal(m.wsize, wsize, key);
      const p = parseName(path.basename(m.path))!;
      assert.deepEqual([p.uid, p.size, p.wsize, p.key], [m.uid, m.size, m.wsize, key]);
      assert.equal(path.basename(path.dirname(m.path)), 'new');
      assert.equal(m.uidl, uidl(m.uid));
    }
    assert.deepEqual(cache.stats('acct'), { messages: 5, bytes: cases.reduce((a, c) => a + c[1].length, 0) });
    await store.releaseSpares();
    const tmp = await readdir(path.join(maildirPath(dataDir, 'acct'), 'tmp'));
    assert.deepEqual(tmp, []);
    cache.close();
  });

  it('writes Maildir++ folders that survive a reopen', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir);
    const folders = ['Archive', 'Lists/node', 'Sent Items', 'Entwürfe/Ärger'];
    for (const f of folders) await put(cache.account('acct'), f, `k${folders.indexOf(f)}`, `in ${f}\n`);
    await cache.account('acct').commit();
    const md = maildirPath(dataDir, 'acct');
    assert.ok(existsSync(path.join(md, '.Lists.node', 'maildirfolder')));
    assert.ok(existsSync(path.join(md, '.Lists.node', 'cur')));
    cache.close();
    await rm(path.join(dataDir, 'state.db'));
    cache = await open(dataDir);
    for (const f of folders) {
      const [m] = cache.account('acct').list(f);
      assert.equal(await readFile(m!.path, 'utf8'), `in ${f}\n`);
    }
    cache.close();
  });

  it('lets finish() calls complete in any order', async () => {
    const cache = await open(await tempDir());
    const store = cache.account('acct');
    const pending = await Promise.all(['a', 'b', 'c', 'd'].map((k) => store.begin('INBOX', `p${k}`)));
    for (const p of pending) p.stream.write(Buffer.alloc(100_000, p.key));
    const done = await Promise.all([...pending].reverse().map((p) => p.finish()));
    assert.equal(done.length, 4);
    assert.equal((await store.commit()).length, 4);
    assert.deepEqual(
      store.list('INBOX').map((m) => m.key),
      ['pa', 'pb', 'pc', 'pd'],
    );
    cache.close();
  });

  it('accepts a stream already ended by pipeline(), and abort() discards the temp file', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir);
    const store = cache.account('acct');
    const p = await store.begin('INBOX', 'ppipe');
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'line\n');
    await pipeline(Readable.from([big.subarray(0, 1000), big.subarray(1000)]), p.stream);
    const m = await p.finish();
    assert.equal(m.size, big.length);
    assert.deepEqual(await readFile(m.path), big);
    const q = await store.begin('INBOX', 'pdrop');
    q.stream.write('partial');
    await q.abort();
    await assert.rejects(q.finish(), /aborted/);
    await store.releaseSpares();
    assert.deepEqual(await readdir(path.join(maildirPath(dataDir, 'acct'), 'tmp')), []);
    assert.equal((await store.commit()).length, 1);
    cache.close();
  });

  it('keeps the batch when the commit transaction fails', async () => {
    const cache = await open(await tempDir());
    const store = cache.account('acct');
    await put(store, 'INBOX', 'p1', 'x\n');
    await assert.rejects(
      store.commit(() => {
        throw new Error('cursor update failed');
      }),
      /cursor update failed/,
    );
    assert.equal(store.pendingCount, 1);
    assert.deepEqual(store.list('INBOX'), []);
    assert.ok(store.has('INBOX', 'p1'));
    assert.equal((await store.commit()).length, 1);
    cache.close();
  });
});

describe('has()', () => {
  it('covers begun, pending, committed and tombstoned keys', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir);
    const store = cache.account('acct');
    const p = await store.begin('INBOX', 'pa');
    assert.ok(store.has('INBOX', 'pa'), 'begun');
    await assert.rejects(store.begin('INBOX', 'pa'), /already/);
    p.stream.write('x');
    await p.finish();
    assert.ok(store.has('INBOX', 'pa'), 'pending');
    assert.ok(!store.has('Archive', 'pa'), 'per folder');
    await store.commit();
    assert.ok(store.has('inbox', 'pa'), 'committed');
    cache.tombstone('acct', 'INBOX', 'pgone');
    assert.ok(store.has('INBOX', 'pgone'), 'tombstoned');
    const q = await store.begin('INBOX', 'pb');
    await q.abort();
    await q.abort();
    assert.ok(!store.has('INBOX', 'pb'), 'aborted');
    cache.close();
    const again = await open(dataDir);
    assert.ok(again.account('acct').has('INBOX', 'pa'));
    assert.ok(again.account('acct').has('INBOX', 'pgone'));
    assert.ok(!again.account('acct').has('INBOX', 'pb'));
    again.close();
  });
});

describe('UIDs are never reused', () => {
  async function writeN(cache: Cache, prefix: string, n: number): Promise<number[]> {
    const store = cache.account('acct');
    for (let i = 0; i < n; i++) await put(store, 'INBOX', `${prefix}${i}`, `${prefix}${i}\n`);
    return (await store.commit()).map((m) => m.uid);
  }

  it('across close/reopen, a deleted state.db, and a removed highest-UID file', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir);
    const used = new Set(await writeN(cache, 'a', 3));
    // An aborted begin burns its UID once any later commit (even an empty one) has run.
    const burnt = await cache.account('acct').begin('INBOX', 'pburn');
    await burnt.abort();
    await cache.account('acct').commit();
    used.add(burnt.uid);
    cache.close();

    cache = await open(dataDir);
    const b = await writeN(cache, 'b', 2);
    for (const u of b) assert.ok(!used.has(u) && u > Math.max(...used));
    for (const u of b) used.add(u);
    const highest = cache.account('acct').list('INBOX').at(-1)!;
    cache.close();

    await rm(highest.path); // db survives: its next UID still knows the removed UID
    cache = await open(dataDir);
    assert.equal(cache.recovery.get('acct')!.dropped, 1);
    const c = await writeN(cache, 'c', 1);
    assert.ok(c[0]! > Math.max(...used));
    for (const u of c) used.add(u);
    cache.close();

    await rm(path.join(dataDir, 'state.db'));
    cache = await open(dataDir);
    const d = await writeN(cache, 'd', 1);
    assert.ok(d[0]! > Math.max(...used));
    cache.close();
  });

  it('after a local removal and a lost state.db (next-uid floor)', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir);
    const uids = await writeN(cache, 'a', 3);
    assert.equal(await cache.account('acct').remove([uids[2]!]), 1);
    assert.ok(cache.account('acct').has('INBOX', 'a2'), 'tombstoned after remove');
    assert.deepEqual(
      cache
        .account('acct')
        .list('INBOX')
        .map((m) => m.uid),
      uids.slice(0, 2),
    );
    cache.close();
    await rm(path.join(dataDir, 'state.db'));
    cache = await open(dataDir);
    const [u] = await writeN(cache, 'b', 1);
    assert.ok(u! > uids[2]!);
    cache.close();
  });
});

describe('rekey, cursors, history', () => {
  it('adoptKeys renames the file and survives a lost state.db', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir);
    const store = cache.account('acct');
    for (const uid of [41, 42]) await put(store, 'Lists/node', `i100_${uid}`, `m${uid}\n`);
    await store.commit();
    assert.deepEqual(
      store.list('Lists/node').map((x) => x.key),
      ['i100_41', 'i100_42'],
    );
    const m = store.list('Lists/node').find((x) => x.key === 'i100_42')!;
    assert.equal(await store.adoptKeys('Lists/node', [{ from: 'i100_42', to: 'i200_42' }]), 1);
    assert.ok(!store.has('Lists/node', 'i100_42') && store.has('Lists/node', 'i200_42'));
    const after1 = store.list('Lists/node').find((x) => x.uid === m.uid)!;
    assert.equal(parseName(path.basename(after1.path))!.key, 'i200_42');
    assert.equal(await readFile(after1.path, 'utf8'), 'm42\n');
    assert.equal(await store.adoptKeys('Lists/node', [{ from: 'i200_42', to: 'i100_41' }]), 0); // taken
    cache.close();
    await rm(path.join(dataDir, 'state.db'));
    cache = await open(dataDir);
    assert.deepEqual(
      cache
        .account('acct')
        .list('Lists/node')
        .map((x) => x.key),
      ['i100_41', 'i200_42'],
    );
    cache.close();
  });

  it('stores cursors in the commit transaction and keeps the last 100 sync records', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir);
    const store = cache.account('acct');
    await put(store, 'INBOX', 'i9_1', 'x\n');
    await store.commit(() => cache.setCursor('acct', 'INBOX', { uidValidity: '18446744073709551615', lastUid: 1 }));
    cache.setCursor('acct', 'Archive', { uidValidity: '9', lastUid: 7, highestModseq: '12345678901234567890' });
    for (let i = 0; i < 130; i++) {
      cache.recordSync({
        account: 'acct',
        startedAt: i,
        finishedAt: i + 1,
        result: 'ok',
        newMessages: i,
        bytes: 0,
        skipped: 0,
      });
    }
    cache.recordSync({
      account: 'acct',
      startedAt: 200,
      finishedAt: 201,
      result: 'offline',
      newMessages: 0,
      bytes: 0,
      skipped: 0,
      error: 'ECONNREFUSED',
    });
    cache.close();
    cache = await open(dataDir);
    assert.deepEqual(cache.getCursor('acct', 'INBOX'), { uidValidity: '18446744073709551615', lastUid: 1 });
    assert.deepEqual(cache.getCursor('acct', 'Archive'), {
      uidValidity: '9',
      lastUid: 7,
      highestModseq: '12345678901234567890',
    });
    assert.equal(cache.getCursor('acct', 'Nope'), undefined);
    assert.equal(cache.lastSync('acct')?.error, 'ECONNREFUSED');
    assert.equal(cache.lastSync('other'), undefined);
    const kept = (cache as unknown as { ledger: { db: import('better-sqlite3').Database } }).ledger.db
      .prepare('SELECT count(*) AS n FROM sync_history WHERE account = ?')
      .get('acct') as { n: number };
    assert.equal(kept.n, 100);
    cache.close();
  });

  it('keeps the pull backoff and a throttled pull across a reopen; clearing removes it', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir, ['acct', 'other']);
    cache.setPullBackoff('acct', { failures: 3, until: 1_700_000_000_000, reason: 'throttled', error: 'slow down' });
    cache.setPullBackoff('other', { failures: 1, until: 5, reason: 'auth' });
    cache.setPullBackoff('other', { failures: 2, until: 9, reason: 'error' });
    cache.recordSync({
      account: 'acct',
      startedAt: 1,
      finishedAt: 2,
      result: 'throttled',
      newMessages: 0,
      bytes: 0,
      skipped: 0,
      error: 'slow down',
    });
    cache.close();
    cache = await open(dataDir, ['acct', 'other']);
    assert.deepEqual(cache.pullBackoff('acct'), {
      failures: 3,
      until: 1_700_000_000_000,
      reason: 'throttled',
      error: 'slow down',
    });
    assert.deepEqual(cache.pullBackoff('other'), { failures: 2, until: 9, reason: 'error' });
    assert.equal(cache.lastSync('acct')?.result, 'throttled');
    cache.setPullBackoff('acct', undefined);
    cache.close();
    cache = await open(dataDir, ['acct', 'other']);
    assert.equal(cache.pullBackoff('acct'), undefined);
    assert.equal(cache.pullBackoff('nobody'), undefined);
    cache.close();
  });
});

describe('throughput', () => {
  it('10,000 messages of 7 KB in batches of 100 (printed, not asserted)', async () => {
    const cache = await open(await tempDir());
    const store = cache.account('acct');
    const body = Buffer.alloc(7 * 1024, 'abcdefghij\n');
    const t0 = performance.now();
    for (let b = 0; b < 100; b++) {
      const finishing: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        const p = await store.begin('INBOX', `p${b}_${i}`);
        p.stream.write(body);
        finishing.push(p.finish());
      }
      await Promise.all(finishing);
      await store.commit();
    }
    const ms = performance.now() - t0;
    assert.equal(cache.stats('acct').messages, 10_000);
    console.log(
      `# cache throughput: 10000 x 7 KB in ${(ms / 1000).toFixed(2)} s = ${Math.round(10_000 / (ms / 1000))} msg/s, ${(70_000 / 1024 / (ms / 1000)).toFixed(1)} MiB/s`,
    );
    cache.close();
  });
});

describe('write errors (disk full)', () => {
  it('a write error after the producer stopped listening rejects finish(), never crashes the process', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir);
    const store = cache.account('acct');
    const p = await store.begin('INBOX', 'kfull');
    // the descriptor fails under the writer, as a full disk fails a write (ENOSPC): a read-only one
    const readOnly = openSync('/dev/null', 'r');
    (p.stream as unknown as { fd: number }).fd = readOnly;
    p.stream.write(Buffer.alloc(1000, 0x61));
    p.stream.end();
    await new Promise((r) => setTimeout(r, 20)); // the 'error' event has been emitted by now
    await assert.rejects(p.finish());
    assert.equal(store.has('INBOX', 'kfull'), false, 'the key is free again');
    closeSync(readOnly);
    await store.releaseSpares();
    assert.deepEqual(await readdir(path.join(dataDir, 'accounts/acct/Maildir/tmp')), [], 'no temp file left');
    cache.close();
  });
});
