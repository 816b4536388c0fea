/**
 * Row 8 of the benchmark (docs/benchmarks.md): how fast localpost accepts mail from local clients
 * and drains its outbox to the upstream.
 *
 * - accept: N messages (1,000; --quick 200) from 8 parallel nodemailer clients (one connection
 *   each) into the local SMTP listener; each 250 comes only after the message and its envelope
 *   are fsynced (invariant 7). Goal: at least 500 messages/s.
 * - drain: the same N queued messages relayed to the testbed's Postfix over 4 pooled
 *   connections (the default `outgoing.maxConnections`), until the outbox is empty. Goal: at least 300 messages/s.
 *
 * The listener and the delivery service run in this process, from src/ (the daemon wires the same
 * objects); the cache lives in the run's scratch directory on disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { Outbox } from '../src/cache/outbox/outbox.js';
import { DeliveryService } from '../src/daemon/delivery.js';
import { LocalAuth } from '../src/listeners/local-auth.js';
import { SmtpListener } from '../src/listeners/smtp/server.js';
import { NodemailerSender } from '../src/upstream/smtp/sender.js';
import { startTestbed } from '../tests/support/testbed.js';
import { type Figure, failedFigures } from './figures.js';
import type { SectionOptions } from './support.js';

const CLIENTS = 8;
const SIZE = 2000;
/** The drain's connections: the default of `outgoing.maxConnections`. */
const DRAIN_CONNECTIONS = 4;
const log = pino({ level: 'silent' });

const message = (i: number): Buffer =>
  Buffer.from(
    `From: alice@example.test\r\nTo: bob@example.test\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.test>\r\n\r\n${'x'.repeat(SIZE)}\r\n`,
  );

export async function smtpSection(o: SectionOptions): Promise<Figure[]> {
  const N = o.quick ? 200 : 1000;
  const acceptBase = {
    id: 'smtp-accept',
    row: 8,
    name: `SMTP accept, ${CLIENTS} parallel clients, each message fsynced before 250`,
    unit: 'messages/s',
    goal: { op: '>=', value: 500 } as const,
  };
  const drainBase = {
    id: 'smtp-drain',
    row: 8,
    name: 'outbox drain to Postfix, 4 connections',
    unit: 'messages/s',
    goal: { op: '>=', value: 300 } as const,
  };
  try {
    return await run(N, o, acceptBase, drainBase);
  } catch (err) {
    return failedFigures([acceptBase, drainBase], err);
  }
}

async function run(
  N: number,
  o: SectionOptions,
  acceptBase: Omit<Figure, 'value'>,
  drainBase: Omit<Figure, 'value'>,
): Promise<Figure[]> {
  const dataDir = mkdtempSync(join(o.work, 'smtp-'));
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
      maxConnections: DRAIN_CONNECTIONS,
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

    o.log(`smtp: accept ${N} in ${acceptS.toFixed(2)} s, drain in ${drainS.toFixed(2)} s`);
    const of = `${N} messages of ${SIZE} bytes`;
    return [
      { ...acceptBase, value: N / acceptS, detail: `${of}, ${acceptS.toFixed(2)} s` },
      { ...drainBase, value: N / drainS, detail: `${of}, ${drainS.toFixed(2)} s` },
    ];
  } finally {
    cache.close();
    await tb.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
