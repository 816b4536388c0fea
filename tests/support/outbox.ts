/**
 * Fixtures for outbox tests: a temp data dir with a Cache and an Outbox on it, a fake clock,
 * message builders, and readers for what ended up on disk (queue, failed/, the local INBOX).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { Outbox, type OutboxOptions } from '../../src/cache/outbox/outbox.js';
import type { Clock } from '../../src/shared/clock.js';

export const silentLog = pino({ level: 'silent' });

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  constructor(public t = Date.UTC(2026, 0, 15, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A data dir with a Cache (accounts alice, bob) and an Outbox. */
export interface OutboxFixture {
  dataDir: string;
  cache: Cache;
  outbox: Outbox;
  clock: FakeClock;
  /** Close and open cache and outbox again on the same data dir (a restart). */
  reopen(extra?: Partial<OutboxOptions>): Promise<void>;
  close(): Promise<void>;
}

/** Make a fixture; `extra` goes to Outbox.open. */
export async function outboxFixture(extra: Partial<OutboxOptions> = {}, dataDir?: string): Promise<OutboxFixture> {
  const dir = dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'lp-outbox-')));
  const clock = new FakeClock();
  const open = async (more: Partial<OutboxOptions>) => {
    const cache = await Cache.open({ dataDir: dir, accounts: ['alice', 'bob'], log: silentLog, clock });
    const outbox = await Outbox.open({
      dataDir: dir,
      db: cache.stateDb,
      log: silentLog,
      clock,
      bounceStore: (id) => {
        try {
          return cache.account(id);
        } catch {
          return undefined;
        }
      },
      ...extra,
      ...more,
    });
    return { cache, outbox };
  };
  const fx = { dataDir: dir, clock, ...(await open({})) } as OutboxFixture;
  fx.reopen = async (more = {}) => {
    fx.outbox.close();
    fx.cache.close();
    Object.assign(fx, await open(more));
  };
  fx.close = async () => {
    fx.outbox.close();
    fx.cache.close();
    if (!dataDir) await rm(dir, { recursive: true, force: true });
  };
  return fx;
}

/** A small RFC 5322 message with CRLF line ends. */
export function message(
  opts: { messageId?: string; subject?: string; body?: string; bcc?: string; extra?: string } = {},
): Buffer {
  const lines = [
    'From: Alice <alice@example.test>',
    'To: Bob <bob@example.test>',
    ...(opts.bcc ? [`Bcc: ${opts.bcc}`] : []),
    `Subject: ${opts.subject ?? 'hello'}`,
    ...(opts.messageId ? [`Message-ID: <${opts.messageId}>`] : []),
    ...(opts.extra ? [opts.extra] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? 'Hello Bob.',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

/** An async iterable over chunks, optionally failing after them (a dropped client). */
export async function* chunks(data: Buffer, size = 1000, failWith?: Error): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) {
    await new Promise((r) => setImmediate(r));
    yield data.subarray(i, i + size);
  }
  if (failWith) throw failWith;
}

/** Names in a directory (empty when it does not exist). */
export async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** Files of the outbox directory itself (not tmp/ or failed/). */
export async function outboxFiles(dataDir: string): Promise<string[]> {
  return (await names(path.join(dataDir, 'outbox'))).filter((n) => n !== 'tmp' && n !== 'failed');
}

/** Bytes of every message in an account's INBOX (new/ and cur/). */
export async function inboxMessages(dataDir: string, account: string): Promise<string[]> {
  const dir = path.join(dataDir, 'accounts', account, 'Maildir');
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    for (const n of await names(path.join(dir, sub))) out.push(await readFile(path.join(dir, sub, n), 'latin1'));
  }
  return out;
}
