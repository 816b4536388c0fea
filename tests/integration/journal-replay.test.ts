/**
 * The change journal replayed upstream against the real Dovecot, checked straight on Dovecot
 * with Python's imaplib: flags, expunge, copy, move, append, create, rename, delete reach the
 * upstream once, local messages get their upstream keys (APPENDUID/COPYUID, or found by identity
 * without UIDPLUS); with the upstream unreachable the changes wait and drain once it answers; the
 * pull brings upstream changes (flags, expunges, folders) back. The journal and the account views
 * are the durable stand-in of tests/support/journal-fake.ts (journal-store.test.ts: the real cache).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Cache } from '../../src/cache/cache.js';
import { createImapClient } from '../../src/upstream/imap/connect.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { replayAccount, replayJournal } from '../../src/upstream/imap/journal-replay.js';
import { FakeJournalStore } from '../support/journal-fake.js';
import { journalTestbed, message } from '../support/journal-testbed.js';
import { freePort } from '../support/smtp.js';

const USERS = ['alice', 'carol', 'dave', 'judy'];

const { bed, log, tmp, endpoint, upstream, pythonImap } = journalTestbed(USERS);

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

describe('journal replay against Dovecot', () => {
  test('flags, append, copy, move, expunge, create, rename, delete reach the upstream exactly once', async () => {
    for (const mid of ['m1@t', 'm2@t', 'm3@t']) await bed().appendMessage('carol', message(mid));
    const fake = new FakeJournalStore(path.join(tmp(), 'state.json'));
    const [m1, m2, m3] = await adoptUpstream(fake, 'carol', ['m1@t', 'm2@t', 'm3@t']);
    assert.ok(m1 && m2 && m3);
    fake.add({ kind: 'create', folder: 'Work' });
    fake.add({ kind: 'flags', folder: 'INBOX', uids: [m2.uid], op: 'add', flags: ['\\Flagged', '$Label1'] });
    const a = fake.addRow('INBOX', message('new@t', 'appended locally'), { flags: ['\\Seen'] });
    fake.add({ kind: 'append', folder: 'INBOX', uid: a.uid });
    fake.add({ kind: 'flags', folder: 'INBOX', uids: [a.uid], op: 'add', flags: ['\\Answered'] });
    const c2 = fake.transfer('copy', m2, 'Work');
    const c3 = fake.transfer('move', m3, 'Work');
    fake.expunge(m1);
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
    for (const mid of ['k1@t', 'k2@t', 'k3@t']) await bed().appendMessage('judy', message(mid));
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
    const c1 = fake.transfer('copy', k1, 'Box');
    const c2 = fake.transfer('move', k2, 'Box');
    fake.expunge(k1);
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

  test('a folder with an unresolved inflight change is not pulled', async () => {
    await bed().appendMessage('carol', message('held@t'));
    const dataDir = tmp();
    const cache = await Cache.open({ dataDir, accounts: ['acct'], log });
    try {
      const changes = new FakeJournalStore(path.join(dataDir, 'fake.json')).changes();
      const pull = (unresolved: boolean) =>
        new ImapFetcher({
          endpoint: endpoint('carol'),
          store: cache.account('acct'),
          cursors: cache,
          log,
          folders: ['INBOX'],
          maxMessageSize: 10_000_000,
          changes: { ...changes, store: { ...changes.store, unresolvedChanges: () => unresolved } },
        }).pull();
      assert.equal((await pull(true)).newMessages, 0);
      assert.ok((await pull(false)).newMessages > 0);
    } finally {
      cache.close();
    }
  });

  test('the pull replays first, then brings upstream flags, expunges and folders back', async () => {
    for (const mid of ['p1@t', 'p2@t', 'p3@t']) await bed().appendMessage('alice', message(mid));
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
