/**
 * The cost of an acceptance, counted (src/cache/outbox/commit-group.ts, io.ts): messages ready
 * at the same time share one SQLite transaction and one directory fsync, each message's own
 * files are still fsynced and renamed before its answer, and the real file operations take two
 * thread-pool hops per message plus the shared directory fsync.
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { after, test } from 'node:test';
import type { OutboxIo } from '../../src/cache/outbox/outbox.js';
import { chunks, message, type OutboxFixture, outboxFiles, outboxFixture } from '../support/outbox.js';

const fixtures: OutboxFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

const env = { account: 'alice', from: 'alice@example.test', to: ['bob@example.test'] };
const N = 8;

/** Committed SQLite transactions in a WAL file so far (commit frames of its current generation). */
function walCommits(wal: string): number {
  const b = readFileSync(wal);
  if (b.length < 32) return 0;
  const pageSize = b.readUInt32BE(8);
  const salt = [b.readUInt32BE(16), b.readUInt32BE(20)];
  let commits = 0;
  for (let off = 32; off + 24 + pageSize <= b.length; off += 24 + pageSize) {
    if (b.readUInt32BE(off + 8) !== salt[0] || b.readUInt32BE(off + 12) !== salt[1]) break;
    if (b.readUInt32BE(off + 4) !== 0) commits++;
  }
  return commits;
}

test(`${N} messages whose files are synced together: one transaction, one directory fsync, every file fsynced and renamed`, async () => {
  const counts = { fileSyncs: 0, renames: 0, dirSyncs: 0 };
  // Every file's close waits for all the others: the messages are ready together.
  const gate: (() => void)[] = [];
  const io: Partial<OutboxIo> = {
    async create(file) {
      const fh = await open(file, 'wx', 0o600);
      return {
        write: async (b) => void (await fh.write(b)),
        sync: async () => {
          counts.fileSyncs++;
          await fh.sync();
        },
        close: async () => {
          await fh.close();
          await new Promise<void>((r) => {
            gate.push(r);
            if (gate.length === 2 * N) for (const g of gate) g();
          });
        },
      };
    },
    async rename(from, to) {
      counts.renames++;
      await rename(from, to);
    },
    async fsyncDir() {
      counts.dirSyncs++;
    },
  };
  const fx = await outboxFixture({ io });
  fixtures.push(fx);
  const wal = `${fx.outbox.index.db.name}-wal`;
  const before = walCommits(wal);
  const ids = await Promise.all(
    Array.from({ length: N }, (_, i) => fx.outbox.enqueue(env, chunks(message({ messageId: `g${i}@x` }), 100))),
  );
  assert.equal(ids.length, N);
  assert.equal((await outboxFiles(fx.dataDir)).length, 2 * N);
  assert.deepEqual(counts, { fileSyncs: 2 * N, renames: 2 * N, dirSyncs: 1 });
  assert.equal(walCommits(wal) - before, 1, 'one SQLite transaction for the group');
  assert.equal(fx.outbox.index.list().length, N);
});

test('the real file operations: two thread-pool hops per message, plus the shared directory fsync', async () => {
  const fx = await outboxFixture();
  fixtures.push(fx);
  let hops = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'FSREQCALLBACK' || type === 'FSREQPROMISE') hops++;
    },
  });
  hook.enable();
  try {
    await Promise.all(
      Array.from({ length: N }, (_, i) => fx.outbox.enqueue(env, chunks(message({ messageId: `h${i}@x` }), 100))),
    );
  } finally {
    hook.disable();
  }
  assert.equal((await outboxFiles(fx.dataDir)).length, 2 * N);
  // two file fsyncs each, and at most one directory fsync each (fewer when they share)
  assert.ok(hops >= 2 * N && hops <= 3 * N, `${hops} thread-pool requests for ${N} messages`);
});

test('sends recorded at the same time: their files removed, one directory fsync and one transaction for all', async () => {
  let dirSyncs = 0;
  const fx = await outboxFixture({
    io: {
      async fsyncDir() {
        dirSyncs++;
      },
    },
  });
  fixtures.push(fx);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push((await fx.outbox.enqueue(env, chunks(message({ messageId: `s${i}@x` })))).id);
  const wal = `${fx.outbox.index.db.name}-wal`;
  const before = walCommits(wal);
  dirSyncs = 0;
  const at = fx.clock.now();
  await Promise.all(
    ids.map((id) => fx.outbox.recordAttempt(id, { at, sent: [{ address: 'bob@example.test', code: 250 }] })),
  );
  assert.deepEqual(await outboxFiles(fx.dataDir), []);
  assert.equal(dirSyncs, 1);
  assert.equal(walCommits(wal) - before, 1, 'one SQLite transaction for the four marks');
  for (const id of ids) assert.equal(fx.outbox.index.get(id)?.state, 'sent');
});
