/**
 * End to end through `localpost start`: the daemon pulls from the real Dovecot and serves the
 * cache on its local POP3 port; poplib reads the same bytes from both. With the upstream
 * unreachable, a login is served from the cache at once; pull on login brings in mail that
 * arrived upstream after the daemon started; delete-upstream removes locally deleted mail from
 * Dovecot at the next pull (POP3 DELE and IMAP \Deleted + EXPUNGE).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  type AccountSpec,
  inboxDir,
  makeConfig,
  readCached,
  spawnCli,
  spawnDaemon,
  waitFor,
} from '../support/localpost.js';
import { authenticated } from '../support/pop3-server.js';
import { poplibFetchAll } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
const cleanups: Array<() => void | Promise<void>> = [];
before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'pat:patpw quinn:quinnpw rita:ritapw sam:sampw' } });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tb?.stop();
});

interface Running {
  proc: ChildProcess;
  port: number;
  dataDir: string;
  out: () => string;
}

/** `localpost start` with one account and the POP3 listener on a free loopback port. */
async function startDaemon(spec: AccountSpec, incomingExtra = ''): Promise<Running> {
  const port = await freePort();
  const c = makeConfig(
    [spec],
    `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"], workarounds: [] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
  );
  if (incomingExtra) {
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(c.configFile, readFileSync(c.configFile, 'utf8').replace(/(\n {6}idle: .*\n)/, `$1${incomingExtra}`));
  }
  const { proc, out } = spawnDaemon(c.configFile);
  const running: Running = { proc, port, dataDir: c.dataDir, out };
  cleanups.push(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('close', r));
    }
    c.cleanup();
  });
  await waitFor(() => out().includes('POP3 listener ready'), 60_000, `POP3 listener to start:\n${out()}`);
  return running;
}

async function stopDaemon(r: Running): Promise<void> {
  r.proc.kill('SIGTERM');
  const code = await new Promise((res) => r.proc.once('close', res));
  assert.equal(code, 0, r.out().slice(-3000));
}

describe('localpost start serves the cache over POP3', () => {
  test('poplib reads the same bytes from localpost as from Dovecot', async () => {
    await tb.seed('pat', 25);
    const d = await startDaemon({ id: 'pat', protocol: 'pop3', port: tb.pop3Port, username: 'pat', password: 'patpw' });
    await waitFor(() => d.out().includes('pull done'), 60_000, 'first pull');
    const upstream = await poplibFetchAll(tb.pop3Port, 'pat', 'patpw');
    const local = await poplibFetchAll(d.port, 'pat', 'localpw');
    assert.equal(local.length, 25);
    assert.equal(local.length, upstream.length);
    for (let i = 0; i < local.length; i++) assert.ok(local[i]!.equals(upstream[i]!), `message ${i + 1} differs`);
    await stopDaemon(d);
  });

  test('upstream unreachable: the login is served from the cache at once', async () => {
    await tb.seed('quinn', 3);
    const d1 = await startDaemon({
      id: 'quinn',
      protocol: 'pop3',
      port: tb.pop3Port,
      username: 'quinn',
      password: 'quinnpw',
    });
    await waitFor(() => d1.out().includes('pull done'), 60_000, 'first pull');
    await stopDaemon(d1);
    // Same data dir, upstream now a closed port.
    const dead = await freePort();
    const port = await freePort();
    const { writeFileSync, readFileSync } = await import('node:fs');
    const configFile = `${d1.dataDir}/../config.yaml`;
    writeFileSync(
      configFile,
      readFileSync(configFile, 'utf8')
        .replace(`port: ${tb.pop3Port}`, `port: ${dead}`)
        .replace(/pop3: \{ port: \d+/, `pop3: { port: ${port}`),
    );
    const proc = spawnCli(['--config', configFile, 'start']);
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    try {
      await waitFor(() => out.includes('POP3 listener ready'), 60_000, 'listener');
      const c = await authenticated(port, 'quinn', 'localpw');
      assert.match(await c.ask('STAT'), /^\+OK 3 \d+$/);
      c.close();
      await waitFor(() => out.includes('upstream unreachable: working offline'), 30_000, 'the pull found it offline');
      const c2 = await authenticated(port, 'quinn', 'localpw');
      assert.match(await c2.ask('STAT'), /^\+OK 3 \d+$/, 'a second login while offline is served from the cache');
      c2.close();
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('close', r));
    }
  });

  test('pull on login brings in mail that arrived upstream after the daemon started', async () => {
    await tb.seed('rita', 2);
    const d = await startDaemon(
      { id: 'rita', protocol: 'pop3', port: tb.pop3Port, username: 'rita', password: 'ritapw' },
      '      syncOnLoginFloor: 0s\n', // every login pulls, however soon after the last pull
    );
    await waitFor(() => d.out().includes('pull done'), 60_000, 'first pull');
    const c1 = await authenticated(d.port, 'rita', 'localpw');
    assert.match(await c1.ask('STAT'), /^\+OK 2 /);
    assert.match(await c1.ask('QUIT'), /^\+OK/);
    await tb.appendMessage('rita', Buffer.from('Subject: late arrival\r\n\r\nhello\r\n'));
    const c2 = await authenticated(d.port, 'rita', 'localpw');
    assert.match(await c2.ask('STAT'), /^\+OK 3 /);
    assert.match(await c2.ask('TOP 3 0'), /^\+OK/);
    assert.match((await c2.body()).toString(), /Subject: late arrival/);
    c2.close();
    await stopDaemon(d);
  });

  for (const protocol of ['pop3', 'imap'] as const) {
    test(`delete-upstream (${protocol}): a local DELE removes the message upstream at the next pull`, async () => {
      const user = protocol === 'pop3' ? 'sam' : 'pat';
      const pass = `${user}pw`;
      await tb.seed(user, 4, undefined, { reset: true, archiveN: 0 });
      const d = await startDaemon(
        { id: user, protocol, port: protocol === 'pop3' ? tb.pop3Port : tb.imapPort, username: user, password: pass },
        '      onLocalDelete: delete-upstream\n      syncOnLogin: 0s\n',
      );
      await waitFor(() => d.out().includes('pull done'), 60_000, 'first pull');
      assert.equal(readCached(inboxDir(d.dataDir, user)).length, 4);
      const c = await authenticated(d.port, user, 'localpw');
      assert.match(await c.ask('DELE 1'), /^\+OK/);
      assert.match(await c.ask('DELE 3'), /^\+OK/);
      assert.match(await c.ask('QUIT'), /2 messages deleted/);
      assert.equal(tb.countUpstream(user), 4, 'nothing upstream before the next pull');
      const c2 = await authenticated(d.port, user, 'localpw'); // syncOnLogin 0s: no pull here
      c2.close();
      // Trigger a pull through a login with pull on login: restart with the default syncOnLogin.
      await stopDaemon(d);
      const { readFileSync, writeFileSync } = await import('node:fs');
      const configFile = `${d.dataDir}/../config.yaml`;
      writeFileSync(configFile, readFileSync(configFile, 'utf8').replace('      syncOnLogin: 0s\n', ''));
      const proc = spawnCli(['--config', configFile, 'start']);
      let out = '';
      proc.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
      });
      try {
        await waitFor(
          () => /pull done.*deletedUpstream":2|deletedUpstream":2.*pull done/.test(out),
          60_000,
          `upstream deletion:\n${out.slice(-3000)}`,
        );
        assert.equal(tb.countUpstream(user), 2);
        assert.equal(readCached(inboxDir(d.dataDir, user)).length, 2, 'the two deleted ones are not fetched again');
      } finally {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('close', r));
      }
    });
  }
});
