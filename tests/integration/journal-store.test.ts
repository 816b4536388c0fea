/**
 * Local IMAP changes made through the cache's MailboxStore reach the real Dovecot at the next
 * pull (the replay runs first on the pull's connection), checked with Python's imaplib; changes
 * made upstream with imaplib come back at a pull; with the upstream unreachable the changes wait
 * in the journal and drain at the first pull that reaches it. The appended message gets its
 * upstream key, so the pull never downloads it a second time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { imaplibState, PYTHON } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import type { Testbed } from '../support/testbed.js';
import { startTestbed } from '../support/testbed.js';

let tb: Testbed;
const dirs: string[] = [];
const log = pino({ level: process.env.LP_TEST_LOG ?? 'silent' });

before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'carol:carolpw dave:davepw' } });
});
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await tb?.stop();
});

function message(mid: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@example.test\r\nSubject: ${mid}\r\nMessage-ID: <${mid}>\r\n\r\n${body}\r\n`);
}

/** A cache with one IMAP account and a pull of its INBOX that carries changes both ways. */
async function setup(user: string) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'lp-journal-store-'));
  dirs.push(dataDir);
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

async function upstream(user: string) {
  const st = await imaplibState(tb.imapPort, user, `${user}pw`);
  const count = (folder: string, mid: string) => (st[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
  const flags = (folder: string, mid: string) => st[folder]?.messages.find((m) => m.mid === mid)?.flags ?? [];
  return { st, count, flags };
}

describe('local IMAP changes through the MailboxStore, replayed to Dovecot', () => {
  test('flags, expunge, copy, move, append, create, rename, delete appear upstream after the next pull', async () => {
    for (const mid of ['m1@s', 'm2@s', 'm3@s']) await tb.appendMessage('carol', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('carol');
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
      const up = await upstream('carol');
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
    for (const mid of ['o1@s', 'o2@s', 'o3@s']) await tb.appendMessage('dave', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('dave');
    try {
      await pull();
      // another device flags o1 and expunges o2
      const script =
        `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${tb.imapPort})\nm.login('dave', 'davepw')\nm.select('INBOX')\n` +
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
      const up = await upstream('dave');
      assert.deepEqual(up.flags('INBOX', 'o3@s'), ['\\Seen']);
      assert.equal(up.count('INBOX', 'off@s'), 1);
      assert.equal(back.newMessages, 0);
    } finally {
      cache.close();
    }
  });
});
