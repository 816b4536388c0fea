/**
 * The POP3 fetcher under faults a real server cannot produce on demand, against the scriptable
 * fake: a connection cut mid-RETR, a stalled server, -ERR on DELE. After each, what was
 * downloaded before the fault is durable, nothing half-written is left, nothing is deleted
 * upstream that is not durable, and the next pull completes without duplicates. Also a server
 * without TOP that renumbered its UIDLs (matched by the RETR bytes).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { type AccountStore, type BeginOptions, INBOX } from '../../src/cache/message-store.js';
import { TemporaryError } from '../../src/shared/errors.js';
import { Pop3Fetcher, pop3Key } from '../../src/upstream/pop3/fetcher.js';
import type { FakePop3Options } from '../fakes/fake-pop3.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function messages(n: number, size = 3000): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    Buffer.from(`Message-ID: <m${i + 1}@test>\r\nSubject: ${i + 1}\r\n\r\n${'x'.repeat(size)}\r\n.dot line\r\n`),
  );
}

/** A server whose deletions take effect at QUIT (the plain fake lists every message in every session). */
const REMOVES_DELETED = { window: 1000, mode: 'delete' } as const;

async function setup(fakeOpts: FakePop3Options, keepOnServer = true, timeoutMs = 2000) {
  const fake = await startFakePop3({ user: 'alice', pass: 'pw', ...fakeOpts });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-fetch-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  cleanups.push(async () => {
    cache.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const fetcher = () => fetcherOn(fake.port, cache.account('a'), keepOnServer, timeoutMs);
  const tmp = () => readdirSync(path.join(dataDir, 'accounts/a/Maildir/tmp'));
  return { fake, cache, fetcher, tmp, store: cache.account('a'), dataDir };
}

function fetcherOn(port: number, store: AccountStore, keepOnServer = true, timeoutMs = 2000): Pop3Fetcher {
  return new Pop3Fetcher({
    endpoint: { host: '127.0.0.1', port, tls: 'none', username: 'alice', password: 'pw', timeoutMs },
    store,
    log,
    keepOnServer,
    maxMessageSize: 50 * 1024 * 1024,
  });
}

test('a connection cut mid-RETR keeps what was durable; the next pull completes it, no duplicates', async () => {
  const msgs = messages(5, 50_000);
  let cut = true;
  const { fake, fetcher, tmp, store } = await setup(
    {
      messages: msgs,
      onCommand: (verb, args) => (cut && verb === 'RETR' && args[0] === '3' ? { cutAfter: 20_000 } : undefined),
    },
    false,
  );
  await assert.rejects(fetcher().pull(), TemporaryError);
  const after1 = store.list(INBOX);
  assert.deepEqual(
    after1.map((m) => m.key),
    [pop3Key('uid-1'), pop3Key('uid-2')],
  );
  assert.deepEqual(tmp(), []);
  assert.deepEqual(fake.committed, [], 'no QUIT: nothing deleted upstream');
  cut = false;
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 3);
  const all = store.list(INBOX);
  assert.equal(all.length, 5);
  assert.equal(new Set(all.map((m) => m.key)).size, 5);
  // every later session deleted all five: two were durable before it started, three became so
  assert.ok(fake.committed.length >= 1);
  for (const c of fake.committed) assert.deepEqual(c, [1, 2, 3, 4, 5]);
});

test('a server that stops answering is given up on after the timeout; nothing half-written stays', async () => {
  const { fetcher, tmp, store } = await setup(
    {
      messages: messages(4),
      onCommand: (verb, args) => (verb === 'RETR' && args[0] === '2' ? { stall: true } : undefined),
    },
    true,
    300,
  );
  await assert.rejects(
    fetcher().pull(),
    (err: unknown) => err instanceof TemporaryError && err.code === 'ETIMEDOUT' && /within 300 ms/.test(err.message), // the configured timeout
  );
  assert.equal(store.list(INBOX).length, 1);
  assert.deepEqual(tmp(), []);
});

test('-ERR on DELE: the messages stay cached, the pull reports it, the next pull deletes them', async () => {
  let fail = true;
  const { fake, fetcher, store } = await setup(
    {
      messages: messages(3),
      gmail: REMOVES_DELETED,
      onCommand: (verb) => (fail && verb === 'DELE' ? { reply: '-ERR [SYS/TEMP] try later\r\n' } : undefined),
    },
    false,
  );
  await assert.rejects(fetcher().pull(), TemporaryError);
  assert.equal(store.list(INBOX).length, 3);
  fail = false;
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 0);
  assert.equal(r.deletedUpstream, 3);
  assert.deepEqual(fake.committed, [[1, 2, 3], []], 'deleted once; the next session found nothing left');
});

