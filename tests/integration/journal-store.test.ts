/**
 * Local IMAP changes made through the cache's real MailboxStore reach Dovecot at the next pull
 * (the replay runs first, on the pull's connection) or at once through SyncService.localChange,
 * checked with Python's imaplib; changes made upstream come back at a pull (and what that costs on
 * the wire); offline changes drain when the upstream answers; the appended message, once keyed,
 * is never downloaded again; a UIDVALIDITY change with changes pending.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Cache } from '../../src/cache/cache.js';
import { journalCommand } from '../../src/cli/journal.js';
import { parseConfigText } from '../../src/config/load.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { SyncService } from '../../src/daemon/sync.js';
import { ImapTestClient } from '../support/imap-client.js';
import { startImap } from '../support/imap-server.js';
import { startImapTap } from '../support/imap-tap.js';
import { imapAccount, journalTestbed, message } from '../support/journal-testbed.js';
import { makeConfig, waitFor } from '../support/localpost.js';
import { freePort } from '../support/smtp.js';

const USERS = ['erin', 'frank', 'gina', 'hank', 'ivan', 'jack'];

const tb = journalTestbed(USERS);
const { bed, log, upstream, pythonImap } = tb;
const setup = (user: string) => tb.imapAccount(user);

describe('local IMAP changes through the MailboxStore, replayed to Dovecot', () => {
  test('flags, expunge, copy, move, append, create, rename, delete appear upstream after the next pull', async () => {
    for (const mid of ['m1@s', 'm2@s', 'm3@s']) await bed().appendMessage('erin', message(mid));
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
      await view.createFolder('Notes');
      await view.append('Notes', message('note@s'));
      await view.renameFolder('Work', 'Projects');
      await view.renameFolder('Notes', 'Notes2');
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
      assert.equal(up.count('Notes2', 'note@s'), 1, 'appended, then its folder renamed');
      assert.equal(up.st.Tmp, undefined);
      assert.equal((await pull()).newMessages, 0, 'a third pull downloads nothing either');
    } finally {
      cache.close();
    }
  });

  test('changes made upstream come back at the pull; changes made offline drain when the upstream answers', async () => {
    for (const mid of ['o1@s', 'o2@s', 'o3@s']) await bed().appendMessage('frank', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('frank');
    try {
      await pull();
      // another device flags o1 and expunges o2
      const o1 = uidOf('INBOX', 'o1@s');
      const o2 = uidOf('INBOX', 'o2@s');
      pythonImap(
        'frank',
        `m.select('INBOX')\ntyp, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'o1@s')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Answered)')\n` +
          `typ, d = m.uid('SEARCH', 'HEADER', 'Message-ID', 'o2@s')\nm.uid('STORE', d[0], '+FLAGS', '(\\\\Deleted)')\nm.expunge()`,
      );
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
    for (const mid of ['w1@s', 'w2@s']) await bed().appendMessage('ivan', message(mid));
    const tap = await startImapTap(bed().imapPort);
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
      assert.match(fetches[0] ?? '', /FLAGS.*CHANGEDSINCE \d+ VANISHED/, 'QRESYNC: flags and expunges in one');
      assert.deepEqual(
        tap.commands.filter((c) => c.startsWith('UID SEARCH')),
        [tap.commands.find((c) => /^UID SEARCH UID \d+:\*/.test(c))],
        "the pull's listing only",
      );
      assert.deepEqual(view.select('INBOX').messages.find((m) => m.uid === uidOf('INBOX', 'w2@s'))?.flags, ['\\Seen']);
    } finally {
      cache.close();
      await tap.close();
    }
  });
});

