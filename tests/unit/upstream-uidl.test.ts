/**
 * Serving upstream UIDLs (src/cache/uidl-mode.ts, docs/clients.md): the validity rule, the mode
 * fixed when an account's cache is created (and kept by an installation that existed before),
 * uniqueness within the account, the served UIDL kept across a re-key and a lost state.db, and
 * the POP3 fetcher handing each UIDL to the store and the maildrop serving it, also when the
 * provider renumbers its UIDLs (src/upstream/pop3/renumbering.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { Cache, type CacheAccount } from '../../src/cache/cache.js';
import { INBOX, TRASH } from '../../src/cache/message-store.js';
import { isServableUidl, UIDL_MODE_FILE } from '../../src/cache/uidl-mode.js';
import { checkUidlMode } from '../../src/cli/check.js';
import { parseConfigText } from '../../src/config/load.js';
import { cacheAccounts } from '../../src/daemon/accounts.js';
import { Maildrop } from '../../src/listeners/pop3/maildrop.js';
import { Pop3Fetcher } from '../../src/upstream/pop3/fetcher.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';
import { capturedLog } from '../support/log.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'lp-uidl-'));
  dirs.push(d);
  return d;
}

const up = (id = 'a'): CacheAccount => ({ id, uidls: 'upstream' });
const local = (id = 'a'): CacheAccount => ({ id, uidls: 'local' });

async function open(dataDir: string, account: CacheAccount, log = silent): Promise<Cache> {
  const cache = await Cache.open({ dataDir, accounts: [account], log });
  cleanups.push(() => cache.close());
  return cache;
}

/** Store one message with this upstream UIDL (committed); returns the UIDL it serves. */
async function put(cache: Cache, key: string, uidl?: string, folder = INBOX): Promise<string> {
  const store = cache.account('a');
  const p = await store.begin(folder, key, uidl === undefined ? {} : { uidl });
  p.stream.end(Buffer.from(`Subject: ${key}\r\n\r\nbody\r\n`));
  const m = await p.finish();
  await store.commit();
  return m.uidl;
}

/** The UIDL lines the POP3 listener would answer for the account's INBOX. */
async function served(cache: Cache): Promise<string[]> {
  return Maildrop.lines(new Maildrop('a', await cache.account('a').snapshot(INBOX), false).uidlChunks());
}

describe('the UIDL rule', () => {
  it('serves 1 to 70 characters 0x21-0x7E that cannot look like a local UIDL', () => {
    for (const u of ['1', '00000001526a3f5b', 'GmailId18c2a', 'a'.repeat(70), '!~/:,.%', '1234567', 'ABCDEF0123456789'])
      assert.equal(isServableUidl(u), true, u);
    for (const u of [
      '',
      'a'.repeat(71),
      'has space',
      'tab\tx',
      'caf\u00e9',
      'del\x7f',
      '0000000A',
      '0000abcd',
      'ABCDEF012345',
    ])
      assert.equal(isServableUidl(u), false, u);
  });
});

describe('the mode is fixed when the cache is created', () => {
  it('a new account takes the configured mode, records it, and keeps it when the config changes (warned)', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir, up());
    assert.equal(await put(cache, 'k1', 'up-1'), 'up-1');
    cache.close();
    assert.equal(readFileSync(path.join(dataDir, 'accounts/a', UIDL_MODE_FILE), 'utf8'), 'upstream\n');

    const cap = capturedLog('info');
    cache = await open(dataDir, local(), cap.log);
    assert.equal(await put(cache, 'k2', 'up-2'), 'up-2', 'the recorded mode wins');
    const warns = cap.lines().filter((r) => r.level === 40);
    assert.equal(warns.length, 1);
    assert.match(String(warns[0]?.msg), /incoming\.uidls: local is ignored.*created serving upstream UIDLs/);
    assert.deepEqual(await served(cache), ['1 up-1', '2 up-2']);
    // config reloads: one warning per change of the config, none while it matches
    await cache.addAccounts([local()]);
    await cache.addAccounts([up()]);
    assert.equal(cap.lines().filter((r) => r.level === 40).length, 1);
    await cache.addAccounts([local()]);
    assert.equal(cap.lines().filter((r) => r.level === 40).length, 2);
  });

  it('a local account stays local when the config later asks for upstream; `check` warns', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir, local());
    assert.equal(await put(cache, 'k1', 'up-1'), '00000001');
    cache.close();
    cache = await open(dataDir, up());
    assert.equal(await put(cache, 'k2', 'up-2'), '00000002');
    const cfg = parseConfigText(`
dataDir: ${dataDir}
accounts:
  - { id: a, email: a@example.com, login: { password: pw },
      incoming: { protocol: pop3, host: h, username: u, password: p, uidls: upstream } }
`);
    assert.deepEqual(cacheAccounts(cfg.accounts), [up()]);
    const line = await checkUidlMode(cfg.accounts[0]!, dataDir);
    assert.equal(line?.warn, true);
    assert.match(line?.text ?? '', /^a: incoming\.uidls: upstream is ignored/);
  });

  it('an installation whose cache existed before modes were recorded keeps serving hex UIDLs', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir, 'a');
    await put(cache, 'k1');
    cache.close();
    // what the cache of an earlier localpost looks like: no mode file, no recorded mode
    unlinkSync(path.join(dataDir, 'accounts/a', UIDL_MODE_FILE));
    const db = new Database(path.join(dataDir, 'state.db'));
    db.prepare('UPDATE accounts SET uidl_mode = NULL').run();
    db.close();

    cache = await open(dataDir, up());
    assert.equal(await put(cache, 'k2', 'up-2'), '00000002');
    assert.deepEqual(await served(cache), ['1 00000001', '2 00000002']);
    assert.equal(readFileSync(path.join(dataDir, 'accounts/a', UIDL_MODE_FILE), 'utf8'), 'local\n');

    // the same, with its state.db lost too: the account directory alone says it existed
    cache.close();
    unlinkSync(path.join(dataDir, 'accounts/a', UIDL_MODE_FILE));
    for (const f of readdirSync(dataDir)) if (f.startsWith('state.db')) rmSync(path.join(dataDir, f));
    cache = await open(dataDir, up());
    assert.equal(await put(cache, 'k3', 'up-3'), '00000003');
  });

  it('IMAP accounts ask for local UIDLs; `uidls: upstream` needs POP3', () => {
    assert.throws(
      () =>
        parseConfigText(`
accounts:
  - { id: a, email: a@example.com, login: { password: pw },
      incoming: { protocol: imap, host: h, username: u, password: p, uidls: upstream } }
`),
      /accounts\[0\]\.incoming\.uidls: upstream needs a POP3 incoming server/,
    );
  });
});

