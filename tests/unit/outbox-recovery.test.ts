/**
 * Start-up recovery of the outbox (invariant 8, src/cache/outbox-recovery.ts): every state a
 * crash can leave, built by hand, then a reopen.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  chunks,
  inboxMessages,
  message,
  names,
  type OutboxFixture,
  outboxFiles,
  outboxFixture,
} from '../support/outbox.js';

const fixtures: OutboxFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});
async function fixture(): Promise<OutboxFixture> {
  const f = await outboxFixture();
  fixtures.push(f);
  return f;
}
const env = { account: 'alice', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'] };

test('temp files, an .eml without .json and stray rewrite temps are removed; queued entries survive', async () => {
  const fx = await fixture();
  const keep = await fx.outbox.enqueue(env, chunks(message({ messageId: 'keep@x' })));
  const half = await fx.outbox.enqueue(env, chunks(message({ messageId: 'half@x' })));
  const dir = path.join(fx.dataDir, 'outbox');
  await rename(path.join(dir, `${half.id}.json`), path.join(dir, 'tmp', `${half.id}.json`)); // crash between the renames
  await writeFile(path.join(dir, 'tmp', 'mf00000-deadbeef.eml'), 'partial');
  await writeFile(path.join(dir, `${keep.id}.json.tmp-123-4`), '{"torn');
  await fx.reopen();
  assert.deepEqual(await outboxFiles(fx.dataDir), [`${keep.id}.eml`, `${keep.id}.json`]);
  assert.deepEqual(await names(path.join(dir, 'tmp')), []);
  assert.deepEqual(
    fx.outbox.queued().map((e) => e.id),
    [keep.id],
  );
  assert.deepEqual(fx.outbox.recovery, {
    queued: 1,
    tmpRemoved: 3,
    halfWritten: 1,
    finished: 0,
    requeued: 0,
    broken: 0,
    staleRows: 1,
  });
  assert.equal(fx.outbox.index.get(half.id), undefined, 'the row of the unfinished acceptance is gone');
});

test('unreadable metadata, or pending metadata without a message, is moved aside as *.broken', async () => {
  const fx = await fixture();
  const a = await fx.outbox.enqueue(env, chunks(message({ messageId: 'a@x' })));
  const b = await fx.outbox.enqueue(env, chunks(message({ messageId: 'b@x' })));
  const dir = path.join(fx.dataDir, 'outbox');
  await writeFile(path.join(dir, `${a.id}.json`), '{"v":1,"id":');
  await rename(path.join(dir, `${b.id}.eml`), path.join(fx.dataDir, 'lost.eml'));
  await fx.reopen();
  assert.deepEqual(
    await outboxFiles(fx.dataDir),
    [`${a.id}.eml.broken`, `${a.id}.json.broken`, `${b.id}.json.broken`].sort(),
  );
  assert.equal(fx.outbox.queued().length, 0);
  assert.equal(fx.outbox.recovery!.broken, 2);
});

test('finishing interrupted: all sent → deleted; failed without bounce → bounced and moved to failed/', async () => {
  const fx = await fixture();
  const sent = await fx.outbox.enqueue(env, chunks(message({ messageId: 's@x' })));
  const failed = await fx.outbox.enqueue(env, chunks(message({ messageId: 'f@x', subject: 'doomed' })));
  const dir = path.join(fx.dataDir, 'outbox');
  const edit = async (id: string, fn: (j: { recipients: Array<Record<string, unknown>> }) => void) => {
    const file = path.join(dir, `${id}.json`);
    const j = JSON.parse(await readFile(file, 'utf8'));
    fn(j);
    await writeFile(file, JSON.stringify(j));
  };
  // "sent" was recorded, then the crash came before the files were removed.
  await edit(sent.id, (j) => {
    for (const r of j.recipients) r.state = 'sent';
  });
  // "failed" recorded, bounce not written yet.
  await edit(failed.id, (j) => {
    j.recipients[0]!.state = 'sent';
    Object.assign(j.recipients[1]!, { state: 'failed', code: 550, response: '550 5.1.1 no such user' });
  });
  // And one whose .eml already went to failed/ before the crash.
  const moved = await fx.outbox.enqueue(env, chunks(message({ messageId: 'm@x' })));
  await edit(moved.id, (j) => {
    for (const r of j.recipients) Object.assign(r, { state: 'failed', bounced: true });
  });
  await rename(path.join(dir, `${moved.id}.eml`), path.join(dir, 'failed', `${moved.id}.eml`));
  await fx.reopen();
  assert.deepEqual(await outboxFiles(fx.dataDir), []);
  assert.deepEqual(
    await names(path.join(dir, 'failed')),
    [`${failed.id}.eml`, `${failed.id}.json`, `${moved.id}.eml`, `${moved.id}.json`].sort(),
  );
  const inbox = await inboxMessages(fx.dataDir, 'alice');
  assert.equal(inbox.length, 1);
  assert.match(inbox[0]!, /Subject: doomed/);
  assert.equal(fx.outbox.recovery!.finished, 3);
  assert.equal(fx.outbox.index.get(sent.id)!.state, 'sent');
  assert.equal(fx.outbox.index.get(failed.id)!.state, 'failed');
  // A second restart changes nothing and writes no second bounce.
  await fx.reopen();
  assert.equal((await inboxMessages(fx.dataDir, 'alice')).length, 1);
});

test('an interrupted retry (.json back, .eml still in failed/) is completed', async () => {
  const fx = await fixture();
  const { id } = await fx.outbox.enqueue(env, chunks(message()));
  await fx.outbox.recordAttempt(id, { at: fx.clock.now(), failed: env.to.map((address) => ({ address, code: 550 })) });
  const dir = path.join(fx.dataDir, 'outbox');
  const j = JSON.parse(await readFile(path.join(dir, 'failed', `${id}.json`), 'utf8'));
  for (const r of j.recipients) {
    r.state = 'pending';
    delete r.bounced;
  }
  await writeFile(path.join(dir, `${id}.json`), JSON.stringify(j)); // crash right after the first step
  await fx.reopen();
  assert.deepEqual(await outboxFiles(fx.dataDir), [`${id}.eml`, `${id}.json`]);
  assert.deepEqual(await names(path.join(dir, 'failed')), []);
  assert.deepEqual(
    fx.outbox.queued().map((e) => e.id),
    [id],
  );
  assert.equal(fx.outbox.recovery!.requeued, 1);
});

test('a lost state.db index is rebuilt from the files', async () => {
  const fx = await fixture();
  const { id } = await fx.outbox.enqueue(env, chunks(message({ messageId: 'idx@x' })));
  fx.outbox.index.db.exec('DELETE FROM outbox');
  await fx.reopen();
  assert.equal(fx.outbox.index.get(id)!.state, 'queued');
  // and the rebuilt row still detects a duplicate
  assert.equal((await fx.outbox.enqueue(env, chunks(message({ messageId: 'idx@x' })))).duplicate, true);
});

test('an entry whose files are symbolic links is neither loaded nor touched (docs/security.md)', async () => {
  const fx = await fixture();
  const e = await fx.outbox.enqueue(env, chunks(message({ messageId: 'linked@x' })));
  const dir = path.join(fx.dataDir, 'outbox');
  const elsewhere = path.join(fx.dataDir, 'elsewhere');
  await mkdir(elsewhere);
  for (const ext of ['eml', 'json']) {
    await rename(path.join(dir, `${e.id}.${ext}`), path.join(elsewhere, `${e.id}.${ext}`));
    await symlink(path.join(elsewhere, `${e.id}.${ext}`), path.join(dir, `${e.id}.${ext}`));
  }
  await fx.reopen();
  assert.deepEqual(fx.outbox.queued(), []);
  assert.deepEqual(await outboxFiles(fx.dataDir), [`${e.id}.eml`, `${e.id}.json`], 'the links are left alone');
  assert.deepEqual(await names(elsewhere), [`${e.id}.eml`, `${e.id}.json`]);
});
