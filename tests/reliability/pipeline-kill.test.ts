/**
 * The pull pipeline's durability order (docs/architecture.md invariants 3 and 6), under kill -9:
 * a real child process (tests/support/pipeline-kill-child.ts) pulls through the real BatchWriter
 * and SIGKILLs itself right after one step of one message: its data fsync, its rename into new/,
 * the fsync of new/, the SQLite commit, the upstream DELE. Then start-up recovery and a second
 * run finish the pull. Every run's trace must show, for each message, data fsynced → renamed
 * into new/ → new/ fsynced → row committed → DELE; at the end every message is stored exactly
 * once with its bytes, and the upstream is empty (nothing lost, nothing fetched twice).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { maildirPath, parseName } from '../../src/cache/maildir.js';

const child = fileURLToPath(new URL('../support/pipeline-kill-child.ts', import.meta.url));
const N = 30;
const body = (key: string): Buffer =>
  Buffer.from(`Subject: ${key}\r\n\r\n${`line of ${key}\n`.repeat(1 + ((Number(key.slice(1)) * 53) % 200))}`);

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Run the child; resolves with its trace and whether it was killed. */
function run(
  dataDir: string,
  upstream: string,
  kill?: [string, number],
): Promise<{ trace: string[]; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', child, dataDir, upstream, ...(kill ? [kill[0], String(kill[1])] : [])];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      if (signal !== 'SIGKILL' && code !== 0) return reject(new Error(`child exited ${code}: ${err}`));
      resolve({ trace: out.split('\n').filter(Boolean), killed: signal === 'SIGKILL' });
    });
  });
}

/** What earlier runs did: keys in new/ with new/ fsynced, keys in new/ not fsynced yet, keys committed. */
interface Durable {
  inNew: Set<string>;
  unsynced: Set<string>;
  committed: Set<string>;
}

/** Check one run's trace step by step; adds what it made durable to `d`. */
function checkOrder(trace: string[], d: Durable): void {
  const pathOf = new Map<string, string>();
  const synced = new Set<string>();
  const renamed = new Map<string, string>(); // key -> new/ dir, waiting for its fsync
  const inNewNow = new Set<string>();
  const issued = new Set<string>(); // renames into new/ issued: done even if the kill came first
  for (const line of trace) {
    const [op, a = '', b = ''] = line.split(' ');
    if (op === 'open') pathOf.set(a, b);
    else if (op === 'fsync') synced.add(pathOf.get(a) ?? `fd ${a}`);
    else if (op === 'renaming' && path.basename(path.dirname(b)) === 'new') {
      assert.ok(synced.has(a), `${a} renamed into new/ before its data was fsynced`);
      issued.add(parseName(path.basename(b))!.key);
    } else if (op === 'rename' && path.basename(path.dirname(b)) === 'new') {
      renamed.set(parseName(path.basename(b))!.key, path.dirname(b));
    } else if (op === 'dirsync') {
      for (const [key, dir] of renamed)
        if (dir === a) {
          renamed.delete(key);
          inNewNow.add(key);
        }
      // recovery fsyncs new/ before rows rebuilt from it can be DELEd
      if (a.endsWith('/new')) {
        for (const k of d.unsynced) inNewNow.add(k);
        d.unsynced.clear();
      }
    } else if (op === 'commit') {
      for (const k of a.split(',').filter(Boolean)) {
        assert.ok(inNewNow.has(k), `${k} committed before it was in new/ and new/ fsynced`);
        d.committed.add(k);
      }
    } else if (op === 'dele') {
      for (const k of a.split(','))
        assert.ok(
          d.committed.has(k) || d.inNew.has(k) || inNewNow.has(k),
          `${k} deleted upstream before it was durable`,
        );
    }
  }
  for (const k of inNewNow) d.inNew.add(k);
  // found by recovery, which must fsync new/ before any DELE
  for (const k of issued) if (!inNewNow.has(k)) d.unsynced.add(k);
}

describe('pull pipeline under kill -9 at each step', () => {
  const steps: Array<[string, number]> = [
    ['fsync', 1],
    ['fsync', 12],
    ['rename', 1],
    ['rename', 10],
    ['dirsync', 1],
    ['dirsync', 2],
    ['commit', 1],
    ['commit', 2],
    ['dele', 1],
    ['dele', 2],
  ];
  for (const [step, n] of steps) {
    it(`keeps every message exactly once when killed after ${step} #${n}`, async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'lp-pipekill-'));
      dirs.push(root);
      const dataDir = path.join(root, 'data');
      const upstream = path.join(root, 'upstream');
      await mkdir(upstream, { recursive: true });
      for (let i = 0; i < N; i++) await writeFile(path.join(upstream, `p${i}`), body(`p${i}`));
      const durable: Durable = { inNew: new Set(), unsynced: new Set(), committed: new Set() };

      const first = await run(dataDir, upstream, [step, n]);
      assert.ok(first.killed, `the child reached ${step} #${n} and was killed`);
      checkOrder(first.trace, durable);
      const second = await run(dataDir, upstream);
      assert.ok(!second.killed);
      checkOrder(second.trace, durable);

      assert.deepEqual(await readdir(upstream), [], 'every message deleted upstream');
      const cache = await Cache.open({ dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
      try {
        const listed = cache.account('a').list('INBOX');
        assert.deepEqual(listed.map((m) => m.key).sort(), Array.from({ length: N }, (_, i) => `p${i}`).sort());
        for (const m of listed) assert.deepEqual(await readFile(m.path), body(m.key), `bytes of ${m.key}`);
        const md = maildirPath(dataDir, 'a');
        const files = [...(await readdir(path.join(md, 'new'))), ...(await readdir(path.join(md, 'cur')))];
        assert.equal(files.length, N, 'one file per message');
        assert.deepEqual(await readdir(path.join(md, 'tmp')), [], 'no temp file left');
        assert.equal(cache.recovery.get('a')!.quarantined, 0);
      } finally {
        cache.close();
      }
    });
  }
});