describe('uniqueness', () => {
  it('a UIDL served already (any folder), begun already, or hex-like falls back to the local UIDL', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir, up());
    const store = cache.account('a');
    assert.equal(await put(cache, 'k1', 'dup'), 'dup');
    assert.equal(await put(cache, 'k2', 'dup'), '00000002', 'served in the folder');
    assert.equal(await put(cache, 'k3', 'in-trash'), 'in-trash');
    assert.equal(await store.trash([3], { deleteUpstream: false }), 1); // in Trash under UID 4
    assert.equal(await put(cache, 'k4', 'in-trash'), '00000005', 'served in Trash still');
    assert.equal(await put(cache, 'k5', '0000000A'), '00000006', 'looks like a local UIDL');
    assert.equal(await put(cache, 'k6', 'bad uidl'), '00000007', 'not RFC 1939');

    const p1 = await store.begin(INBOX, 'k7', { uidl: 'pending' });
    const p2 = await store.begin(INBOX, 'k8', { uidl: 'pending' });
    await p1.abort();
    const p3 = await store.begin(INBOX, 'k9', { uidl: 'pending' });
    for (const p of [p2, p3]) {
      p.stream.end(Buffer.from('x\r\n\r\n'));
      await p.finish();
    }
    await store.commit();
    assert.deepEqual(
      store.list(INBOX).map((m) => m.uidl),
      ['dup', '00000002', '00000005', '00000006', '00000007', '00000009', 'pending'],
    );
    assert.deepEqual(
      store.list(TRASH).map((m) => m.uidl),
      ['in-trash'],
    );
  });

  it('a purged message frees its UIDL', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir, up());
    await put(cache, 'k1', 'gone');
    assert.equal(await cache.account('a').remove([1]), 1);
    assert.equal(await put(cache, 'k2', 'gone'), 'gone');
  });
});

