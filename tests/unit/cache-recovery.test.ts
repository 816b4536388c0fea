/**
 * Start-up recovery of the cache (invariant 8) on crash fixtures built on disk, and a
 * subprocess that is SIGKILLed at random moments while it writes and commits batches. The
 * fixtures run twice: after a crash (`close()`, no clean-shutdown record) and after a clean
 * stop (`shutdown()`, a record): a record must never hide a change made while stopped.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  appendFile,
  copyFile,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { folderDir, maildirPath, parseName, quarantinePath, replaceKey } from '../../src/cache/maildir.js';
import { crashBody, crashFolder } from '../support/cache-crash-child.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'localpost-recovery-'));
  dirs.push(d);
  return d;
}

const open = (dataDir: string): Promise<Cache> => Cache.open({ dataDir, accounts: ['acct'], log });

type Stop = (cache: Cache) => Promise<void>;
const stops: Record<string, Stop> = {
  crash: async (cache) => cache.close(),
  'clean stop': (cache) => cache.shutdown(),
};

/** A data dir with `n` committed messages in INBOX and 2 in Archive; returns their snapshot. */
async function seeded(n = 5, stop: Stop = stops.crash!) {
  const dataDir = await tempDir();
  const cache = await open(dataDir);
  const store = cache.account('acct');
  for (let i = 0; i < n; i++) {
    const p = await store.begin('INBOX', `p${i}`);
    p.stream.write(`Subject: ${i}\n\n${'x'.repeat(i * 100)}\n`);
    await p.finish();
  }
  for (const k of ['i7_1', 'i7_2']) {
    const p = await store.begin('Archive', k);
    p.stream.write(`Subject: ${k}\r\n\r\nbody`);
    await p.finish();
  }
  await store.commit();
  await store.releaseSpares();
  const snap = snapshot(cache);
  await stop(cache);
  return { dataDir, snap, md: maildirPath(dataDir, 'acct') };
}

/** What must survive recovery: everything but paths and storedAt. */
function snapshot(cache: Cache) {
  const s = cache.account('acct');
  return ['INBOX', 'Archive'].flatMap((f) =>
    s.list(f).map((m) => ({ uid: m.uid, folder: m.folder, key: m.key, size: m.size, wsize: m.wsize, flags: m.flags })),
  );
}

