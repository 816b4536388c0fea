/**
 * `npm run bench` (sending half): how fast localpost accepts mail from local clients and drains
 * its outbox to the upstream.
 *
 * - accept: N messages (default 1,000) from 8 parallel nodemailer clients (one connection each)
 *   into the local SMTP listener; each 250 comes only after the message and its envelope are
 *   fsynced (invariant 7). Goal: at least 500 messages/s.
 * - drain: the same N queued messages relayed to the testbed's Postfix over one pooled
 *   connection, until the outbox is empty. Goal: at least 200 messages/s.
 *
 * Prints both figures and writes bench/results/smtp-latest.json. Options: --messages N,
 * --clients N, --size BYTES (body size, default 2000).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTransport } from 'nodemailer';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { Outbox } from '../src/cache/outbox/outbox.js';
import { DeliveryService } from '../src/daemon/delivery.js';
import { LocalAuth } from '../src/listeners/local-auth.js';
import { SmtpListener } from '../src/listeners/smtp/server.js';
import { NodemailerSender } from '../src/upstream/smtp/sender.js';
import { startTestbed } from '../tests/support/testbed.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { messages: { type: 'string' }, clients: { type: 'string' }, size: { type: 'string' } },
});
const N = Number(values.messages ?? 1000);
const CLIENTS = Number(values.clients ?? 8);
const SIZE = Number(values.size ?? 2000);
const log = pino({ level: 'silent' });

const message = (i: number): Buffer =>
  Buffer.from(
    `From: alice@example.test\r\nTo: bob@example.test\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.test>\r\n\r\n${'x'.repeat(SIZE)}\r\n`,
  );

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lp-bench-smtp-'));
  const tb = await startTestbed({ postfix: true });
  const cache = await Cache.open({ dataDir, accounts: ['alice'], log });
  try {
    const outbox = await Outbox.open({ dataDir, db: cache.stateDb, log, bounceStore: () => cache.account('alice') });
    const listener = new SmtpListener({
      hosts: ['127.0.0.1'],
      port: 0,
      log,
      outbox,
      auth: new LocalAuth([{ accountId: 'alice', username: 'alice', password: 'localpw' }]),
      accounts: () => new Map([['alice', { id: 'alice', maxMessageSize: 25 << 20, canSend: true }]]),
    });
    await listener.start();

    // accept
    const perClient = Math.ceil(N / CLIENTS);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const t = createTransport({
          host: '127.0.0.1',
          port: listener.port,
          pool: true,
          maxConnections: 1,
          ignoreTLS: true,
          auth: { user: 'alice', pass: 'localpw' },
        });
        for (let i = c * perClient; i < Math.min(N, (c + 1) * perClient); i++) {
          await t.sendMail({ envelope: { from: 'alice@example.test', to: ['bob@example.test'] }, raw: message(i) });
        }
        t.close();
      }),
    );
    const acceptS = (performance.now() - t0) / 1000;
    await listener.stop();
    if (outbox.queued().length !== N) throw new Error(`expected ${N} queued, found ${outbox.queued().length}`);

    // drain
    const sender = new NodemailerSender({
      endpoint: { host: '127.0.0.1', port: tb.smtpPort, tls: 'none', username: 'alice', password: 'alicepw' },
      log,
    });
    const delivery = new DeliveryService({
      outbox,
      senderFor: async () => sender,
      log,
      policy: () => ({ initial: 1000, max: 60_000, maxAge: 86_400_000 }),
    });
    const t1 = performance.now();
    await delivery.flush();
    const drainS = (performance.now() - t1) / 1000;
    sender.close();
    const left = outbox.queued();
    outbox.close();
    if (left.length) throw new Error(`${left.length} left in the outbox: ${left[0]!.lastError}`);

    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model },
      messages: N,
      clients: CLIENTS,
      bodyBytes: SIZE,
      accept: { seconds: acceptS, perSecond: N / acceptS, goal: 500 },
      drain: { seconds: drainS, perSecond: N / drainS, goal: 200, connections: 1 },
    };
    process.stdout.write(
      `accept: ${N} messages from ${CLIENTS} clients in ${acceptS.toFixed(2)} s = ${(N / acceptS).toFixed(0)} messages/s (goal 500), each fsynced before 250\n`,
    );
    process.stdout.write(
      `drain:  ${N} messages to Postfix over 1 connection in ${drainS.toFixed(2)} s = ${(N / drainS).toFixed(0)} messages/s (goal 200)\n`,
    );
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(join(REPO, 'bench/results/smtp-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    cache.close();
    await tb.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
