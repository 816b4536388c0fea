/**
 * The outbox (src/cache/outbox.ts): acceptance is durable and all-or-nothing (invariant
 * 7), the envelope is kept (Bcc lives only there), duplicates within 30 minutes are not queued twice,
 * per-recipient results, bounces and failed/, retry and drop.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { MessageTooLargeError, type OutboxIo } from '../../src/cache/outbox/outbox.js';
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
async function fixture(...a: Parameters<typeof outboxFixture>): Promise<OutboxFixture> {
  const f = await outboxFixture(...a);
  fixtures.push(f);
  return f;
}

const env = {
  account: 'alice',
  from: 'alice@example.test',
  to: ['bob@example.test', 'carol@example.test', 'hidden@example.test'],
};

describe('acceptance', () => {
  test('stores the exact bytes and the whole envelope (Bcc included), durably, nothing in tmp/', async () => {
    const fx = await fixture();
    const raw = Buffer.concat([
      message({ messageId: 'm1@x', bcc: 'hidden@example.test' }),
      Buffer.from([0xe9, 0x0a, 0x00, 0x2e, 0x0a]),
    ]);
    const r = await fx.outbox.enqueue(env, chunks(raw, 7));
    assert.equal(r.duplicate, false);
    const dir = path.join(fx.dataDir, 'outbox');
    assert.deepEqual(await outboxFiles(fx.dataDir), [`${r.id}.eml`, `${r.id}.json`]);
    assert.ok((await readFile(path.join(dir, `${r.id}.eml`))).equals(raw));
    const json = JSON.parse(await readFile(path.join(dir, `${r.id}.json`), 'utf8'));
    assert.deepEqual(
      json.recipients.map((x: { address: string; state: string }) => [x.address, x.state]),
      env.to.map((a) => [a, 'pending']),
    );
    assert.equal(json.from, env.from);
    assert.equal(json.messageId, 'm1@x');
    assert.equal(json.eightBit, true);
    assert.equal(json.size, raw.length);
    assert.deepEqual(await names(path.join(dir, 'tmp')), []);
    const row = fx.outbox.index.get(r.id)!;
    assert.equal(row.state, 'queued');
    assert.equal(row.recipients, 3);
    // A restart finds it again.
    await fx.reopen();
    assert.deepEqual(
      fx.outbox.queued().map((e) => e.id),
      [r.id],
    );
  });

  test('too large: the stream is read to its end, MessageTooLargeError, nothing kept', async () => {
    const fx = await fixture();
    let read = 0;
    async function* counted() {
      for await (const c of chunks(Buffer.alloc(50_000, 0x61), 4096)) {
        read += c.length;
        yield c;
      }
    }
    await assert.rejects(fx.outbox.enqueue({ ...env, maxBytes: 10_000 }, counted()), MessageTooLargeError);
    assert.equal(read, 50_000);
    assert.deepEqual(await outboxFiles(fx.dataDir), []);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'tmp')), []);
    assert.equal(fx.outbox.queued().length, 0);
  });

  test('the client goes away mid-DATA: rejected, nothing kept', async () => {
    const fx = await fixture();
    await assert.rejects(fx.outbox.enqueue(env, chunks(message(), 10, new Error('ECONNECTION'))), /ECONNECTION/);
    assert.deepEqual(await outboxFiles(fx.dataDir), []);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'tmp')), []);
  });

  for (const stage of ['eml write', 'eml sync', 'json create', 'eml rename', 'json rename', 'dir fsync'] as const) {
    test(`disk full at ${stage}: rejected, stream drained, no file and no row left`, async () => {
      const enospc = () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      const { open, rename } = await import('node:fs/promises');
      const io: Partial<OutboxIo> = {
        async create(file) {
          if (stage === 'json create' && file.endsWith('.json')) throw enospc();
          const fh = await open(file, 'wx', 0o600);
          return {
            write: async (b) => {
              if (stage === 'eml write') throw enospc();
              await fh.write(b);
            },
            sync: async () => {
              if (stage === 'eml sync') throw enospc();
              await fh.sync();
            },
            close: () => fh.close(),
          };
        },
        async rename(from, to) {
          if ((stage === 'eml rename' && to.endsWith('.eml')) || (stage === 'json rename' && to.endsWith('.json')))
            throw enospc();
          await rename(from, to);
        },
        async fsyncDir(dir) {
          if (stage === 'dir fsync' && dir.endsWith('outbox')) throw Object.assign(new Error('EIO'), { code: 'EIO' });
        },
      };
      const fx = await fixture({ io });
      let read = 0;
      async function* counted() {
        for await (const c of chunks(message({ messageId: 'full@x' }), 16)) {
          read += c.length;
          yield c;
        }
      }
      await assert.rejects(fx.outbox.enqueue(env, counted()), /ENOSPC|EIO/);
      assert.equal(read, message({ messageId: 'full@x' }).length);
      assert.deepEqual(await outboxFiles(fx.dataDir), []);
      assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'tmp')), []);
      assert.equal(fx.outbox.queued().length, 0);
      assert.deepEqual(fx.outbox.index.list(), []);
      // The same message later goes through (no dedupe against the failed attempt).
      await fx.reopen({ io: {} });
      const ok = await fx.outbox.enqueue(env, chunks(message({ messageId: 'full@x' })));
      assert.equal(ok.duplicate, false);
    });
  }
});

describe('duplicates', () => {
  test('same Message-ID, envelope and bytes within 30 minutes: 250 with the first id, queued once', async () => {
    const fx = await fixture();
    const raw = message({ messageId: 'dup@x' });
    const a = await fx.outbox.enqueue(env, chunks(raw));
    fx.clock.advance(29 * 60_000);
    const b = await fx.outbox.enqueue(env, chunks(raw));
    assert.deepEqual(b, { id: a.id, duplicate: true });
    assert.equal(fx.outbox.queued().length, 1);
    assert.deepEqual(await outboxFiles(fx.dataDir), [`${a.id}.eml`, `${a.id}.json`]);
    // Still a duplicate after it was sent.
    await fx.outbox.recordAttempt(a.id, {
      at: fx.clock.now(),
      sent: env.to.map((address) => ({ address, code: 250 })),
    });
    assert.equal((await fx.outbox.enqueue(env, chunks(raw))).duplicate, true);
    // After the window it is a new message.
    fx.clock.advance(2 * 60_000);
    assert.equal((await fx.outbox.enqueue(env, chunks(raw))).duplicate, false);
  });

  test('a different envelope, different bytes, or no Message-ID is not a duplicate', async () => {
    const fx = await fixture();
    await fx.outbox.enqueue(env, chunks(message({ messageId: 'd2@x' })));
    assert.equal(
      (await fx.outbox.enqueue({ ...env, to: ['bob@example.test'] }, chunks(message({ messageId: 'd2@x' })))).duplicate,
      false,
    );
    assert.equal(
      (await fx.outbox.enqueue(env, chunks(message({ messageId: 'd2@x', body: 'other' })))).duplicate,
      false,
    );
    await fx.outbox.enqueue(env, chunks(message()));
    assert.equal((await fx.outbox.enqueue(env, chunks(message()))).duplicate, false);
    assert.equal(fx.outbox.queued().length, 5);
  });

  test('two identical submissions at the same time: one queued', async () => {
    const fx = await fixture();
    const raw = message({ messageId: 'race@x' });
    const [a, b] = await Promise.all([fx.outbox.enqueue(env, chunks(raw, 5)), fx.outbox.enqueue(env, chunks(raw, 5))]);
    assert.equal(a.id, b.id);
    assert.equal([a, b].filter((r) => r.duplicate).length, 1);
    assert.equal(fx.outbox.queued().length, 1);
  });
});

describe('delivery results', () => {
  test('one of three refused for good: that one bounced at once, the others kept; moved to failed/ at the end', async () => {
    const fx = await fixture();
    const raw = message({ messageId: 'part@x', subject: 'partial' });
    const { id } = await fx.outbox.enqueue(env, chunks(raw));
    const t = fx.clock.now();
    await fx.outbox.recordAttempt(id, {
      at: t,
      sent: [{ address: 'bob@example.test', code: 250 }],
      failed: [{ address: 'carol@example.test', code: 550, response: '550 5.1.1 <carol@example.test>: no such user' }],
      deferred: [{ address: 'hidden@example.test', code: 450, response: '450 4.2.0 mailbox busy' }],
      error: '450 4.2.0 mailbox busy',
      nextAttempt: t + 60_000,
    });
    const e = fx.outbox.get(id)!;
    assert.deepEqual(
      e.recipients.map((r) => r.state),
      ['sent', 'failed', 'pending'],
    );
    assert.equal(e.tries, 1);
    assert.equal(e.nextAttempt, t + 60_000);
    const inbox = await inboxMessages(fx.dataDir, 'alice');
    assert.equal(inbox.length, 1);
    assert.match(inbox[0]!, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(inbox[0]!, /Final-Recipient: rfc822; carol@example.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
    assert.doesNotMatch(inbox[0]!, /Final-Recipient: rfc822; bob@/);
    assert.match(inbox[0]!, /Subject: partial/);
    // The JSON on disk says the same (sent recorded durably).
    const json = JSON.parse(await readFile(path.join(fx.dataDir, 'outbox', `${id}.json`), 'utf8'));
    assert.deepEqual(
      json.recipients.map((r: { state: string }) => r.state),
      ['sent', 'failed', 'pending'],
    );
    assert.equal(json.recipients[1].bounced, true);

    await fx.outbox.recordAttempt(id, { at: t + 60_000, sent: [{ address: 'hidden@example.test', code: 250 }] });
    assert.equal(fx.outbox.get(id), undefined);
    assert.deepEqual(await outboxFiles(fx.dataDir), []);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'failed')), [`${id}.eml`, `${id}.json`]);
    assert.equal((await inboxMessages(fx.dataDir, 'alice')).length, 1, 'no second bounce');
    assert.equal(fx.outbox.index.get(id)!.state, 'failed');
    assert.deepEqual(
      (await fx.outbox.failed()).map((x) => x.id),
      [id],
    );
  });

  test('all sent: the entry is deleted and its row says sent', async () => {
    const fx = await fixture();
    const { id } = await fx.outbox.enqueue(env, chunks(message()));
    await fx.outbox.recordAttempt(id, { at: fx.clock.now(), sent: env.to.map((address) => ({ address })) });
    assert.deepEqual(await outboxFiles(fx.dataDir), []);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'failed')), []);
    assert.equal(fx.outbox.index.get(id)!.state, 'sent');
    assert.deepEqual(await inboxMessages(fx.dataDir, 'alice'), []);
  });

  test('giveUp (maxAge): one bounce with status 4.4.7 for every pending recipient', async () => {
    const fx = await fixture();
    const { id } = await fx.outbox.enqueue(env, chunks(message({ subject: 'too old' })));
    await fx.outbox.recordAttempt(id, {
      at: fx.clock.now(),
      sent: [{ address: 'bob@example.test' }],
      error: 'ECONNREFUSED',
      nextAttempt: fx.clock.now() + 1,
    });
    await fx.outbox.giveUp(id, 'not delivered within outbox.maxAge; last error: ECONNREFUSED');
    const inbox = await inboxMessages(fx.dataDir, 'alice');
    assert.equal(inbox.length, 1);
    assert.equal((inbox[0]!.match(/Status: 4\.4\.7/g) ?? []).length, 2);
    assert.match(inbox[0]!, /Subject: Undelivered Mail: delivery time expired/);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'failed')), [`${id}.eml`, `${id}.json`]);
  });

  test('retry puts a failed entry back (failed recipients only); drop deletes', async () => {
    const fx = await fixture();
    const { id } = await fx.outbox.enqueue(env, chunks(message()));
    await fx.outbox.recordAttempt(id, {
      at: fx.clock.now(),
      sent: [{ address: 'bob@example.test' }],
      failed: [
        { address: 'carol@example.test', code: 550 },
        { address: 'hidden@example.test', code: 550 },
      ],
    });
    assert.equal(fx.outbox.queued().length, 0);
    fx.clock.advance(1000);
    assert.equal(await fx.outbox.retry(id), true);
    const e = fx.outbox.get(id)!;
    assert.deepEqual(
      e.recipients.map((r) => r.state),
      ['sent', 'pending', 'pending'],
    );
    assert.equal(e.queuedAt, fx.clock.now());
    assert.deepEqual(await outboxFiles(fx.dataDir), [`${id}.eml`, `${id}.json`]);
    assert.deepEqual(await names(path.join(fx.dataDir, 'outbox', 'failed')), []);
    await fx.reopen();
    assert.equal(fx.outbox.get(id)?.recipients[1]?.state, 'pending');
    assert.equal(await fx.outbox.drop(id), true);
    assert.deepEqual(await outboxFiles(fx.dataDir), []);
    assert.equal(fx.outbox.index.get(id)!.state, 'dropped');
    assert.equal(await fx.outbox.drop(id), false);
    assert.equal(await fx.outbox.retry('nonsense/../x'), false);
    assert.ok(!existsSync(path.join(fx.dataDir, 'outbox', `${id}.eml`)));
  });

  test('a retry of a queued entry makes it due now and emits queued', async () => {
    const fx = await fixture();
    const { id } = await fx.outbox.enqueue(env, chunks(message()));
    await fx.outbox.recordAttempt(id, { at: fx.clock.now(), error: 'x', nextAttempt: fx.clock.now() + 3_600_000 });
    let emitted = 0;
    fx.outbox.on('queued', () => emitted++);
    assert.equal(await fx.outbox.retry(id), true);
    assert.equal(fx.outbox.get(id)!.nextAttempt, fx.clock.now());
    assert.equal(emitted, 1);
  });

  test('summary for status: queued count, next attempt, last error per account', async () => {
    const fx = await fixture();
    const a = await fx.outbox.enqueue(env, chunks(message()));
    await fx.outbox.enqueue({ ...env, account: 'bob' }, chunks(message()));
    await fx.outbox.recordAttempt(a.id, {
      at: fx.clock.now(),
      error: '421 try later',
      nextAttempt: fx.clock.now() + 5000,
    });
    const s = fx.outbox.index.summary();
    assert.deepEqual(
      s.map((x) => [x.account, x.queued, x.lastError]),
      [
        ['alice', 1, '421 try later'],
        ['bob', 1, null],
      ],
    );
    assert.equal(s[0]!.nextAttempt, fx.clock.now() + 5000);
  });
});
