/**
 * The change journal replayed upstream against the real Dovecot, checked straight on Dovecot
 * with Python's imaplib: flags, expunge, copy, move, append, create, rename, delete reach the
 * upstream once, local messages get their upstream keys (APPENDUID/COPYUID); with the upstream
 * unreachable the changes wait and drain once it answers; and the pull brings upstream changes
 * (flags, expunges, folders) back. First with the durable stand-in of tests/support/journal-fake.ts,
 * then through the cache's real MailboxStore, journal and mirror (`imapChangesOf`), where the
 * appended message, once keyed, is never downloaded a second time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { parseConfigText } from '../../src/config/load.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { SyncService } from '../../src/daemon/sync.js';
import { createImapClient } from '../../src/upstream/imap/connect.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { replayAccount, replayJournal } from '../../src/upstream/imap/journal-replay.js';
import type { UpstreamEndpoint } from '../../src/upstream/types.js';
import { startImapTap } from '../support/imap-tap.js';
import { FakeJournalStore } from '../support/journal-fake.js';
import { makeConfig, waitFor } from '../support/localpost.js';
import { imaplibState, PYTHON } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import type { Testbed } from '../support/testbed.js';
import { startTestbed } from '../support/testbed.js';

let tb: Testbed;
const dirs: string[] = [];
const log = pino({ level: process.env.LP_TEST_LOG ?? 'silent' });

before(async () => {
  tb = await startTestbed({
    postfix: false,
    env: {
      EXTRA_USERS:
        'carol:carolpw dave:davepw erin:erinpw frank:frankpw gina:ginapw hank:hankpw ivan:ivanpw judy:judypw',
    },
  });
});
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await tb?.stop();
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'lp-journal-'));
  dirs.push(d);
  return d;
}

function endpoint(user: string, port = tb.imapPort): UpstreamEndpoint {
  return { host: '127.0.0.1', port, tls: 'none', username: user, password: `${user}pw`, connectTimeoutMs: 3000 };
}

function message(mid: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@example.test\r\nSubject: ${mid}\r\nMessage-ID: <${mid}>\r\n\r\n${body}\r\n`);
}

/** Upstream messages by Message-ID in one folder (absent folder: empty). */
async function upstream(user: string) {
  const st = await imaplibState(tb.imapPort, user, `${user}pw`);
  const count = (folder: string, mid: string) => (st[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
  const flags = (folder: string, mid: string) => st[folder]?.messages.find((m) => m.mid === mid)?.flags ?? [];
  return { st, count, flags };
}

/** Rows of the fake for messages already upstream in INBOX, keyed like the pull keys them. */
async function adoptUpstream(fake: FakeJournalStore, user: string, mids: string[]) {
  const { st } = await upstream(user);
  const inbox = st.INBOX;
  assert.ok(inbox);
  return mids.map((mid) => {
    const m = inbox.messages.find((x) => x.mid === mid);
    assert.ok(m, mid);
    return fake.addRow('INBOX', undefined, { key: `i${inbox.uidValidity}_${m.uid}` });
  });
}

/** imaplib, as another device would: STORE and EXPUNGE upstream. */
function pythonImap(user: string, code: string): void {
  const script = `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${tb.imapPort})\nm.login('${user}', '${user}pw')\n${code}\nm.logout()\n`;
  execFileSync(PYTHON, ['-c', script]);
}

describe('journal replay against Dovecot', () => {
  test('flags, append, copy, move, expunge, create, rename, delete reach the upstream exactly once', async () => {
    for (const mid of ['m1@t', 'm2@t', 'm3@t']) await tb.appendMessage('carol', message(mid));
    const fake = new FakeJournalStore(path.join(tmp(), 'state.json'));
    const [m1, m2, m3] = await adoptUpstream(fake, 'carol', ['m1@t', 'm2@t', 'm3@t']);
    assert.ok(m1 && m2 && m3);
    fake.add({ kind: 'create', folder: 'Work' });
    fake.add({ kind: 'flags', folder: 'INBOX', uids: [m2.uid], op: 'add', flags: ['\\Flagged', '$Label1'] });
    const a = fake.addRow('INBOX', message('new@t', 'appended locally'), { flags: ['\\Seen'] });
    fake.add({ kind: 'append', folder: 'INBOX', uid: a.uid });
    fake.add({ kind: 'flags', folder: 'INBOX', uids: [a.uid], op: 'add', flags: ['\\Answered'] });
    const c2 = fake.addRow('Work', undefined);
    fake.add({ kind: 'copy', folder: 'INBOX', to: 'Work', pairs: [{ from: m2.uid, to: c2.uid }], keys: [m2.key] });
    const c3 = fake.addRow('Work', undefined);
    fake.removeRows('INBOX', [m3.uid]);
    fake.add({ kind: 'move', folder: 'INBOX', to: 'Work', pairs: [{ from: m3.uid, to: c3.uid }], keys: [m3.key] });
    fake.removeRows('INBOX', [m1.uid]);
    fake.add({ kind: 'expunge', folder: 'INBOX', uids: [m1.uid], keys: [m1.key] });
    fake.add({ kind: 'create', folder: 'Tmp' });
    fake.add({ kind: 'delete', folder: 'Tmp' });
    fake.add({ kind: 'rename', folder: 'Work', to: 'Projects' });

    const r = await replayAccount(endpoint('carol'), {
      ...fake.changes(),
      cursors: { getCursor: () => undefined },
      log,
    });
    assert.deepEqual({ applied: r.applied, failed: r.failed, left: r.left }, { applied: 10, failed: 0, left: 0 });
    const up = await upstream('carol');
    assert.equal(up.count('INBOX', 'm1@t'), 0, 'expunged upstream');
    assert.equal(up.count('INBOX', 'm2@t'), 1);
    assert.equal(up.count('INBOX', 'm3@t'), 0, 'moved out');
    assert.equal(up.count('INBOX', 'new@t'), 1, 'appended once');
    assert.deepEqual(up.flags('INBOX', 'm2@t'), ['$Label1', '\\Flagged']);
    assert.deepEqual(up.flags('INBOX', 'new@t'), ['\\Answered', '\\Seen']);
    assert.equal(up.count('Projects', 'm2@t'), 1, 'copied once');
    assert.equal(up.count('Projects', 'm3@t'), 1, 'moved once');
    assert.equal(up.st.Work, undefined, 'renamed');
    assert.equal(up.st.Tmp, undefined, 'created then deleted');
    // the local messages have their upstream keys now (APPENDUID, COPYUID)
    const keyOf = (uid: number) => fake.state.rows.find((x) => x.uid === uid)?.key ?? '';
    const newUid = up.st.INBOX?.messages.find((m) => m.mid === 'new@t')?.uid;
    assert.equal(keyOf(a.uid), `i${up.st.INBOX?.uidValidity}_${newUid}`);
    for (const u of [c2.uid, c3.uid]) assert.match(keyOf(u), /^i\d+_\d+$/);
    // a second drain has nothing to do
    const again = await replayAccount(endpoint('carol'), {
      ...fake.changes(),
      cursors: { getCursor: () => undefined },
      log,
    });
    assert.equal(again.applied, 0);
  });

  test('with the upstream unreachable the changes wait in the journal, then drain in order', async () => {
    const fake = new FakeJournalStore(path.join(tmp(), 'state.json'));
    const rows = [1, 2, 3].map((i) => fake.addRow('INBOX', message(`q${i}@t`)));
    for (const r of rows) fake.add({ kind: 'append', folder: 'INBOX', uid: r.uid });
    const down = endpoint('dave', await freePort());
    const deps = { ...fake.changes(), cursors: { getCursor: () => undefined }, log };
    await assert.rejects(replayAccount(down, deps), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
    assert.deepEqual(
      fake.state.entries.map((e) => [e.state, e.tries]),
      [
        ['queued', 0],
        ['queued', 0],
        ['queued', 0],
      ],
    );
    const r = await replayAccount(endpoint('dave'), deps);
    assert.equal(r.applied, 3);
    const up = await upstream('dave');
    assert.deepEqual(
      up.st.INBOX?.messages.map((m) => m.mid),
      ['q1@t', 'q2@t', 'q3@t'],
    );
  });

  test("without UIDPLUS and MOVE: keys found by identity, MOVE as COPY + expunge, another client's \\Deleted kept", async () => {
    for (const mid of ['k1@t', 'k2@t', 'k3@t']) await tb.appendMessage('judy', message(mid));
    pythonImap(
      'judy',
      `m.select('INBOX')\ntyp, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'k3@t')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Deleted)')`,
    );
    const fake = new FakeJournalStore(path.join(tmp(), 'state.json'));
    const [k1, k2] = await adoptUpstream(fake, 'judy', ['k1@t', 'k2@t']);
    assert.ok(k1 && k2);
    fake.add({ kind: 'create', folder: 'Box' });
    const k4 = fake.addRow('INBOX', message('k4@t'));
    fake.add({ kind: 'append', folder: 'INBOX', uid: k4.uid });
    const c1 = fake.addRow('Box', undefined);
    fake.add({ kind: 'copy', folder: 'INBOX', to: 'Box', pairs: [{ from: k1.uid, to: c1.uid }], keys: [k1.key] });
    const c2 = fake.addRow('Box', undefined);
    fake.removeRows('INBOX', [k2.uid]);
    fake.add({ kind: 'move', folder: 'INBOX', to: 'Box', pairs: [{ from: k2.uid, to: c2.uid }], keys: [k2.key] });
    fake.removeRows('INBOX', [k1.uid]);
    fake.add({ kind: 'expunge', folder: 'INBOX', uids: [k1.uid], keys: [k1.key] });
    const client = createImapClient(endpoint('judy'), log);
    await client.connect();
    try {
      for (const cap of ['UIDPLUS', 'MOVE']) client.capabilities.delete(cap);
      const r = await replayJournal(client, { ...fake.changes(), cursors: { getCursor: () => undefined }, log });
      assert.deepEqual({ applied: r.applied, failed: r.failed }, { applied: 5, failed: 0 });
    } finally {
      await client.logout();
    }
    const up = await upstream('judy');
    assert.deepEqual(
      ['k1@t', 'k2@t', 'k3@t', 'k4@t'].map((m) => up.count('INBOX', m)),
      [0, 0, 1, 1],
    );
    assert.deepEqual(up.flags('INBOX', 'k3@t'), ['\\Deleted'], "the other client's \\Deleted message is still there");
    assert.deepEqual([up.count('Box', 'k1@t'), up.count('Box', 'k2@t')], [1, 1]);
    const keyOf = (uid: number) => fake.state.rows.find((x) => x.uid === uid)?.key ?? '';
    const uidIn = (folder: string, mid: string) => up.st[folder]?.messages.find((m) => m.mid === mid)?.uid;
    assert.equal(keyOf(k4.uid), `i${up.st.INBOX?.uidValidity}_${uidIn('INBOX', 'k4@t')}`);
    assert.equal(keyOf(c1.uid), `i${up.st.Box?.uidValidity}_${uidIn('Box', 'k1@t')}`);
    assert.equal(keyOf(c2.uid), `i${up.st.Box?.uidValidity}_${uidIn('Box', 'k2@t')}`);
  });

  test('a folder missing upstream fails its entry permanently and the drain goes on', async () => {
    const fake = new FakeJournalStore(path.join(tmp(), 'state.json'));
    const x = fake.addRow('Nowhere', message('x@t'));
    const y = fake.addRow('INBOX', message('y@t'));
    const bad = fake.add({ kind: 'append', folder: 'Nowhere', uid: x.uid });
    const good = fake.add({ kind: 'append', folder: 'INBOX', uid: y.uid });
    const r = await replayAccount(endpoint('dave'), {
      ...fake.changes(),
      cursors: { getCursor: () => undefined },
      log,
    });
    assert.deepEqual({ applied: r.applied, failed: r.failed }, { applied: 1, failed: 1 });
    assert.equal(fake.entry(bad)?.state, 'failed');
    assert.match(fake.entry(bad)?.lastError ?? '', /Nowhere/);
    assert.equal(fake.entry(good)?.state, 'done');
  });

  test('the pull replays first, then brings upstream flags, expunges and folders back', async () => {
    for (const mid of ['p1@t', 'p2@t', 'p3@t']) await tb.appendMessage('alice', message(mid));
    const dataDir = tmp();
    const cache = await Cache.open({ dataDir, accounts: ['acct'], log });
    try {
      const fake = new FakeJournalStore(path.join(dataDir, 'fake.json'));
      const fetcher = new ImapFetcher({
        endpoint: endpoint('alice'),
        store: cache.account('acct'),
        cursors: cache,
        log,
        folders: ['INBOX'],
        maxMessageSize: 10_000_000,
        changes: fake.changes(),
      });
      await fetcher.pull(); // first pull: the cursor, nothing to mirror yet
      const [p1, p2, p3] = await adoptUpstream(fake, 'alice', ['p1@t', 'p2@t', 'p3@t']);
      assert.ok(p1 && p2 && p3);
      const local = fake.addRow('INBOX', message('local@t'));
      fake.add({ kind: 'append', folder: 'INBOX', uid: local.uid });
      // another device: p1 flagged, p2 expunged, a folder created
      pythonImap(
        'alice',
        `m.select('INBOX')\ntyp, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'p1@t')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Flagged)')\n` +
          `typ, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'p2@t')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Deleted)')\nm.expunge()\nm.create('Elsewhere')`,
      );
      const r = await fetcher.pull();
      assert.equal(r.replayed, 1);
      assert.equal(r.upstreamExpunges, 1);
      assert.ok((r.upstreamFlags ?? 0) >= 1);
      const rows = fake.state.rows;
      assert.equal(
        rows.find((x) => x.uid === p2.uid),
        undefined,
        'expunged upstream: gone locally',
      );
      assert.deepEqual(rows.find((x) => x.uid === p1.uid)?.flags, ['\\Flagged']);
      assert.ok(fake.state.upstreamFolders.some((f) => f.name === 'Elsewhere'));
      assert.match(rows.find((x) => x.uid === local.uid)?.key ?? '', /^i\d+_\d+$/);
      const up = await upstream('alice');
      assert.equal(up.count('INBOX', 'local@t'), 1);
    } finally {
      cache.close();
    }
  });
});

/** A cache with one IMAP account and a pull of its INBOX that carries changes both ways. */
async function setup(user: string) {
  const dataDir = tmp();
  const cache = await Cache.open({ dataDir, accounts: ['acct'], log });
  const acc = {
    id: 'acct',
    incoming: { protocol: 'imap', onLocalDelete: 'keep-upstream' },
  } as unknown as AccountConfig;
  const changes = imapChangesOf(cache, acc);
  assert.ok(changes);
  const pull = (port = tb.imapPort) =>
    new ImapFetcher({
      endpoint: { host: '127.0.0.1', port, tls: 'none', username: user, password: `${user}pw`, connectTimeoutMs: 3000 },
      store: cache.account('acct'),
      cursors: cache,
      log,
      folders: ['INBOX'],
      maxMessageSize: 10_000_000,
      changes,
    }).pull();
  const view = cache.mailboxes('acct');
  const uidOf = (folder: string, mid: string) => {
    const rows = cache.account('acct').list(folder);
    const row = rows.find((r) => readFileSync(r.path, 'latin1').includes(`<${mid}>`));
    assert.ok(row, `${mid} in ${folder} locally`);
    return row.uid;
  };
  return { cache, pull, view, uidOf, journal: cache.journal };
}

describe('local IMAP changes through the MailboxStore, replayed to Dovecot', () => {
  test('flags, expunge, copy, move, append, create, rename, delete appear upstream after the next pull', async () => {
    for (const mid of ['m1@s', 'm2@s', 'm3@s']) await tb.appendMessage('erin', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('erin');
    try {
      assert.equal((await pull()).newMessages, 3);
      const [u1, u2, u3] = ['m1@s', 'm2@s', 'm3@s'].map((m) => uidOf('INBOX', m)) as [number, number, number];
      await view.setFlags('INBOX', [u2], { op: 'add', flags: ['\\Flagged', '$Work'] });
      await view.createFolder('Work');
      await view.copy('INBOX', [u2], 'Work');
      await view.move('INBOX', [u3], 'Work');
      await view.append('INBOX', message('new@s', 'appended locally'), { flags: ['\\Seen'] });
      await view.expunge('INBOX', [u1]);
      await view.renameFolder('Work', 'Projects');
      await view.createFolder('Tmp');
      await view.deleteFolder('Tmp');
      const queued = journal.pending('acct').length;
      assert.ok(queued >= 8, `journaled: ${queued}`);

      const r = await pull();
      assert.equal(r.replayed, queued);
      assert.equal(r.newMessages, 0, 'the appended message is keyed: not downloaded again');
      assert.deepEqual(journal.counts().get('acct') ?? { pending: 0, failed: 0 }, { pending: 0, failed: 0 });
      const up = await upstream('erin');
      assert.equal(up.count('INBOX', 'm1@s'), 0);
      assert.equal(up.count('INBOX', 'm2@s'), 1);
      assert.deepEqual(up.flags('INBOX', 'm2@s'), ['$Work', '\\Flagged']);
      assert.equal(up.count('INBOX', 'm3@s'), 0);
      assert.equal(up.count('INBOX', 'new@s'), 1);
      assert.deepEqual(up.flags('INBOX', 'new@s'), ['\\Seen']);
      assert.equal(up.count('Projects', 'm2@s'), 1);
      assert.equal(up.count('Projects', 'm3@s'), 1);
      assert.equal(up.st.Work, undefined);
      assert.equal(up.st.Tmp, undefined);
      assert.equal((await pull()).newMessages, 0, 'a third pull downloads nothing either');
    } finally {
      cache.close();
    }
  });

  test('changes made upstream come back at the pull; changes made offline drain when the upstream answers', async () => {
    for (const mid of ['o1@s', 'o2@s', 'o3@s']) await tb.appendMessage('frank', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('frank');
    try {
      await pull();
      // another device flags o1 and expunges o2
      const script =
        `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${tb.imapPort})\nm.login('frank', 'frankpw')\nm.select('INBOX')\n` +
        `typ, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'o1@s')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Answered)')\n` +
        `typ, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'o2@s')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Deleted)')\nm.expunge()\nm.logout()\n`;
      const o1 = uidOf('INBOX', 'o1@s');
      const o2 = uidOf('INBOX', 'o2@s');
      execFileSync(PYTHON, ['-c', script]);
      const r = await pull();
      assert.equal(r.upstreamExpunges, 1);
      const inbox = view.select('INBOX').messages;
      assert.equal(
        inbox.find((m) => m.uid === o2),
        undefined,
        'expunged upstream: gone locally',
      );
      assert.deepEqual(inbox.find((m) => m.uid === o1)?.flags, ['\\Answered']);

      // offline: the changes queue
      const o3 = uidOf('INBOX', 'o3@s');
      await view.setFlags('INBOX', [o3], { op: 'add', flags: ['\\Seen'] });
      await view.append('INBOX', message('off@s'));
      await assert.rejects(pull(await freePort()), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
      assert.equal(journal.pending('acct').length, 2);
      const back = await pull();
      assert.equal(back.replayed, 2);
      const up = await upstream('frank');
      assert.deepEqual(up.flags('INBOX', 'o3@s'), ['\\Seen']);
      assert.equal(up.count('INBOX', 'off@s'), 1);
      assert.equal(back.newMessages, 0);
    } finally {
      cache.close();
    }
  });
});

describe('the mirror on the wire', () => {
  test('an unchanged folder costs no mirror command; a flag changed upstream one FETCH CHANGEDSINCE', async () => {
    for (const mid of ['w1@s', 'w2@s']) await tb.appendMessage('ivan', message(mid));
    const tap = await startImapTap(tb.imapPort);
    const { cache, pull, view, uidOf } = await setup('ivan');
    try {
      await pull(tap.port);
      await pull(tap.port);
      tap.reset();
      await pull(tap.port);
      const mirrorCommands = (c: string) => /^UID (SEARCH|FETCH)/.test(c);
      assert.deepEqual(tap.commands.filter(mirrorCommands), [], 'HIGHESTMODSEQ unchanged: nothing asked');
      pythonImap(
        'ivan',
        `m.select('INBOX')\ntyp, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'w2@s')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Seen)')`,
      );
      tap.reset();
      const r = await pull(tap.port);
      assert.equal(r.upstreamFlags, 1);
      const fetches = tap.commands.filter((c) => c.startsWith('UID FETCH'));
      assert.equal(fetches.length, 1, fetches.join(' | '));
      assert.match(fetches[0] ?? '', /FLAGS.*CHANGEDSINCE \d+/);
      assert.equal(tap.commands.filter((c) => c.startsWith('UID SEARCH')).length, 2, "the pull's and the mirror's");
      assert.deepEqual(view.select('INBOX').messages.find((m) => m.uid === uidOf('INBOX', 'w2@s'))?.flags, ['\\Seen']);
    } finally {
      cache.close();
      await tap.close();
    }
  });
});

describe('a UIDVALIDITY change with changes pending', () => {
  test('flags wait for the pull to re-key and then apply; an expunge of a key gone stale fails loudly', async () => {
    for (const mid of ['v1@s', 'v2@s']) await tb.appendMessage('hank', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('hank');
    try {
      await pull();
      const v1 = uidOf('INBOX', 'v1@s');
      const v2 = uidOf('INBOX', 'v2@s');
      await view.setFlags('INBOX', [v1], { op: 'add', flags: ['\\Flagged'] });
      await view.expunge('INBOX', [v2]);
      tb.forgetUids('hank');
      const first = await pull(); // the replay waits; the pull re-keys by content
      assert.equal(first.replayed, 0);
      assert.equal(journal.pending('acct').length, 2);
      assert.deepEqual(
        view.select('INBOX').messages.find((m) => m.uid === v1)?.flags,
        ['\\Flagged'],
        'the pending local flag wins over the upstream flags',
      );
      const second = await pull();
      assert.equal(second.replayed, 1);
      const up = await upstream('hank');
      assert.deepEqual(up.flags('INBOX', 'v1@s'), ['\\Flagged']);
      const failed = journal.list('acct');
      assert.deepEqual(
        failed.map((e) => [e.change.kind, e.state]),
        [['expunge', 'failed']],
      );
      assert.match(failed[0]?.lastError ?? '', /UIDVALIDITY/);
    } finally {
      cache.close();
    }
  });
});

describe("the daemon's prompt replay", () => {
  test('a local change is carried upstream by SyncService.localChange, without a pull', async () => {
    await tb.appendMessage('gina', message('g1@s'));
    const c = makeConfig([{ id: 'acct', protocol: 'imap', port: tb.imapPort, username: 'gina', password: 'ginapw' }]);
    dirs.push(c.dir);
    const accounts = parseConfigText(readFileSync(c.configFile, 'utf8')).accounts;
    const cache = await Cache.open({ dataDir: c.dataDir, accounts: ['acct'], log });
    const acc = accounts[0] as AccountConfig;
    const sync = new SyncService({ accounts, cache, log, changes: () => imapChangesOf(cache, acc) });
    try {
      await sync.sync('acct');
      const pulls = cache.lastSync('acct')?.startedAt;
      const view = cache.mailboxes('acct');
      await view.append('INBOX', message('prompt@s'));
      assert.equal(cache.journal.pending('acct').length, 1);
      sync.localChange('acct');
      sync.localChange('acct'); // debounced: one replay
      await waitFor(() => cache.journal.pending('acct').length === 0, 20_000);
      const up = await upstream('gina');
      assert.equal(up.count('INBOX', 'prompt@s'), 1);
      assert.equal(cache.lastSync('acct')?.startedAt, pulls, 'no pull ran');
    } finally {
      await sync.stop();
      cache.close();
    }
  });
});