describe('durability', () => {
  it('adopting new keys keeps the served UIDL (live and Trash rows), and so does a rebuilt state.db', async () => {
    const dataDir = await tempDir();
    let cache = await open(dataDir, up());
    await put(cache, 'k1', 'first');
    await put(cache, 'k2', 'second');
    await put(cache, 'k3', 'third');
    const store = cache.account('a');
    assert.equal(await store.trash([1], { deleteUpstream: false }), 1);
    // the provider renumbered its UIDLs: the tombstone (with its Trash row) and a live row move
    const moves = [
      { from: 'k1', to: 'n1' },
      { from: 'k2', to: 'n2' },
    ];
    assert.equal(await store.adoptKeys(INBOX, moves), 2);
    const keysAndUidls = () => [INBOX, TRASH].map((f) => store.list(f).map((m) => [m.key, m.uidl]));
    assert.deepEqual(keysAndUidls(), [
      [
        ['n2', 'second'],
        ['k3', 'third'],
      ],
      [['n1', 'first']],
    ]);
    cache.close();

    // state.db lost: recovery rebuilds the rows from the file names, UIDLs included
    for (const f of readdirSync(dataDir)) if (f.startsWith('state.db')) rmSync(path.join(dataDir, f));
    cache = await open(dataDir, local());
    assert.equal(cache.recovery.get('a')?.rebuilt, 3);
    assert.deepEqual(await served(cache), ['1 second', '2 third']);
    assert.deepEqual(
      cache
        .account('a')
        .list(TRASH)
        .map((m) => m.uidl),
      ['first'],
    );
    assert.equal(await put(cache, 'k4', 'fourth'), 'fourth', 'the mode file survives the database');
    assert.equal(await put(cache, 'k5', 'first'), '00000006', 'served UIDLs are known again');
  });

  it('recovery serves a UIDL once per account and ignores one that is not servable', async () => {
    const dataDir = await tempDir();
    const cache = await open(dataDir, up());
    await put(cache, 'k1', 'same');
    await put(cache, 'k2', 'other');
    cache.close();
    // two names carrying the same U=, and one carrying a hex-like UIDL (written by hand)
    const newDir = path.join(dataDir, 'accounts/a/Maildir/new');
    const [n1, n2] = readdirSync(newDir).sort();
    const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');
    for (const f of readdirSync(dataDir)) if (f.startsWith('state.db')) rmSync(path.join(dataDir, f));
    renameSync(path.join(newDir, n2!), path.join(newDir, n2!.replace(hex('other'), hex('same'))));
    renameSync(path.join(newDir, n1!), path.join(newDir, n1!.replace(hex('same'), hex('0000000B'))));
    const again = await open(dataDir, up());
    assert.deepEqual(await served(again), ['1 00000001', '2 same']);
  });
});

/** One keep-mode pull of account `a` from the fake POP3 server (user u, password p). */
function pullFrom(port: number, cache: Cache) {
  return new Pop3Fetcher({
    endpoint: { host: '127.0.0.1', port, tls: 'none', username: 'u', password: 'p' },
    store: cache.account('a'),
    log: silent,
    keepOnServer: true,
    maxMessageSize: 1 << 20,
  }).pull();
}

describe('the POP3 fetcher', () => {
  it('hands the upstream UIDL to the store; a UIDL listed twice is served once', async () => {
    const msg = (n: number) => Buffer.from(`Subject: ${n}\r\n\r\nbody ${n}\r\n`);
    const fake = await startFakePop3({
      user: 'u',
      pass: 'p',
      messages: [msg(1), msg(2), msg(3)],
      onCommand: (verb, args) =>
        verb === 'UIDL' && args.length === 0 ? { reply: '+OK\r\n1 AAA-1\r\n2 twice\r\n3 twice\r\n.\r\n' } : undefined,
    });
    cleanups.push(() => fake.close());
    const dataDir = await tempDir();
    const cache = await open(dataDir, up());
    const result = await pullFrom(fake.port, cache);
    assert.equal(result.newMessages, 3);
    assert.deepEqual(await served(cache), ['1 AAA-1', '2 twice', '3 00000003']);
    const found = new Maildrop('a', await cache.account('a').snapshot(INBOX), false).lookup('2');
    assert.equal(typeof found === 'object' && found.uidl, 'twice', 'UIDL n');
    assert.equal(existsSync(path.join(dataDir, 'accounts/a', UIDL_MODE_FILE)), true);
  });
});

describe('a provider renumbering its UIDLs', () => {
  it('keeps the UIDLs served; new mail serves the new ones, and an old UIDL reused upstream a local one', async () => {
    const msg = (n: number) => Buffer.from(`Message-ID: <r${n}@test>\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n`);
    const msgs = Array.from({ length: 12 }, (_, i) => msg(i + 1));
    let uidls = msgs.map((_, i) => `old-${i + 1}`);
    const fake = await startFakePop3({
      user: 'u',
      pass: 'p',
      messages: msgs,
      capa: ['USER', 'UIDL', 'PIPELINING'],
      onCommand: (verb, args) =>
        verb === 'UIDL' && args.length === 0
          ? { reply: `+OK\r\n${uidls.map((u, i) => `${i + 1} ${u}\r\n`).join('')}.\r\n` }
          : undefined,
    });
    cleanups.push(() => fake.close());
    const dataDir = await tempDir();
    const cache = await open(dataDir, up());
    const pull = () => pullFrom(fake.port, cache);
    assert.equal((await pull()).newMessages, 12);
    const before = await served(cache);
    assert.deepEqual(before.slice(0, 2), ['1 old-1', '2 old-2']);
    msgs.push(msg(13));
    uidls = msgs.map((_, i) => `new-${i + 1}`);
    assert.equal((await pull()).newMessages, 1, 'the twelve are adopted, not fetched again');
    assert.deepEqual(await served(cache), [...before, '13 new-13']);
    msgs.push(msg(14));
    uidls.push('old-1');
    assert.equal((await pull()).newMessages, 1);
    assert.deepEqual((await served(cache)).slice(12), ['13 new-13', '14 0000000E']);
  });
});
