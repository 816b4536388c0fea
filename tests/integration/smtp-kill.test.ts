/**
 * kill -9 of the daemon (invariants 7 and 8: never lost, never sent twice), with the scriptable upstream recording
 * what it receives across daemon runs:
 *
 * - during acceptance: parallel clients submit continuously and one client is parked in the
 *   middle of DATA when the daemon dies. After a restart every message that got 250 is
 *   delivered; the parked one never is; anything delivered got 250 or was in flight at the
 *   kill (the unavoidable SMTP window); nothing half-written is left in the outbox.
 * - during delivery: the upstream answers slowly and the daemon dies in the middle of the
 *   queue; after a restart every queued message is delivered at least once, and at most the
 *   ones on the wire twice (one per connection, `outgoing.maxConnections`).
 * - during delivery by four accounts at once, each over one upstream connection: every
 *   message delivered, at most one twice per account (docs/guarantees.md).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTransport } from 'nodemailer';
import { type FakeSmtp, startFakeSmtp } from '../fakes/fake-smtp.js';
import { waitFor } from '../support/localpost.js';
import { authenticated, type DaemonProcess, daemonConfig, freePort, startDaemon, startData } from '../support/smtp.js';

let dir: string;
const daemons: DaemonProcess[] = [];
const fakes: FakeSmtp[] = [];
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-smtpk-'));
});
after(async () => {
  for (const d of daemons) if (d.child.exitCode === null) await d.kill();
  for (const f of fakes) await f.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A config whose account sends through 127.0.0.1:`port` (where the fake listens, or not yet). */
async function setup(name: string, port: number, maxConnections = 1): Promise<{ config: string; data: string }> {
  const work = mkdtempSync(path.join(dir, `${name}-`));
  const config = daemonConfig(work, [
    {
      id: 'alice',
      incoming: { protocol: 'pop3', port: await freePort(), username: 'alice', password: 'alicepw' },
      outgoing: { port, username: 'alice', password: 'alicepw', maxConnections },
    },
  ]);
  return { config, data: path.join(work, 'data') };
}

/** A local client of alice over one kept connection. */
const localClient = (port: number) =>
  createTransport({
    host: '127.0.0.1',
    port,
    pool: true,
    maxConnections: 1,
    ignoreTLS: true,
    auth: { user: 'alice', pass: 'localpw' },
  });

const raw = (id: string, from = 'alice@example.test') =>
  Buffer.from(
    `From: ${from}\r\nTo: bob@example.test\r\nSubject: ${id}\r\nMessage-ID: <${id}@kill>\r\n\r\n${'body '.repeat(200)}\r\n`,
  );
const idOf = (data: Buffer) => /^Subject: (\S+)/m.exec(data.toString())![1]!;

/** Wait until the outbox holds nothing queued. */
function emptyOutbox(data: string): Promise<void> {
  const outbox = path.join(data, 'outbox');
  return waitFor(
    // the Sent copy (a link in tmp/) is filed just after the send is recorded
    () =>
      readdirSync(outbox).every((n) => n === 'tmp' || n === 'failed') &&
      !readdirSync(path.join(outbox, 'tmp')).some((n) => n.endsWith('.sent-copy.eml')),
    10_000,
    'an empty outbox',
  );
}

/** Outbox files left on disk: every .eml must have its .json, and tmp/ must be empty. */
function assertConsistent(data: string): void {
  const outbox = path.join(data, 'outbox');
  const names = readdirSync(outbox).filter((n) => n !== 'tmp' && n !== 'failed');
  const emls = names.filter((n) => n.endsWith('.eml')).map((n) => n.slice(0, -4));
  const jsons = names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
  assert.deepEqual(emls.sort(), jsons.sort(), `outbox holds ${names.join(' ')}`);
  assert.deepEqual(
    names.filter((n) => !/\.(eml|json)$/.test(n)),
    [],
  );
  assert.deepEqual(readdirSync(path.join(outbox, 'tmp')), []);
}

test('kill -9 during acceptance: every 250 is delivered after a restart, nothing else but the in-flight', async () => {
  const port = await freePort();
  const fake = await startFakeSmtp({}, { port, listen: false });
  fakes.push(fake);
  const { config, data } = await setup('accept', port);
  const d1 = await startDaemon(config);
  daemons.push(d1);

  // One client parked in the middle of DATA: its message must never be sent.
  const parked = await authenticated(d1.smtpPort, 'alice', 'localpw');
  await startData(parked, 'alice@example.test', 'bob@example.test');
  parked.write(raw('parked').subarray(0, 300));

  const acked = new Set<string>();
  const inflight = new Set<string>();
  let stop = false;
  const client = async (c: number) => {
    const t = localClient(d1.smtpPort);
    for (let n = 0; !stop; n++) {
      const id = `k${c}-${n}`;
      inflight.add(id);
      try {
        await t.sendMail({ envelope: { from: 'alice@example.test', to: ['bob@example.test'] }, raw: raw(id) });
        acked.add(id);
        inflight.delete(id);
      } catch {
        break; // the daemon is gone; the id stays "in flight"
      }
    }
    t.close();
  };
  const clients = Promise.all([0, 1, 2, 3, 4, 5].map(client));
  await waitFor(() => acked.size >= 60, 30_000, '60 acknowledged submissions');
  await d1.kill();
  stop = true;
  await clients;
  parked.close();
  assert.ok(inflight.size <= 6, `in flight at the kill: ${[...inflight].join(' ')}`);

  await fake.listen(port);
  const d2 = await startDaemon(config);
  daemons.push(d2);
  await waitFor(
    () => [...acked].every((id) => fake.received.some((m) => idOf(m.data) === id)),
    30_000,
    'every acknowledged message delivered',
  );
  await emptyOutbox(data);
  const delivered = new Set(fake.received.map((m) => idOf(m.data)));
  assert.ok(!delivered.has('parked'), 'the message cut off in DATA was never sent');
  for (const id of delivered)
    assert.ok(acked.has(id) || inflight.has(id), `${id} was sent without a 250 and was not in flight`);
  assertConsistent(data);
  assert.equal(await d2.stop(), 0);
});

