/**
 * The delivery loop never has two sends of one account unrecorded (docs/guarantees.md): a send
 * starts only once the previous send's result is durable in the outbox, so a kill -9 can repeat
 * at most the one message on the wire per account. A sender that answers at once and an outbox
 * whose records are slow make any overlap visible; accounts still send in parallel.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { RetryPolicy } from '../../src/cache/retry-policy.js';
import { DeliveryService } from '../../src/daemon/delivery.js';
import type { OutgoingMessage, Sender } from '../../src/upstream/smtp/sender.js';
import { chunks, message, type OutboxFixture, outboxFiles, outboxFixture, silentLog } from '../support/outbox.js';

const policy: RetryPolicy = { initial: 60_000, max: 3_600_000, maxAge: 5 * 86_400_000 };
const fixtures: OutboxFixture[] = [];
after(async () => {
  for (const fx of fixtures) await fx.close();
});

test('a send starts only once the previous send of its account is recorded; accounts overlap', async () => {
  const fx = await outboxFixture();
  fixtures.push(fx);
  const accounts = ['alice', 'bob'];
  const ids = new Map<string, string>(); // outbox id → account
  for (const account of accounts)
    for (let i = 0; i < 5; i++) {
      const { id } = await fx.outbox.enqueue(
        { account, from: `${account}@example.test`, to: ['carol@example.test'] },
        chunks(message({ messageId: `${account}-${i}@x` })),
      );
      ids.set(id, account);
    }
  // Records take a few timer turns, sends none: an overlap of a send with a record shows.
  const unrecorded = new Map<string, Set<string>>(accounts.map((a) => [a, new Set()]));
  const worst = new Map<string, number>(accounts.map((a) => [a, 0]));
  let accountsAtOnce = 0;
  const record = fx.outbox.recordAttempt.bind(fx.outbox);
  fx.outbox.recordAttempt = async (id, rec) => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 1));
    const r = await record(id, rec);
    unrecorded.get(ids.get(id) ?? '')?.delete(id);
    return r;
  };
  const sent: string[] = [];
  const senderOf = (account: string): Sender => ({
    send: async (msg: OutgoingMessage) => {
      const open = unrecorded.get(account) ?? new Set();
      worst.set(account, Math.max(worst.get(account) ?? 0, open.size));
      const id = [...ids].find(([i]) => msg.path.includes(i))?.[0] ?? '';
      open.add(id);
      sent.push(id);
      accountsAtOnce = Math.max(accountsAtOnce, [...unrecorded.values()].filter((s) => s.size > 0).length);
      return { sent: msg.to.map((address) => ({ address, code: 250 })), failed: [], deferred: [] };
    },
    close: () => undefined,
  });
  const delivery = new DeliveryService({
    outbox: fx.outbox,
    senderFor: async (a) => senderOf(a),
    policy: () => policy,
    log: silentLog,
    clock: fx.clock,
    random: () => 0.5,
  });
  await delivery.run();
  assert.deepEqual([...sent].sort(), [...ids.keys()].sort(), 'each message sent once');
  for (const a of accounts) assert.equal(worst.get(a), 0, `${a}: a send started with an earlier send unrecorded`);
  assert.equal(accountsAtOnce, 2, 'the two accounts send in parallel');
  assert.deepEqual(await outboxFiles(fx.dataDir), []);
});

test('with N connections: N sends at once, each connection starts its next send only once its previous one is recorded', async () => {
  const fx = await outboxFixture();
  fixtures.push(fx);
  const N = 3;
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const { id } = await fx.outbox.enqueue(
      { account: 'alice', from: 'alice@example.test', to: ['carol@example.test'] },
      chunks(message({ messageId: `conn-${i}@x` })),
    );
    ids.push(id);
  }
  // Sends and records both take a few timer turns, so lanes overlap.
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
  };
  const unrecorded = new Set<string>();
  let onWire = 0;
  let mostOnWire = 0;
  let mostUnrecordedAtStart = 0;
  const record = fx.outbox.recordAttempt.bind(fx.outbox);
  fx.outbox.recordAttempt = async (id, rec) => {
    await turns(3);
    const r = await record(id, rec);
    unrecorded.delete(id);
    return r;
  };
  const sent: string[] = [];
  const sender: Sender = {
    connections: N,
    send: async (msg: OutgoingMessage) => {
      // sends on the wire plus sent ones not yet recorded: at most one per connection
      mostUnrecordedAtStart = Math.max(mostUnrecordedAtStart, unrecorded.size + 1);
      const id = ids.find((i) => msg.path.includes(i)) ?? '';
      unrecorded.add(id);
      onWire++;
      mostOnWire = Math.max(mostOnWire, onWire);
      await turns(2);
      onWire--;
      sent.push(id);
      return { sent: msg.to.map((address) => ({ address, code: 250 })), failed: [], deferred: [] };
    },
    close: () => undefined,
  };
  const delivery = new DeliveryService({
    outbox: fx.outbox,
    senderFor: async () => sender,
    policy: () => policy,
    log: silentLog,
    clock: fx.clock,
    random: () => 0.5,
  });
  await delivery.run();
  assert.deepEqual([...sent].sort(), [...ids].sort(), 'each message sent once');
  assert.equal(mostOnWire, N, `${N} sends at once`);
  assert.equal(mostUnrecordedAtStart, N, 'never more than one unrecorded send per connection');
  assert.deepEqual(await outboxFiles(fx.dataDir), []);
});