test('the terminator split across segments and 1-byte segments still give exact bytes', async () => {
  const msgs = messages(3, 200);
  const { fetcher, store } = await setup({
    messages: msgs,
    onCommand: (verb) => (verb === 'RETR' ? { segments: 1 } : undefined),
  });
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 3);
  const { readFileSync } = await import('node:fs');
  const got = store.list(INBOX).map((m) => readFileSync(m.path));
  for (let i = 0; i < 3; i++) assert.ok(got[i]!.equals(msgs[i]!));
});

test('sessions loop until the server offers nothing new (a Gmail-like window of 3 per session)', async () => {
  const msgs = messages(10, 100);
  // Session k offers only messages 3k-2 .. 3k, like Gmail's ~250-per-session window.
  const window = (id: number) => [1, 2, 3].map((j) => 3 * (id - 1) + j).filter((n) => n <= 10);
  const { fake, fetcher, store } = await setup({
    messages: msgs,
    onCommand: (verb, _args, s) => {
      if (verb === 'UIDL')
        return {
          reply: `+OK\r\n${window(s.id)
            .map((n) => `${n} uid-${n}\r\n`)
            .join('')}.\r\n`,
        };
      if (verb === 'LIST')
        return {
          reply: `+OK\r\n${window(s.id)
            .map((n) => `${n} ${msgs[n - 1]!.length}\r\n`)
            .join('')}.\r\n`,
        };
      return undefined;
    },
  });
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 10);
  assert.equal(r.sessions, 5, 'four sessions with mail, one that found nothing new');
  assert.equal(fake.connections, 5);
  assert.equal(store.list(INBOX).length, 10);
});

test('a commit that fails (disk full) deletes nothing; the next pull commits the leftovers first and deletes each once', async () => {
  const { fake, fetcher, store, tmp } = await setup({ messages: messages(4), gmail: REMOVES_DELETED }, false);
  // state.db refuses the first batch, as SQLite does on a full disk (SQLITE_FULL)
  const ledger = (store as unknown as { d: { ledger: { transaction: (fn: () => void) => void } } }).d.ledger;
  const real = ledger.transaction.bind(ledger);
  let full = true;
  ledger.transaction = (fn) => {
    if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    real(fn);
  };
  await assert.rejects(fetcher().pull(), /disk is full/);
  assert.deepEqual(fake.committed, [], 'nothing deleted upstream');
  full = false;
  const r = await fetcher().pull();
  assert.equal(store.list(INBOX).length, 4);
  assert.equal(r.deletedUpstream, 4);
  assert.deepEqual(fake.committed, [[1, 2, 3, 4], []], 'each deleted once, after its commit');
  assert.deepEqual(tmp(), []);
});

function renumberedMessage(i: number, withId = true): Buffer {
  const id = withId ? `Message-ID: <r${i}@test>\r\n` : '';
  return Buffer.from(`${id}Subject: ${i}\r\n\r\nbody ${i}\r\n${'y'.repeat(i * 7)}\r\n`);
}

