/**
 * Delivery faults against the scriptable smtp-server upstream (tests/fakes/fake-smtp.ts):
 * the real outbox, the real nodemailer sender and the delivery loop, with a fake clock so
 * backoff is stepped, not slept. Covers: 421 and 451 then
 * success, 550 for one recipient of three, 450 for one (only it is retried), a connection
 * cut during DATA, servers that stall, a refused login (kept, logged once), an upstream that
 * is down and comes back, maxAge, and Bcc stripped with every envelope recipient delivered.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import type { RetryPolicy } from '../../src/cache/retry-policy.js';
import { DeliveryService } from '../../src/daemon/delivery.js';
import { NodemailerSender, type SenderTimeouts } from '../../src/upstream/smtp/sender.js';
import { type FakeSmtp, type FakeSmtpOptions, startFakeSmtp } from '../fakes/fake-smtp.js';
import {
  chunks,
  inboxMessages,
  message,
  names,
  type OutboxFixture,
  outboxFiles,
  outboxFixture,
  silentLog,
} from '../support/outbox.js';

const MIN = 60_000;
const policy: RetryPolicy = { initial: MIN, max: 60 * MIN, maxAge: 5 * 24 * 60 * MIN };
const env = {
  account: 'alice',
  from: 'alice@example.test',
  to: ['bob@example.test', 'carol@example.test', 'hidden@example.test'],
};

interface Rig {
  fx: OutboxFixture;
  fake: FakeSmtp;
  delivery: DeliveryService;
  sender: NodemailerSender;
  logs: Array<{ level: number; msg: string; account?: string }>;
}
const rigs: Rig[] = [];
after(async () => {
  for (const r of rigs) {
    await r.delivery.stop();
    r.sender.close();
    await r.fake.stop();
    await r.fx.close();
  }
});

async function rig(
  fakeOpts: FakeSmtpOptions = {},
  o: { timeouts?: SenderTimeouts; password?: string; fake?: FakeSmtp } = {},
): Promise<Rig> {
  const fx = await outboxFixture();
  const fake = o.fake ?? (await startFakeSmtp(fakeOpts));
  const logs: Rig['logs'] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      for (const l of c.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(l));
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const sender = new NodemailerSender({
    endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: o.password ?? 'alicepw' },
    log: silentLog,
    timeouts: { connect: 2000, greeting: 2000, socket: 5000, ...o.timeouts },
  });
  const delivery = new DeliveryService({
    outbox: fx.outbox,
    senderFor: async () => sender,
    policy: () => policy,
    log,
    clock: fx.clock,
    random: () => 0.5,
  });
  const r = { fx, fake, delivery, sender, logs };
  rigs.push(r);
  return r;
}

const headerOf = (b: Buffer) => b.toString('latin1').split(/\r\n\r\n/)[0]!;

describe('delivery through a well-behaved upstream', () => {
  test('every envelope recipient (Bcc included) gets it; the Bcc header is removed; the rest byte-exact', async () => {
    const r = await rig();
    const raw = message({ messageId: 'ok@x', bcc: 'hidden@example.test', body: 'line one\r\n.dot line\r\n\xe9' });
    const { id } = await r.fx.outbox.enqueue(env, chunks(raw));
    await r.delivery.run();
    assert.equal(r.fake.received.length, 1);
    const got = r.fake.received[0]!;
    assert.deepEqual(got.to, env.to);
    assert.equal(got.from, 'alice@example.test');
    assert.equal(got.user, 'alice');
    assert.doesNotMatch(headerOf(got.data), /^bcc:/im);
    const expected = Buffer.from(raw.toString('latin1').replace('Bcc: hidden@example.test\r\n', ''), 'latin1');
    assert.ok(got.data.equals(expected), `${JSON.stringify(got.data.toString('latin1'))}`);
    assert.deepEqual(await outboxFiles(r.fx.dataDir), []);
    assert.equal(r.fx.outbox.index.get(id)!.state, 'sent');
  });

  test('internationalized addresses are relayed with SMTPUTF8', async () => {
    const r = await rig();
    await r.fx.outbox.enqueue(
      { account: 'alice', from: 'jörg@example.test', to: ['zoë@example.test'] },
      chunks(message()),
    );
    await r.delivery.run();
    assert.deepEqual([r.fake.received[0]!.from, r.fake.received[0]!.to], ['jörg@example.test', ['zoë@example.test']]);
  });

  test('many messages go over one connection', async () => {
    const r = await rig();
    for (let i = 0; i < 20; i++) await r.fx.outbox.enqueue(env, chunks(message({ messageId: `m${i}@x` })));
    await r.delivery.run();
    assert.equal(r.fake.received.length, 20);
    assert.equal(r.fake.connections, 1);
  });
});

describe('temporary failures', () => {
  test('421 at the greeting, then success after a flush', async () => {
    const r = await rig({
      onConnect: (_s, n) => (n === 1 ? { code: 421, message: '4.3.2 Service not available' } : undefined),
    });
    const { id } = await r.fx.outbox.enqueue(env, chunks(message()));
    await r.delivery.run();
    assert.equal(r.fake.received.length, 0);
    const e = r.fx.outbox.get(id)!;
    assert.equal(e.tries, 1);
    assert.match(e.lastError!, /421/);
    assert.equal(e.nextAttempt, r.fx.clock.now() + MIN);
    assert.ok(r.delivery.state('alice')!.blockedUntil > r.fx.clock.now());
    await r.delivery.flush();
    assert.equal(r.fake.received.length, 1);
    assert.equal(r.fx.outbox.get(id), undefined);
  });

  test('451 after DATA: only that message waits (backoff), then it goes', async () => {
    const r = await rig({ onData: (_s, n) => (n === 1 ? { code: 451, message: '4.3.0 try later' } : undefined) });
    const a = await r.fx.outbox.enqueue(env, chunks(message({ messageId: 'a@x' })));
    r.fx.clock.advance(1);
    const b = await r.fx.outbox.enqueue(env, chunks(message({ messageId: 'b@x' })));
    await r.delivery.run();
    assert.equal(r.fake.received.length, 1, 'the second message is not held up by the first');
    assert.equal(r.fx.outbox.get(a.id)!.tries, 1);
    assert.equal(r.fx.outbox.get(b.id), undefined);
    await r.delivery.run();
    assert.equal(r.fake.received.length, 1, 'not due yet');
    r.fx.clock.advance(MIN);
    await r.delivery.run();
    assert.equal(r.fake.received.length, 2);
    assert.deepEqual(await outboxFiles(r.fx.dataDir), []);
  });

  test('the connection is cut during DATA: retried, delivered once, complete', async () => {
    const r = await rig({ onData: (_s, n) => (n === 1 ? { cutAfterBytes: 50 } : undefined) });
    const raw = message({ body: 'z'.repeat(200_000) });
    await r.fx.outbox.enqueue(env, chunks(raw));
    await r.delivery.run();
    assert.equal(r.fake.received.length, 0);
    assert.equal(r.fx.outbox.queued()[0]!.tries, 1);
    await r.delivery.flush();
    assert.equal(r.fake.received.length, 1);
    assert.ok(r.fake.received[0]!.data.equals(raw));
  });

  test('a server that never greets, and one that never answers the final dot: timeouts, then delivered', async () => {
    const r = await rig(
      {
        onConnect: (_s, n) => (n === 1 ? { stall: true } : undefined),
        onData: (_s, n) => (n === 1 ? { stall: true } : undefined),
      },
      { timeouts: { greeting: 300, socket: 400 } },
    );
    await r.fx.outbox.enqueue(env, chunks(message()));
    await r.delivery.run();
    assert.match(r.fx.outbox.queued()[0]!.lastError!, /Greeting never received \(ETIMEDOUT\)/, 'the greeting timeout');
    await r.delivery.flush();
    assert.match(r.fx.outbox.queued()[0]!.lastError!, /: Timeout \(ETIMEDOUT\)/, 'the socket timeout');
    assert.equal(r.fx.outbox.queued()[0]!.tries, 2);
    await r.delivery.flush();
    assert.equal(r.fake.received.length, 1);
    assert.deepEqual(await outboxFiles(r.fx.dataDir), []);
  });

  test('a refused login keeps the mail and is logged at error level once per change of state', async () => {
    const fake = await startFakeSmtp();
    const bad = await rig({}, { password: 'changed', fake });
    const { id } = await bad.fx.outbox.enqueue(env, chunks(message()));
    await bad.delivery.run();
    await bad.delivery.flush();
    await bad.delivery.flush();
    const e = bad.fx.outbox.get(id)!;
    assert.equal(e.tries, 3);
    assert.deepEqual(
      e.recipients.map((x) => x.state),
      ['pending', 'pending', 'pending'],
    );
    const errors = bad.logs.filter((l) => l.level === 50);
    assert.equal(errors.length, 1, JSON.stringify(bad.logs));
    assert.match(errors[0]!.msg, /refused the login/);
    assert.deepEqual(await inboxMessages(bad.fx.dataDir, 'alice'), [], 'no bounce');
  });

  test('a temporary login failure (454) is retried like an outage, never reported as a wrong password', async () => {
    let refuse = true;
    const r = await rig({
      onAuth: () => (refuse ? { code: 454, message: '4.7.0 Temporary authentication failure' } : undefined),
    });
    const { id } = await r.fx.outbox.enqueue(env, chunks(message({ messageId: 'tempauth@x' })));
    await r.delivery.run();
    const e = r.fx.outbox.get(id)!;
    assert.equal(e.tries, 1);
    assert.match(e.lastError!, /could not check the login for now: 454/);
    assert.equal(
      r.logs.filter((l) => /check outgoing\.password|refused the login/.test(l.msg)).length,
      0,
      JSON.stringify(r.logs),
    );
    assert.equal(r.logs.filter((l) => l.level === 50).length, 0, 'not an error-level problem');
    refuse = false;
    await r.delivery.flush();
    assert.equal(r.fake.received.length, 1);
    assert.deepEqual(await inboxMessages(r.fx.dataDir, 'alice'), [], 'no bounce');
  });

  test('upstream down: one attempt for the whole queue; it comes back on the same port and a flush sends all', async () => {
    const fake = await startFakeSmtp({}, { listen: false });
    const port = await fake.listen(0);
    await fake.stop();
    const r = await rig({}, { fake });
    for (let i = 0; i < 5; i++) await r.fx.outbox.enqueue(env, chunks(message({ messageId: `down${i}@x` })));
    await r.delivery.run();
    const tries = r.fx.outbox.queued().map((e) => e.tries);
    assert.deepEqual(tries, [1, 0, 0, 0, 0]);
    assert.match(r.fx.outbox.queued()[0]!.lastError!, /ECONNREFUSED|unreachable/);
    assert.equal(r.logs.filter((l) => l.level === 40 && /unreachable/.test(l.msg)).length, 1);
    await fake.listen(port);
    await r.delivery.flush();
    assert.equal(fake.received.length, 5);
    assert.equal(r.fx.outbox.queued().length, 0);
    assert.ok(r.logs.some((l) => /reachable again/.test(l.msg)));
  });
});

describe('permanent failures', () => {
  test('550 for one recipient of three: only it fails and is bounced; the others are delivered', async () => {
    const r = await rig({
      onRcpt: (a) =>
        a === 'carol@example.test'
          ? { code: 550, message: '5.1.1 <carol@example.test>: Recipient address rejected' }
          : undefined,
    });
    const { id } = await r.fx.outbox.enqueue(env, chunks(message({ subject: 'three' })));
    await r.delivery.run();
    assert.deepEqual(r.fake.received[0]!.to, ['bob@example.test', 'hidden@example.test']);
    const inbox = await inboxMessages(r.fx.dataDir, 'alice');
    assert.equal(inbox.length, 1);
    assert.match(inbox[0]!, /Final-Recipient: rfc822; carol@example.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
    assert.match(inbox[0]!, /Subject: three/);
    assert.deepEqual(await names(`${r.fx.dataDir}/outbox/failed`), [`${id}.eml`, `${id}.json`]);
  });

  test('450 for one recipient of three: the others are delivered, only it is retried', async () => {
    let busy = true;
    const r = await rig({
      onRcpt: (a) => (a === 'carol@example.test' && busy ? { code: 450, message: '4.2.1 mailbox busy' } : undefined),
    });
    const { id } = await r.fx.outbox.enqueue(env, chunks(message()));
    await r.delivery.run();
    assert.deepEqual(
      r.fx.outbox.get(id)!.recipients.map((x) => x.state),
      ['sent', 'pending', 'sent'],
    );
    busy = false;
    r.fx.clock.advance(MIN);
    await r.delivery.run();
    assert.deepEqual(
      r.fake.received.map((m) => m.to),
      [['bob@example.test', 'hidden@example.test'], ['carol@example.test']],
    );
    assert.equal(r.fx.outbox.index.get(id)!.state, 'sent');
  });

  test('554 after DATA: every recipient fails, one bounce', async () => {
    const r = await rig({ onData: () => ({ code: 554, message: '5.7.1 message refused as spam' }) });
    await r.fx.outbox.enqueue(env, chunks(message()));
    await r.delivery.run();
    const inbox = await inboxMessages(r.fx.dataDir, 'alice');
    assert.equal(inbox.length, 1);
    assert.equal((inbox[0]!.match(/Status: 5\.7\.1/g) ?? []).length, 3);
  });

  test('maxAge passed while the upstream is down: bounced with 4.4.7, moved to failed/', async () => {
    const fake = await startFakeSmtp({}, { listen: false });
    const r = await rig({}, { fake });
    await r.fx.outbox.enqueue(env, chunks(message()));
    await r.delivery.run();
    r.fx.clock.advance(policy.maxAge);
    await r.delivery.run();
    const inbox = await inboxMessages(r.fx.dataDir, 'alice');
    assert.equal(inbox.length, 1);
    assert.match(inbox[0]!, /Status: 4\.4\.7/);
    assert.match(inbox[0]!, /last error: /);
    assert.equal(r.fx.outbox.queued().length, 0);
  });
});

describe('stop()', () => {
  test('aborts a send in flight without counting a try', async () => {
    const r = await rig({ onData: () => ({ stall: true }) });
    await r.fx.outbox.enqueue(env, chunks(message()));
    const running = r.delivery.run();
    await new Promise((res) => setTimeout(res, 300));
    await r.delivery.stop();
    await running; // not aborted, the send would end at the 5 s socket timeout and count a try
    assert.equal(r.fx.outbox.queued()[0]!.tries, 0);
  });
});
