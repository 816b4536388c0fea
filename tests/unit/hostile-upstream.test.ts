/**
 * Hostile upstream servers (docs/guarantees.md#hostile-upstream-servers): a POP3 server that
 * declares 100 bytes and streams megabytes, endless or over-long UIDL replies, and an IMAP server
 * whose FETCH literal is far larger than the size it declared. Nothing over the limit is stored,
 * no temp file is left, the message is skipped and not fetched again at the next pull, and the
 * daemon's memory stays bounded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { imapKey } from '../../src/upstream/imap/rekey.js';
import { Pop3Fetcher, pop3Key } from '../../src/upstream/pop3/fetcher.js';
import { type FakeImapOptions, startFakeImap } from '../fakes/fake-imap.js';
import { endlessLines, expectedRetr, type FakePop3Options, startFakePop3 } from '../fakes/fake-pop3.js';

const log = pino({ level: 'silent' });
const MB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** The pull fails with `error`, and the process's RSS grows by less than 200 MB meanwhile (a bound, not a timing). */
async function refusedWithin200Mb(pull: Promise<unknown>, error: RegExp): Promise<void> {
  const before = process.memoryUsage().rss;
  await assert.rejects(pull, error);
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 200 * MB, `RSS grew by ${Math.round(grown / MB)} MB`);
}

function messages(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(`Subject: ${i + 1}\r\n\r\n${'x'.repeat(2000)}\r\n`));
}

/** A cache in a temp dir, and the sizes of every file in its Maildir's tmp/, new/ and cur/. */
async function tempCache() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-hostile-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  cleanups.push(() => {
    cache.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const maildir = path.join(dataDir, 'accounts/a/Maildir');
  const files = () =>
    ['tmp', 'new', 'cur'].flatMap((d) =>
      readdirSync(path.join(maildir, d)).map((f) => ({ dir: d, size: statSync(path.join(maildir, d, f)).size })),
    );
  return { cache, files, store: cache.account('a') };
}

async function setup(fakeOpts: FakePop3Options) {
  const fake = await startFakePop3({ user: 'alice', pass: 'pw', ...fakeOpts });
  cleanups.push(() => fake.close());
  const { cache, files, store } = await tempCache();
  const fetcher = () =>
    new Pop3Fetcher({
      endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'pw', timeoutMs: 5000 },
      store: cache.account('a'),
      log,
      keepOnServer: true,
      maxMessageSize: MB,
    });
  return { fake, fetcher, files, store };
}

test('POP3: a message declared 100 bytes that streams 50 MB is skipped, the next is fetched, no loop', async () => {
  const msgs = messages(3);
  const list = `+OK\r\n1 ${expectedRetr(msgs[0] as Buffer).length}\r\n2 100\r\n3 ${expectedRetr(msgs[2] as Buffer).length}\r\n.\r\n`;
  const { fake, fetcher, files, store } = await setup({
    messages: msgs,
    onCommand: (verb, args) => {
      if (verb === 'LIST') return { reply: list };
      if (verb === 'RETR' && args[0] === '2')
        return { reply: '+OK\r\n', stream: () => endlessLines(50 * 1024, () => 'y'.repeat(1022)) }; // 50 MB
      return undefined;
    },
  });
  const r1 = await fetcher().pull();
  assert.equal(r1.newMessages, 2);
  assert.deepEqual(
    store.list(INBOX).map((m) => m.key),
    [pop3Key('uid-1'), pop3Key('uid-3')],
  );
  assert.deepEqual(
    r1.skipped.map((s) => [s.key, /sent more than \d+ bytes \(declared 100\)/.test(s.reason)]),
    [[pop3Key('uid-2'), true]],
  );
  assert.deepEqual(
    files().filter((f) => f.dir === 'tmp'),
    [],
    'no temp file left',
  );
  assert.ok(
    files().every((f) => f.size < MB),
    'nothing over maxMessageSize stored',
  );
  const retr2 = () => fake.log.filter((l) => l === 'C: RETR 2').length;
  assert.equal(retr2(), 1);

  const r2 = await fetcher().pull();
  assert.equal(r2.newMessages, 0);
  assert.equal(retr2(), 1, 'not fetched again at the next pull');
  assert.deepEqual(
    r2.skipped.map((s) => s.key),
    [pop3Key('uid-2')],
    'still reported as skipped',
  );
});

test('POP3: an endless UIDL reply fails the pull with a clear message; memory stays bounded', async () => {
  const { fetcher } = await setup({
    onCommand: (verb) =>
      verb === 'UIDL'
        ? { reply: '+OK\r\n', stream: () => endlessLines(2_000_000, (i) => `${i + 1} uid-${i}-${'u'.repeat(40)}`) }
        : undefined,
  });
  await refusedWithin200Mb(fetcher().pull(), /POP3 protocol error: UIDL reply longer than 1000000 lines/);
});

test('POP3: a UIDL reply of 200 MB in lines under 1 KiB fails at the byte cap', async () => {
  const { fetcher } = await setup({
    onCommand: (verb) =>
      verb === 'UIDL'
        ? { reply: '+OK\r\n', stream: () => endlessLines(200 * 1024, (i) => `${i + 1} ${'u'.repeat(1000)}`) }
        : undefined,
  });
  await refusedWithin200Mb(fetcher().pull(), /POP3 protocol error: UIDL reply longer than 67108864 octets/);
});

test('POP3: a UIDL line of 100 KB is a protocol error', async () => {
  const { fetcher } = await setup({
    onCommand: (verb) => (verb === 'UIDL' ? { reply: `+OK\r\n1 ${'u'.repeat(100 * 1024)}\r\n.\r\n` } : undefined),
  });
  await assert.rejects(fetcher().pull(), /POP3 protocol error: UIDL reply has a line longer than 1024 octets/);
});