// docs/pitfalls.md#pop3-uidl-renumbering, on a server without TOP
test('renumbered UIDLs without TOP: identity from the RETR bytes, new ones RETRieved once, deletions kept', async () => {
  const msgs = Array.from({ length: 14 }, (_, i) => renumberedMessage(i + 1, i % 5 !== 0));
  let prefix = 'old';
  const { fake, fetcher, store } = await setup({
    messages: msgs,
    capa: ['USER', 'UIDL', 'PIPELINING'],
    onCommand: (verb) =>
      verb === 'UIDL'
        ? { reply: `+OK\r\n${msgs.map((_, i) => `${i + 1} ${prefix}-${i + 1}\r\n`).join('')}.\r\n` }
        : undefined,
  });
  const pull = () => fetcher().pull();
  // the first 12 are known; the user deletes two of them (one without a Message-ID)
  msgs.splice(12);
  assert.equal((await pull()).newMessages, 12);
  const first = store.list(INBOX);
  const deleted = [first[0], first[3]].map((m) => m!.uid);
  assert.equal(await store.trash(deleted, { deleteUpstream: false }), 2);
  msgs.push(renumberedMessage(13, false), renumberedMessage(14));
  prefix = 'new';
  const retrBefore = fake.log.filter((l) => l.startsWith('C: RETR')).length;
  const r = await pull();
  const retrs = fake.log.filter((l) => l.startsWith('C: RETR')).length - retrBefore;
  assert.equal(r.newMessages, 2, 'only the two new messages are stored');
  assert.equal(retrs, 14, 'each listed message RETRieved once (for its identity), the new ones not again');
  const live = store.list(INBOX);
  assert.equal(live.length, 12);
  assert.deepEqual(
    live.slice(0, 10).map((m) => m.uid),
    first.filter((m) => !deleted.includes(m.uid)).map((m) => m.uid),
    'local UIDs kept',
  );
  const change = store.unfinishedKeyChange(INBOX);
  assert.equal(change, undefined, 'the adoption finished');
  const again = await pull();
  assert.equal(again.newMessages, 0);
});

/** The store with `begin()` wrapped, to watch when the fetcher opens a message's file. */
function beginHook(store: AccountStore, before: (key: string) => Promise<void> | void): AccountStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'begin')
        return async (folder: string, key: string, opts?: BeginOptions) => {
          await before(key);
          return target.begin(folder, key, opts);
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

test('RETRs run ahead of the disk: every RETR of a small mailbox is sent before the first file is opened', async () => {
  const msgs = messages(40, 500);
  const { fake, store, dataDir } = await setup({ messages: msgs });
  const retrs = () => fake.log.filter((l) => l.startsWith('C: RETR')).length;
  let seenAtFirstBegin = -1;
  const slowDisk = beginHook(store, async () => {
    if (seenAtFirstBegin >= 0) return;
    // a disk that is slow to open the first file: wait (boundedly) for the wire to move on
    for (let i = 0; i < 100 && retrs() < msgs.length; i++) await new Promise((r) => setTimeout(r, 10));
    seenAtFirstBegin = retrs();
  });
  const r = await fetcherOn(fake.port, slowDisk).pull();
  assert.equal(r.newMessages, 40);
  assert.equal(seenAtFirstBegin, 40, 'RETRs sent while the first file was being opened');
  assert.equal(retrs(), 40, 'each message RETRieved once');
  const { readFileSync } = await import('node:fs');
  const got = store.list(INBOX).map((m) => readFileSync(m.path));
  for (let i = 0; i < 40; i++) assert.ok(got[i]!.equals(msgs[i]!), `message ${i + 1} byte-exact`);
  assert.deepEqual(readdirSync(path.join(dataDir, 'accounts/a/Maildir/tmp')), []);
});

test('a message larger than what is held in memory streams into its file, byte-exact, between small ones', async () => {
  const msgs = [...messages(3, 100), ...messages(1, 3 * 1024 * 1024), ...messages(3, 100)];
  const { fetcher, store } = await setup({ messages: msgs });
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 7);
  const { readFileSync } = await import('node:fs');
  const got = store.list(INBOX).map((m) => readFileSync(m.path));
  for (let i = 0; i < 7; i++) assert.ok(got[i]!.equals(msgs[i]!), `message ${i + 1} byte-exact`);
});