describe('a UIDVALIDITY change with changes pending', () => {
  test('flags and an expunge wait for the pull to re-key and then apply', async () => {
    for (const mid of ['v1@s', 'v2@s']) await bed().appendMessage('hank', message(mid));
    const { cache, pull, view, uidOf, journal } = await setup('hank');
    try {
      await pull();
      const v1 = uidOf('INBOX', 'v1@s');
      const v2 = uidOf('INBOX', 'v2@s');
      await view.setFlags('INBOX', [v1], { op: 'add', flags: ['\\Flagged'] });
      await view.expunge('INBOX', [v2]);
      bed().forgetUids('hank');
      const first = await pull(); // the replay waits; the pull re-keys by content
      assert.equal(first.replayed, 0);
      assert.equal(journal.pending('acct').length, 2);
      assert.deepEqual(
        view.select('INBOX').messages.find((m) => m.uid === v1)?.flags,
        ['\\Flagged'],
        'the pending local flag wins over the upstream flags',
      );
      const second = await pull();
      assert.equal(second.replayed, 2, 'the expunge names the new key of its (tombstoned) message');
      const up = await upstream('hank');
      assert.deepEqual(up.flags('INBOX', 'v1@s'), ['\\Flagged']);
      assert.equal(up.count('INBOX', 'v2@s'), 0);
      assert.deepEqual(journal.list('acct'), []);
    } finally {
      cache.close();
    }
  });

  test('an expunge through the local IMAP server while offline, then a UIDVALIDITY change: expunged upstream once', async () => {
    for (const mid of ['j1@s', 'j2@s', 'j3@s']) await bed().appendMessage('jack', message(mid));
    const c = makeConfig([
      { id: 'acct', protocol: 'imap', port: bed().imapPort, username: 'jack', password: 'jackpw' },
    ]);
    const { cache, pull, view, uidOf, journal } = await imapAccount(c.dataDir, tb.endpoint('jack'), log);
    const imap = await startImap({ server: { hooks: { openAccount: () => view } } });
    try {
      await pull();
      const j2 = uidOf('INBOX', 'j2@s');
      const client = await ImapTestClient.open(imap.port, ['alice', 'localpw']);
      try {
        assert.match((await client.run('SELECT INBOX')).at(-1) ?? '', / OK /);
        assert.match((await client.run(`UID STORE ${j2} +FLAGS.SILENT (\\Deleted)`)).at(-1) ?? '', / OK /);
        assert.match((await client.run(`UID EXPUNGE ${j2}`)).at(-1) ?? '', / OK /);
      } finally {
        client.close();
      }
      await assert.rejects(pull(await freePort()), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
      assert.deepEqual(
        journal.pending('acct').map((e) => e.change.kind),
        ['flags', 'expunge'],
      );
      const before = await upstream('jack');
      bed().forgetUids('jack');
      const after = await upstream('jack');
      assert.notEqual(after.st.INBOX?.uidValidity, before.st.INBOX?.uidValidity, 'a new UIDVALIDITY upstream');
      assert.equal(after.count('INBOX', 'j2@s'), 1);
      await pull(); // the replay waits for the re-key, which moves the journal's keys too
      await pull();
      const up = await upstream('jack');
      assert.deepEqual(
        ['j1@s', 'j2@s', 'j3@s'].map((m) => up.count('INBOX', m)),
        [1, 0, 1],
      );
      assert.equal(up.st.INBOX?.messages.length, 2, 'nothing else expunged');
      assert.deepEqual(journal.list('acct'), []);
    } finally {
      await imap.close();
      cache.close();
    }
    const out: string[] = [];
    const cfg = parseConfigText(readFileSync(c.configFile, 'utf8'), c.configFile);
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    assert.equal(await journalCommand(cfg, async () => log, 'list', undefined, io), 0);
    assert.deepEqual(out, ['journal is empty: every local IMAP change is upstream']);
    c.cleanup();
  });
});

describe("the daemon's prompt replay", () => {
  test('a local change is carried upstream by SyncService.localChange, without a pull', async () => {
    await bed().appendMessage('gina', message('g1@s'));
    const c = makeConfig([
      { id: 'acct', protocol: 'imap', port: bed().imapPort, username: 'gina', password: 'ginapw' },
    ]);
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
      c.cleanup();
    }
  });
});