async function setupImap(fakeOpts: FakeImapOptions, maxMessageSize: number) {
  const fake = await startFakeImap(fakeOpts);
  cleanups.push(() => fake.close());
  const { cache, files, store } = await tempCache();
  const fetcher = () =>
    new ImapFetcher({
      endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'pw', timeoutMs: 5000 },
      store,
      cursors: cache,
      log,
      folders: ['INBOX'],
      maxMessageSize,
    });
  return { fake, fetcher, files, store };
}

test('IMAP: a FETCH literal far larger than declared and over maxMessageSize is skipped, not fetched again', async () => {
  const msgs = messages(3);
  const { fake, fetcher, files, store } = await setupImap(
    { messages: msgs, body: (uid) => (uid === 2 ? Buffer.alloc(1.5 * MB, 0x61) : undefined) },
    MB,
  );
  const r1 = await fetcher().pull();
  assert.equal(r1.newMessages, 2);
  assert.deepEqual(
    store.list(INBOX).map((m) => m.key),
    [imapKey('7', 1), imapKey('7', 3)],
  );
  assert.deepEqual(
    r1.skipped.map((s) => [s.key, /sent more than \d+ bytes/.test(s.reason)]),
    [[imapKey('7', 2), true]],
  );
  assert.deepEqual(
    files().filter((f) => f.dir === 'tmp'),
    [],
  );
  assert.ok(
    files().every((f) => f.size < MB),
    'nothing over maxMessageSize stored',
  );
  const bodyFetches = () => fake.log.filter((l) => /BODY\.PEEK/i.test(l)).length;
  const before = bodyFetches();
  const r2 = await fetcher().pull();
  assert.equal(r2.newMessages, 0);
  assert.equal(bodyFetches(), before, 'no body fetched again');
});

test('IMAP: a streamed download whose server ignores the partial FETCH and sends 5 MB is skipped', async () => {
  const msgs = [...messages(1), Buffer.alloc(1.5 * MB, 0x62), ...messages(1)];
  const { files, fetcher, store } = await setupImap(
    { messages: msgs, body: (uid) => (uid === 2 ? Buffer.alloc(5 * MB, 0x61) : undefined) },
    4 * MB,
  );
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 2);
  assert.deepEqual(
    r.skipped.map((s) => s.key),
    [imapKey('7', 2)],
  );
  assert.equal(store.list(INBOX).length, 2);
  assert.deepEqual(
    files().filter((f) => f.dir === 'tmp'),
    [],
  );
  assert.ok(
    files().every((f) => f.size <= 3 * MB),
    'nothing over the receive limit stored',
  );
});

test('IMAP: a body that fills the bulk FETCH window and then streams past its limit is skipped', async () => {
  // declared 1.5 MB, really 5 MB: the bulk FETCH gets its first 1 MiB, the streamed rest stops at 3 MB
  const msgs = [...messages(1), Buffer.alloc(5 * MB, 0x63), ...messages(1)];
  const { fake, files, fetcher, store } = await setupImap(
    { messages: msgs, declared: (uid) => (uid === 2 ? 1.5 * MB : undefined) },
    4 * MB,
  );
  const r = await fetcher().pull();
  assert.equal(r.newMessages, 2);
  assert.deepEqual(
    r.skipped.map((s) => [s.key, /sent more than \d+ bytes/.test(s.reason)]),
    [[imapKey('7', 2), true]],
  );
  assert.equal(store.list(INBOX).length, 2);
  assert.deepEqual(
    files().filter((f) => f.dir === 'tmp'),
    [],
  );
  assert.ok(
    fake.log.some((l) => /^UID FETCH 2 .*BODY\.PEEK\[\]<1048576\.1048576>/i.test(l)),
    'the rest was streamed by partial FETCHes of 1 MiB',
  );
});

test('IMAP: a literal past twice maxMessageSize fails the connection before imapflow buffers it whole', async () => {
  const { files, fetcher, store } = await setupImap(
    { messages: messages(2), body: (uid) => (uid === 1 ? Buffer.alloc(20 * MB, 0x61) : undefined) },
    MB,
  );
  await refusedWithin200Mb(fetcher().pull(), /IMAP server sent a response over our limits: Literal size \d+ exceeds/);
  assert.equal(store.list(INBOX).length, 0);
  assert.deepEqual(files(), []);
});

// docs/pitfalls.md#pop3-uidl-renumbering: matching by content RETRs messages into memory
test('POP3: a body past its limit while matching renumbered UIDLs fails the pull, memory bounded', async () => {
  const msgs = Array.from({ length: 12 }, (_, i) =>
    Buffer.from(`Message-ID: <r${i}@test>\r\nSubject: ${i}\r\n\r\n${'x'.repeat(500)}\r\n`),
  );
  let prefix = 'old';
  let hostile = false;
  const { fetcher, store } = await setup({
    messages: msgs,
    capa: ['USER', 'UIDL', 'PIPELINING'], // no TOP: identities come from RETR
    onCommand: (verb, args) => {
      if (verb === 'UIDL')
        return { reply: `+OK\r\n${msgs.map((_, i) => `${i + 1} ${prefix}-${i}\r\n`).join('')}.\r\n` };
      if (hostile && verb === 'RETR' && args[0] === '3')
        return { reply: '+OK\r\n', stream: () => endlessLines(50 * 1024, () => 'y'.repeat(1022)) };
      return undefined;
    },
  });
  assert.equal((await fetcher().pull()).newMessages, 12);
  prefix = 'new';
  hostile = true;
  await refusedWithin200Mb(fetcher().pull(), /message body past \d+ bytes/);
  assert.equal(store.list(INBOX).length, 12);
});
