/**
 * Pulling from the real Dovecot over IMAP: byte-exact against Python's imaplib (INBOX and a
 * Maildir++ folder), incremental by UID cursor, a UIDVALIDITY change without duplicates or
 * local deletions, and the daemon's schedule and IDLE (also after the server drops the connection)
 * delivering new mail with no user action, and a graceful SIGTERM.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { corpus } from '../fixtures/corpus.js';
import { startImapTap } from '../support/imap-tap.js';
import { inboxDir, makeConfig, readCached, readCachedByKey, runCli, spawnCli, waitFor } from '../support/localpost.js';
import { imaplibFetchAll } from '../support/python.js';
import type { Testbed } from '../support/testbed.js';
import { startTestbed } from '../support/testbed.js';

let tb: Testbed;
const cleanups: Array<() => void> = [];

before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'carol:carolpw dave:davepw erin:erinpw' } });
});
after(async () => {
  for (const c of cleanups) c();
  await tb?.stop();
});

function config(spec: Parameters<typeof makeConfig>[0]) {
  const c = makeConfig(spec);
  cleanups.push(c.cleanup);
  return c;
}

describe('IMAP pull from Dovecot', () => {
  test('INBOX and Archive arrive byte-exact (same bytes as imaplib); a second sync fetches nothing', async () => {
    await tb.seed('alice', 21, 2000, { archiveN: 4 });
    for (const m of corpus()) await tb.appendMessage('alice', m.raw);
    const inbox = await imaplibFetchAll(tb.imapPort, 'alice', 'alicepw', 'INBOX');
    const archive = await imaplibFetchAll(tb.imapPort, 'alice', 'alicepw', 'Archive');
    const c = config([{ protocol: 'imap', port: tb.imapPort, folders: ['INBOX', 'Archive'] }]);
    const r1 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    assert.match(r1.stdout, new RegExp(`alice ok, ${inbox.length + archive.length} new`));
    // compare by upstream UID: the cache key of an IMAP message is i<UIDVALIDITY>_<UID>
    const byUid = (m: Map<string, Buffer>) => new Map([...m].map(([k, v]) => [Number(k.split('_')[1]), v]));
    const gotInbox = byUid(readCachedByKey(inboxDir(c.dataDir)));
    assert.equal(gotInbox.size, inbox.length);
    for (const m of inbox) assert.ok(gotInbox.get(m.uid)?.equals(m.body), `INBOX message uid ${m.uid} differs`);
    const gotArchive = byUid(readCachedByKey(path.join(inboxDir(c.dataDir), '.Archive')));
    assert.equal(gotArchive.size, archive.length);
    for (const m of archive) assert.ok(gotArchive.get(m.uid)?.equals(m.body), `Archive message uid ${m.uid} differs`);
    const r2 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /alice ok, 0 new/);
  });

  test('the wire: one UID SEARCH per folder, one FETCH response per message, bodies by UID range', async () => {
    await tb.seed('erin', 40, 2000, { archiveN: 5 });
    // a body past the bulk FETCH's window (1 MiB) is streamed after it
    const big = Buffer.from(`Subject: big\r\nMessage-ID: <big@test>\r\n\r\n${'b'.repeat(1_500_000)}\r\n`);
    await tb.appendMessage('erin', big);
    const tap = await startImapTap(tb.imapPort);
    cleanups.push(() => void tap.close());
    const c = config([
      {
        id: 'erin',
        protocol: 'imap',
        port: tap.port,
        username: 'erin',
        password: 'erinpw',
        folders: ['INBOX', 'Archive'],
      },
    ]);
    const r1 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    assert.match(r1.stdout, /erin ok, 46 new/);
    const cached = readCached(inboxDir(c.dataDir, 'erin'));
    assert.ok(
      cached.some((m) => m.equals(big)),
      'the large message arrived whole',
    );
    // 46 messages, each answered once, plus the rest of the large one (2 chunks of 1 MiB)
    assert.ok(tap.fetchResponses <= 46 + 2, `${tap.fetchResponses} FETCH responses`);
    const verbs = tap.commands.map((l) => l.split(' ').slice(0, 2).join(' ').toUpperCase());
    assert.equal(verbs.filter((v) => v === 'UID SEARCH').length, 2, 'one listing per folder');
    const fetches = tap.commands.filter((l) => /^UID FETCH /i.test(l));
    // no FETCH of sizes alone: sizes come with the bodies
    assert.deepEqual(
      fetches.filter((l) => !/BODY\.PEEK\[\]/i.test(l)),
      [],
    );
    assert.ok(fetches.length <= 2 + 2, fetches.join('\n'));
    for (const f of fetches) assert.ok(f.split(' ')[2]!.length <= 16, `a UID range, not a list: ${f}`);
    // nothing changed: the second sync sends no FETCH at all
    tap.reset();
    const r2 = await runCli(['--config', c.configFile, 'sync']);
    assert.match(r2.stdout, /erin ok, 0 new/);
    assert.deepEqual(
      tap.commands.filter((l) => /^UID (FETCH|SEARCH) /i.test(l)),
      [],
    );
  });

  test('a UIDVALIDITY change re-keys the cache: no duplicates, nothing local deleted', async () => {
    await tb.seed('carol', 30, 1000, { archiveN: 0 });
    const c = config([{ id: 'carol', protocol: 'imap', port: tb.imapPort, username: 'carol', password: 'carolpw' }]);
    const r1 = await runCli(['--config', c.configFile, 'sync']);
    assert.match(r1.stdout, /carol ok, 30 new/);
    // Make Dovecot forget its UIDs (as a server migration would): same messages, new UIDVALIDITY.
    tb.forgetUids('carol');
    const r2 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /carol ok, 0 new/);
    await tb.seed('carol', 2, 1000, { archiveN: 0 });
    const r3 = await runCli(['--config', c.configFile, 'sync']);
    assert.match(r3.stdout, /carol ok, 2 new/);
    assert.equal(readCached(inboxDir(c.dataDir, 'carol')).length, 32);
  });

  test('the daemon pulls on its schedule and on IDLE, and stops on SIGTERM', async () => {
    const c = config([
      { id: 'dave', protocol: 'imap', port: tb.imapPort, username: 'dave', password: 'davepw', idle: true },
    ]);
    const daemon = spawnCli(['--config', c.configFile, 'start']);
    let out = '';
    daemon.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    try {
      await waitFor(() => out.includes('IDLE watching INBOX'), 15_000, 'IDLE to start');
      const second = await runCli(['--config', c.configFile, 'start']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`another localpost \\(pid ${daemon.pid}\\) is already using`));
      await tb.seed('dave', 3, 1000, { archiveN: 0 });
      await waitFor(() => readCached(inboxDir(c.dataDir, 'dave')).length === 3, 15_000, 'IDLE-triggered pull');
      // the server drops the IDLE connection: the watcher reconnects and keeps pushing
      const watching = out.split('IDLE watching INBOX').length - 1;
      execFileSync('doveadm', ['-c', path.join(tb.dir, 'etc/dovecot.conf'), 'kick', 'dave@example.test']);
      await waitFor(() => out.split('IDLE watching INBOX').length - 1 > watching, 15_000, 'IDLE to reconnect');
      await tb.seed('dave', 2, 1000, { archiveN: 0 });
      await waitFor(
        () => readCached(inboxDir(c.dataDir, 'dave')).length === 5,
        15_000,
        'IDLE-triggered pull after reconnect',
      );
    } finally {
      daemon.kill('SIGTERM');
    }
    const code = await new Promise((r) => daemon.once('close', (c) => r(c)));
    assert.equal(code, 0, out.slice(-2000));
    assert.match(out, /localpost stopped/);
  });

  test('a cron schedule pulls new mail without any user action', async () => {
    const c = config([
      {
        id: 'dave',
        protocol: 'imap',
        port: tb.imapPort,
        username: 'dave',
        password: 'davepw',
        schedule: '*/2 * * * * *',
      },
    ]);
    const daemon = spawnCli(['--config', c.configFile, 'start']);
    try {
      await waitFor(() => readCached(inboxDir(c.dataDir, 'dave')).length >= 5, 15_000, 'first pull');
      await tb.seed('dave', 2, 1000, { archiveN: 0 });
      await waitFor(() => readCached(inboxDir(c.dataDir, 'dave')).length === 7, 15_000, 'scheduled pull');
    } finally {
      daemon.kill('SIGTERM');
    }
    assert.equal(await new Promise((r) => daemon.once('close', (c) => r(c))), 0);
  });
});