for (const [mode, stop] of Object.entries(stops)) {
  describe(`recovery on crash fixtures, after a ${mode}`, () => {
    it('removes stray temp files (ours always, foreign ones only when stale)', async () => {
      const { dataDir, md, snap } = await seeded(1, stop);
      await writeFile(path.join(md, 'tmp', '9.4242.1'), 'half a message');
      await writeFile(path.join(md, '.Archive', 'tmp', '10.4242.2'), '');
      // created ahead of need (tmp-pool.ts, UID 0): empty, or written by a pull that crashed
      await writeFile(path.join(md, 'tmp', '0.4242.3'), '');
      await writeFile(path.join(md, '.Archive', 'tmp', '0.4242.4'), 'Subject: half');
      await writeFile(path.join(md, 'tmp', '1700000000.M1P2.other-mda'), 'being delivered');
      const old = path.join(md, 'tmp', '1600000000.M1P2.old');
      await writeFile(old, 'abandoned');
      const t = (Date.now() - 40 * 3600 * 1000) / 1000;
      await utimes(old, t, t);
      const cache = await open(dataDir);
      assert.equal(cache.recovery.get('acct')!.removedTmp, 5);
      assert.deepEqual(await readdir(path.join(md, 'tmp')), ['1700000000.M1P2.other-mda']);
      assert.deepEqual(await readdir(path.join(md, '.Archive', 'tmp')), []);
      assert.deepEqual(snapshot(cache), snap);
      await stop(cache);
    });

    it('indexes a file renamed into new/ whose batch never committed', async () => {
      const dataDir = await tempDir();
      let cache = await open(dataDir);
      const p = await cache.account('acct').begin('INBOX', 'pabc');
      p.stream.write('Subject: uncommitted\n');
      const m = await p.finish();
      await stop(cache); // crash before commit()
      cache = await open(dataDir);
      const store = cache.account('acct');
      assert.equal(cache.recovery.get('acct')!.rebuilt, 1);
      assert.ok(store.has('INBOX', 'pabc'), 'no duplicate download');
      assert.deepEqual(
        store.list('INBOX').map((x) => [x.uid, x.key, x.size, x.wsize]),
        [[m.uid, 'pabc', 21, 22]],
      );
      await assert.rejects(store.begin('INBOX', 'pabc'), /already/);
      await stop(cache);
    });

    it('rebuilds every row from the Maildir alone when state.db is deleted', async () => {
      const { dataDir, md, snap } = await seeded(5, stop);
      // Another Maildir reader marked one message seen and moved it to cur/.
      const [name] = (await readdir(path.join(md, 'new'))).sort();
      await rename(path.join(md, 'new', name!), path.join(md, 'cur', `${name}:2,S`));
      for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) await rm(path.join(dataDir, f), { force: true });
      const cache = await open(dataDir);
      const expected = snap.map((m) => (m.uid === parseName(name!)!.uid ? { ...m, flags: 'S' } : m));
      assert.deepEqual(snapshot(cache), expected);
      assert.equal(cache.recovery.get('acct')!.rebuilt, snap.length);
      for (const m of cache.account('acct').list('INBOX')) assert.ok(existsSync(m.path));
      await stop(cache);
    });

    for (const [what, damage] of [
      [
        'replaced by garbage',
        (f: string) => writeFile(f, createHash('sha512').update('x').digest().toString('hex').repeat(64)),
      ],
      ['truncated inside its header', (f: string) => truncate(f, 50)],
      ['truncated to half its pages', async (f: string) => truncate(f, Math.floor((await stat(f)).size / 2))],
    ] as const) {
      it(`moves a state.db ${what} aside as *.broken and rebuilds`, async () => {
        const { dataDir, snap } = await seeded(60, stop);
        await damage(path.join(dataDir, 'state.db'));
        const cache = await open(dataDir);
        const broken = (await readdir(dataDir)).filter((f) => /^state\.db\.broken-\d+$/.test(f));
        assert.equal(broken.length, 1, `files: ${(await readdir(dataDir)).join(' ')}`);
        assert.deepEqual(snapshot(cache), snap);
        await stop(cache);
      });
    }

    it('adopts foreign-named files with a fresh UID and a content key', async () => {
      const { dataDir, md, snap } = await seeded(2, stop);
      const a = Buffer.from('Subject: delivered by procmail\n\nhello\n');
      const b = Buffer.from('Subject: dovecot copy\r\n\r\nbye');
      await writeFile(path.join(md, 'new', '1700000000.M1P2.mda'), a);
      await writeFile(path.join(folderDir(md, 'Archive'), 'cur', '1700000001.M3P4.mda,S=999:2,RS'), b);
      let cache = await open(dataDir);
      assert.equal(cache.recovery.get('acct')!.adopted, 2);
      const maxUid = Math.max(...snap.map((m) => m.uid));
      const sha = (x: Buffer) => `x${createHash('sha256').update(x).digest('hex').slice(0, 16)}`;
      const inbox = cache.account('acct').list('INBOX').at(-1)!;
      const arch = cache.account('acct').list('Archive').at(-1)!;
      assert.deepEqual([inbox.key, inbox.size, inbox.wsize, inbox.flags], [sha(a), a.length, a.length + 3, '']);
      assert.deepEqual([arch.key, arch.size, arch.wsize, arch.flags], [sha(b), b.length, b.length + 2, 'RS']);
      assert.ok(inbox.uid > maxUid && arch.uid > maxUid && inbox.uid !== arch.uid);
      assert.deepEqual(await readFile(inbox.path), a);
      assert.equal(path.basename(path.dirname(arch.path)), 'cur');
      assert.ok(!existsSync(path.join(md, 'new', '1700000000.M1P2.mda')));
      const after1 = snapshot(cache);
      await stop(cache);
      cache = await open(dataDir);
      const r = cache.recovery.get('acct')!;
      assert.deepEqual([r.adopted, r.rebuilt, r.dropped], [0, 0, 0]);
      assert.deepEqual(snapshot(cache), after1);
      await stop(cache);
    });

    it('quarantines a file whose real size disagrees with S=, and a second file with the same UID', async () => {
      // Sizes are checked for files the index does not vouch for (here: state.db was lost); a
      // file whose row matches its name was verified when it was stored.
      const { dataDir, md, snap } = await seeded(3, stop);
      const names = (await readdir(path.join(md, 'new'))).sort();
      await appendFile(path.join(md, 'new', names[1]!), 'garbage');
      await copyFile(path.join(md, 'new', names[2]!), path.join(md, 'cur', `${names[2]!}:2,S`));
      for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) await rm(path.join(dataDir, f), { force: true });
      const cache = await open(dataDir);
      const r = cache.recovery.get('acct')!;
      assert.equal(r.quarantined, 2);
      const bad = parseName(names[1]!)!;
      assert.deepEqual(
        snapshot(cache),
        snap.filter((m) => m.uid !== bad.uid),
      );
      assert.ok(!cache.account('acct').has('INBOX', bad.key), 'will be fetched again');
      const q = (await readdir(quarantinePath(dataDir, 'acct'))).sort();
      assert.deepEqual(q, [`${names[1]}.broken`, `${names[2]}:2,S.broken`].sort());
      await stop(cache);
    });

    it('finishes a local deletion interrupted before the unlink', async () => {
      const { dataDir, md, snap } = await seeded(3, stop);
      let cache = await open(dataDir);
      const victim = cache.account('acct').list('INBOX')[1]!;
      await copyFile(victim.path, path.join(dataDir, 'saved'));
      await cache.account('acct').remove([victim.uid]);
      await stop(cache);
      await rename(path.join(dataDir, 'saved'), victim.path); // as if the crash came before rm()
      cache = await open(dataDir);
      assert.equal(cache.recovery.get('acct')!.finishedDeletes, 1);
      assert.ok(!existsSync(victim.path));
      assert.deepEqual(
        snapshot(cache),
        snap.filter((m) => m.uid !== victim.uid),
      );
      assert.ok(cache.account('acct').has('INBOX', victim.key), 'tombstoned');
      assert.ok((await readdir(path.join(md, 'new'))).length === 2);
      await stop(cache);
    });

    it('trusts the file name after a rekey interrupted before the row update', async () => {
      const { dataDir, snap } = await seeded(1, stop);
      let cache = await open(dataDir);
      const m = cache.account('acct').list('Archive')[0]!;
      await stop(cache);
      await rename(m.path, path.join(path.dirname(m.path), replaceKey(path.basename(m.path), 'i8_1')));
      cache = await open(dataDir);
      assert.deepEqual(
        snapshot(cache),
        snap.map((x) => (x.uid === m.uid ? { ...x, key: 'i8_1' } : x)),
      );
      await stop(cache);
    });
  });
}

