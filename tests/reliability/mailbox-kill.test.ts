/**
 * The local IMAP view's changes under kill -9 (docs/imap-server.md, src/cache/mailbox-intent.ts):
 * a child (tests/support/mailbox-crash-child.ts) runs one change and SIGKILLs itself right before
 * or right after its transaction. After start-up recovery the on-disk invariants hold
 * (tests/reliability/invariants.ts), the account is exactly as before the change (killed before
 * the transaction) or exactly as after it (killed after), no message is lost or duplicated, and
 * the journal has the change's entry exactly when the change stands.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { CRASH_OPS, TRASH_POINTS } from '../support/mailbox-crash-child.js';
import { cacheFaults } from './invariants.js';

const child = fileURLToPath(new URL('../support/mailbox-crash-child.ts', import.meta.url));
const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function run(dataDir: string, op: string, point: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dataDir, op, point], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(signal === 'SIGKILL');
    });
  });
}

/** What the test compares: per folder, the subjects' bodies; the journal's kinds; INBOX's first flags. */
async function state(dataDir: string) {
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  try {
    const mb = cache.mailboxes('a', { protocol: 'imap' });
    const folders: Record<string, string[]> = {};
    for (const f of mb.folders().filter((x) => x.selectable)) {
      const s = mb.select(f.name);
      folders[f.name] = [];
      for (const m of s.messages)
        folders[f.name]?.push((await mb.read(f.name, m.uid)).toString().split('\r\n')[0] ?? '');
    }
    const flags = mb.select('INBOX').messages[0]?.flags ?? [];
    const store = cache.account('a');
    return {
      folders,
      journal: cache.journal.pending('a').map((e) => e.change.kind),
      flags,
      // every INBOX key stays known (cached or tombstoned): never downloaded again
      known: ['i1_1', 'i1_2', 'i1_3'].every((k) => store.has('INBOX', k)),
      deleteUpstream: store.pendingUpstreamDeletes('INBOX'),
    };
  } finally {
    cache.close();
  }
}

async function seeded(): Promise<string> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'localpost-mbx-kill-'));
  dirs.push(dataDir);
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  const store = cache.account('a');
  for (const [folder, key] of [
    ['INBOX', 'i1_1'],
    ['INBOX', 'i1_2'],
    ['INBOX', 'i1_3'],
    ['Archive', 'i2_1'],
  ]) {
    const p = await store.begin(folder as string, key as string);
    p.stream.write(Buffer.from(`Message-ID: <${key}@x>\r\n\r\nbody\r\n`));
    await p.finish();
  }
  await store.commit();
  await store.releaseSpares();
  cache.mailboxes('a', { protocol: 'imap' });
  cache.close();
  return dataDir;
}

describe('local IMAP changes under kill -9', () => {
  for (const op of CRASH_OPS) {
    it(`${op}: killed before its transaction → as before; after it → as after`, async () => {
      const base = await seeded();
      const before = await state(base);
      // the reference "after": the same change run to completion
      const done = await seeded();
      assert.equal(await run(done, op, 'never'), false);
      const afterState = await state(done);
      assert.notDeepEqual(afterState, before);
      for (const point of ['before', 'after'] as const) {
        const dataDir = await seeded();
        assert.equal(await run(dataDir, op, point), true, 'the child was killed');
        const got = await state(dataDir);
        assert.deepEqual(cacheFaults(dataDir, 'a'), []);
        assert.deepEqual(got, point === 'before' ? before : afterState);
      }
    });
  }
});

describe('the POP3 move to Trash under kill -9', () => {
  it('killed at each step: the message is in INBOX or in Trash (new UID) exactly once, never fetched again', async () => {
    const base = await seeded();
    const before = await state(base);
    const done = await seeded();
    assert.equal(await run(done, 'trash', 'never'), false);
    const afterState = await state(done);
    assert.deepEqual(afterState.folders.Trash, ['Message-ID: <i1_1@x>']);
    assert.deepEqual(afterState.deleteUpstream, ['i1_1']);
    assert.equal(afterState.folders.INBOX?.length, 2);
    for (const point of TRASH_POINTS) {
      const dataDir = await seeded();
      assert.equal(await run(dataDir, 'trash', point), true, `the child was killed at ${point}`);
      const got = await state(dataDir);
      assert.deepEqual(cacheFaults(dataDir, 'a'), [], point);
      assert.deepEqual(got, point === 'link' || point === 'before' ? before : afterState, point);
      assert.ok(got.known, point);
    }
  });
});