for (const connections of [1, 3])
  test(`kill -9 during delivery over ${connections} connection(s): every queued message delivered, at most ${connections} twice`, async () => {
    const port = await freePort();
    const fake = await startFakeSmtp({ onData: () => ({ delayMs: 40 }) }, { port, listen: false });
    fakes.push(fake);
    const { config, data } = await setup(`deliver${connections}`, port, connections);
    const d1 = await startDaemon(config);
    daemons.push(d1);
    const t = localClient(d1.smtpPort);
    const ids = Array.from({ length: 40 }, (_, i) => `q${i}`);
    for (const id of ids)
      await t.sendMail({ envelope: { from: 'alice@example.test', to: ['bob@example.test'] }, raw: raw(id) });
    t.close();

    await fake.listen(port); // back online: the daemon starts draining by itself
    await waitFor(() => fake.received.length >= 10, 20_000, 'delivery under way');
    await d1.kill();
    const before = fake.received.length;
    assert.ok(before < 40, `the kill came too late (${before} delivered)`);

    const d2 = await startDaemon(config);
    daemons.push(d2);
    await waitFor(() => ids.every((id) => fake.received.some((m) => idOf(m.data) === id)), 30_000, 'all 40 delivered');
    const counts = new Map<string, number>();
    for (const m of fake.received) counts.set(idOf(m.data), (counts.get(idOf(m.data)) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    assert.ok(
      twice.length <= connections,
      `sent twice: ${twice.join(' ')} (only the ones on the wire at the kill may be, one per connection)`,
    );
    await emptyOutbox(data);
    assertConsistent(data);
    assert.equal(await d2.stop(), 0);
  });

test('kill -9 while four accounts deliver at once: every message delivered, at most one twice per account', async () => {
  const accounts = ['a1', 'a2', 'a3', 'a4'];
  // Each account its own upstream: a message is recorded there when its DATA ends, the 250 comes
  // later, so a kill in between leaves the upstream with a message the daemon never saw accepted.
  let slow = true;
  const upstream = new Map<string, FakeSmtp>();
  for (const a of accounts) {
    const f = await startFakeSmtp({ onData: () => (slow ? { delayMs: 150 } : undefined) }, { listen: false });
    await f.listen(await freePort());
    await f.stop(); // offline until everything is queued
    fakes.push(f);
    upstream.set(a, f);
  }
  const work = mkdtempSync(path.join(dir, 'many-'));
  const config = daemonConfig(
    work,
    await Promise.all(
      accounts.map(async (id) => ({
        id,
        incoming: { protocol: 'pop3' as const, port: await freePort(), username: id, password: 'x' },
        outgoing: { port: upstream.get(id)!.port, username: 'alice', password: 'alicepw', maxConnections: 1 },
      })),
    ),
  );
  const data = path.join(work, 'data');
  const d1 = await startDaemon(config);
  daemons.push(d1);
  const ids = new Map<string, string[]>(accounts.map((a) => [a, Array.from({ length: 12 }, (_, i) => `${a}m${i}`)]));
  for (const a of accounts) {
    const t = createTransport({
      host: '127.0.0.1',
      port: d1.smtpPort,
      ignoreTLS: true,
      auth: { user: a, pass: 'localpw' },
    });
    for (const id of ids.get(a)!)
      await t.sendMail({
        envelope: { from: `${a}@example.test`, to: ['bob@example.test'] },
        raw: raw(id, `${a}@example.test`),
      });
    t.close();
  }

  for (const f of upstream.values()) await f.listen(); // back online: all four drain at once
  await waitFor(() => [...upstream.values()].every((f) => f.received.length >= 3), 30_000, 'every account delivering');
  await d1.kill();
  slow = false;
  for (const [a, f] of upstream) assert.ok(f.received.length < 12, `${a}: the kill came too late`);

  const d2 = await startDaemon(config);
  daemons.push(d2);
  await waitFor(
    () => [...upstream].every(([a, f]) => ids.get(a)!.every((id) => f.received.some((m) => idOf(m.data) === id))),
    30_000,
    'every message delivered',
  );
  await emptyOutbox(data);
  for (const [a, f] of upstream) {
    const counts = new Map<string, number>();
    for (const m of f.received) counts.set(idOf(m.data), (counts.get(idOf(m.data)) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [...ids.get(a)!].sort(), `${a}: only its own messages`);
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.ok(twice.length <= 1 && twice.every(([, n]) => n === 2), `${a} sent twice: ${JSON.stringify(twice)}`);
  }
  assertConsistent(data);
  assert.equal(await d2.stop(), 0);
});