describe('SIGKILL during writes', () => {
  const child = fileURLToPath(new URL('../support/cache-crash-child.ts', import.meta.url));

  /** Run the child until it has been up for `delayMs` (or for `delayMs` from spawn), then SIGKILL it. */
  function runAndKill(dataDir: string, delayMs: number, beforeReady: boolean): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let timer: NodeJS.Timeout | undefined;
      const kill = () => (timer ??= setTimeout(() => proc.kill('SIGKILL'), delayMs));
      if (beforeReady) kill();
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.startsWith('ready\n')) kill();
      });
      proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
      proc.on('error', reject);
      proc.on('exit', (code, signal) => {
        if (signal !== 'SIGKILL') return reject(new Error(`child exited ${code}: ${err}`));
        const complete = out.slice(0, out.lastIndexOf('\n') + 1);
        resolve(complete.split('\n').filter((l) => l.includes('\t')));
      });
    });
  }

  it('keeps every committed key exactly once over 20 random kills', async () => {
    const dataDir = await tempDir();
    const committed = new Set<string>();
    let total = 0;
    for (let round = 0; round < 20; round++) {
      const lines = await runAndKill(dataDir, Math.floor(Math.random() * 400), round % 5 === 4);
      for (const l of lines) committed.add(l);
      const cache = await Cache.open({ dataDir, accounts: ['a'], log });
      const store = cache.account('a');
      const md = maildirPath(dataDir, 'a');
      const seen = new Map<string, number>();
      for (const folder of ['INBOX', 'Lists/node']) {
        for (const m of store.list(folder)) {
          const fk = `${folder}\t${m.key}`;
          seen.set(fk, (seen.get(fk) ?? 0) + 1);
          assert.equal(crashFolder(m.key), folder);
          assert.deepEqual(await readFile(m.path), crashBody(m.key), `bytes of ${m.key}`);
        }
        const dir = existsSync(folderDir(md, folder)) ? folderDir(md, folder) : undefined;
        if (!dir) continue;
        assert.deepEqual(await readdir(path.join(dir, 'tmp')), [], `tmp/ of ${folder} after round ${round}`);
        const onDisk = [...(await readdir(path.join(dir, 'new'))), ...(await readdir(path.join(dir, 'cur')))];
        const diskKeys = onDisk.map((n) => parseName(n)!.key);
        assert.equal(new Set(diskKeys).size, diskKeys.length, 'no key twice on disk');
        assert.equal(diskKeys.length, store.list(folder).length, 'every file indexed');
      }
      for (const [fk, n] of seen) assert.equal(n, 1, `${fk} appears ${n} times`);
      for (const fk of committed) assert.equal(seen.get(fk), 1, `committed ${fk} missing after round ${round}`);
      assert.equal(cache.recovery.get('a')!.quarantined, 0);
      total = seen.size;
      await cache.shutdown(); // the next child's open removes the record: its crash is recovered in full
    }
    assert.ok(committed.size > 0, 'the child committed something');
    console.log(`# crash test: ${committed.size} keys reported committed, ${total} stored after 20 kills`);
  });
});
