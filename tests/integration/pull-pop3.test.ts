/**
 * Pulling from the real Dovecot over POP3: byte-exact against Python's poplib for the hostile
 * corpus, incremental, delete mode, TLS (STLS and implicit, with tlsCa), maxMessageSize,
 * offline, and kill -9 during a delete-mode pull.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { corpus } from '../fixtures/corpus.js';
import { inboxDir, makeConfig, readCached, runCli, spawnCli, tmpFiles } from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import type { Testbed } from '../support/testbed.js';
import { startTestbed } from '../support/testbed.js';

let tb: Testbed;
const cleanups: Array<() => void> = [];

before(async () => {
  tb = await startTestbed({
    postfix: false,
    env: { EXTRA_USERS: 'carol:carolpw dave:davepw erin:erinpw fred:fredpw' },
  });
});
after(async () => {
  for (const c of cleanups) c();
  await tb?.stop();
});

function config(spec: Parameters<typeof makeConfig>[0], extra = '') {
  const c = makeConfig(spec, extra);
  cleanups.push(c.cleanup);
  return c;
}

describe('POP3 pull from Dovecot', () => {
  test('corpus arrives byte-exact (same bytes as poplib), second sync fetches nothing', async () => {
    await tb.seed('alice', 21);
    for (const m of corpus()) await tb.appendMessage('alice', m.raw);
    const expected = await poplibFetchAll(tb.pop3Port, 'alice', 'alicepw');
    assert.ok(expected.length >= 21 + corpus().length);
    const c = config([{ protocol: 'pop3', port: tb.pop3Port }]);
    const r1 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    assert.match(r1.stdout, new RegExp(`^sync: alice ok, ${expected.length} new`, 'm'));
    const got = readCached(inboxDir(c.dataDir));
    assert.equal(got.length, expected.length);
    for (let i = 0; i < expected.length; i++) assert.ok(got[i]!.equals(expected[i]!), `message ${i + 1} differs`);
    assert.deepEqual(tmpFiles(inboxDir(c.dataDir)), []);
    const r2 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /alice ok, 0 new/);
    assert.equal(readCached(inboxDir(c.dataDir)).length, expected.length);
  });

  test('delete mode empties the upstream only of what is durable locally', async () => {
    await tb.seed('bob', 40);
    const c = config([
      { id: 'bob', protocol: 'pop3', port: tb.pop3Port, username: 'bob', password: 'bobpw', keepOnServer: false },
    ]);
    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bob ok, 40 new .*40 deleted upstream/);
    assert.equal(tb.countUpstream('bob'), 0);
    assert.equal(readCached(inboxDir(c.dataDir, 'bob')).length, 40);
  });

  test('STLS and implicit TLS verify the certificate; tlsCa makes a private CA work', async () => {
    await tb.seed('carol', 5);
    const stls = config([
      {
        id: 'carol',
        protocol: 'pop3',
        host: 'localhost',
        port: tb.pop3Port,
        tls: 'starttls',
        tlsCa: tb.caCert,
        username: 'carol',
        password: 'carolpw',
      },
    ]);
    const r1 = await runCli(['--config', stls.configFile, 'sync']);
    assert.equal(r1.code, 0, r1.stderr + r1.stdout);
    assert.match(r1.stdout, /carol ok, 5 new/);
    const implicit = config([
      {
        id: 'carol',
        protocol: 'pop3',
        host: 'localhost',
        port: tb.pop3sPort,
        tls: 'implicit',
        tlsCa: tb.caCert,
        username: 'carol',
        password: 'carolpw',
      },
    ]);
    const r2 = await runCli(['--config', implicit.configFile, 'sync']);
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    assert.match(r2.stdout, /carol ok, 5 new/);
    const noCa = config([
      {
        id: 'carol',
        protocol: 'pop3',
        host: 'localhost',
        port: tb.pop3sPort,
        tls: 'implicit',
        username: 'carol',
        password: 'carolpw',
      },
    ]);
    const r3 = await runCli(['--config', noCa.configFile, 'sync']);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /tlsCa/);
  });

  test('maxMessageSize skips and reports, never truncates', async () => {
    const big = corpus().find((m) => m.raw.length > 10 * 1024 * 1024)!;
    await tb.seed('dave', 3);
    await tb.appendMessage('dave', big.raw);
    const c = config([
      { id: 'dave', protocol: 'pop3', port: tb.pop3Port, username: 'dave', password: 'davepw', maxMessageSize: '10MB' },
    ]);
    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dave ok, 3 new .*1 skipped/);
    const got = readCached(inboxDir(c.dataDir, 'dave'));
    assert.equal(got.length, 3);
    assert.ok(got.every((b) => b.length < 1024 * 1024));
  });

  test('an unreachable upstream is reported offline and harms nothing', async () => {
    const c = config([{ protocol: 'pop3', port: 1 }]);
    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /alice offline/);
  });

  test('wrong upstream password is an auth failure, reported as such', async () => {
    const c = config([{ protocol: 'pop3', port: tb.pop3Port, password: 'wrong' }]);
    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /alice auth/);
    assert.doesNotMatch(r.stdout + r.stderr, /wrong/);
  });

  test('kill -9 during delete-mode pulls: every message exactly once locally, upstream empty', async () => {
    const c = config([
      { id: 'erin', protocol: 'pop3', port: tb.pop3Port, username: 'erin', password: 'erinpw', keepOnServer: false },
    ]);
    let seeded = 0;
    let kills = 0;
    for (let round = 0; round < 10; round++) {
      await tb.seed('erin', 150, 1500, { archiveN: 0 });
      seeded += 150;
      const child = spawnCli(['--config', c.configFile, 'sync']);
      // kill at a random moment after the listing, i.e. somewhere in the RETR/commit/DELE loop
      await new Promise<void>((resolve) => {
        let err = '';
        child.stderr!.on('data', (b: Buffer) => {
          err += b.toString();
          if (err.includes('pop3 listing')) {
            err = '';
            setTimeout(resolve, Math.floor(Math.random() * 120));
          }
        });
        child.once('close', () => resolve());
      });
      if (child.exitCode === null && child.kill('SIGKILL')) kills++;
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('close', r));
    }
    const final = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(final.code, 0, final.stderr);
    assert.equal(tb.countUpstream('erin'), 0);
    const got = readCached(inboxDir(c.dataDir, 'erin'));
    const ids = got.map((b) => /^Message-ID: (.*)$/m.exec(b.toString('latin1'))![1]!.trim());
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.equal(ids.length, seeded, `every message present (kills: ${kills})`);
    assert.deepEqual(tmpFiles(inboxDir(c.dataDir, 'erin')), []);
    assert.ok(kills >= 5, `killed ${kills} times`);
  });

  test('check: one line per account, exit 0 when every login works, 1 otherwise; a bad config exits 78', async () => {
    const good = config([
      { protocol: 'pop3', port: tb.pop3Port },
      { id: 'bob', protocol: 'imap', port: tb.imapPort, username: 'bob', password: 'bobpw' },
    ]);
    const r1 = await runCli(['--config', good.configFile, 'check']);
    assert.equal(r1.code, 0, r1.stdout + r1.stderr);
    assert.match(r1.stdout, /^ok +alice: pop3 127\.0\.0\.1:\d+ .*login ok, \d+ messages/m);
    assert.match(r1.stdout, /^ok +bob: imap .*login ok/m);
    const bad = config([{ protocol: 'pop3', port: tb.pop3Port, password: 'hunter2-wrong' }]);
    const r2 = await runCli(['--config', bad.configFile, 'check']);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /^FAIL alice: .*login refused/m);
    assert.doesNotMatch(r2.stdout + r2.stderr, /hunter2/);
    const broken = config([{ protocol: 'pop3', port: tb.pop3Port }], 'bogus: 1\n');
    const r3 = await runCli(['--config', broken.configFile, 'check']);
    assert.equal(r3.code, 78);
    assert.match(r3.stderr, /bogus/);
    const r4 = await runCli(['--config', '/nonexistent/localpost.yaml', 'sync']);
    assert.equal(r4.code, 78);
  });

  test('SIGTERM during a pull: the message in hand finishes, nothing half-written, the next pull completes', async () => {
    await tb.seed('fred', 3000, 4000, { archiveN: 0 });
    const c = config([
      { id: 'fred', protocol: 'pop3', port: tb.pop3Port, username: 'fred', password: 'fredpw', keepOnServer: false },
    ]);
    const child = spawnCli(['--config', c.configFile, 'sync']);
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (b: Buffer) => {
        if (b.toString().includes('pop3 listing')) setTimeout(resolve, 200);
      });
    });
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('close', (c) => r(c)));
    assert.equal(code, 0, 'a stopped pull still reports what it stored');
    assert.deepEqual(tmpFiles(inboxDir(c.dataDir, 'fred')), []);
    const partial = readCached(inboxDir(c.dataDir, 'fred')).length;
    assert.ok(partial > 0 && partial < 3000, `stopped part-way (${partial})`);
    assert.equal(tb.countUpstream('fred'), 3000 - partial, 'exactly the durable messages were deleted upstream');
    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readCached(inboxDir(c.dataDir, 'fred')).length, 3000);
    assert.equal(tb.countUpstream('fred'), 0);
  });
});
