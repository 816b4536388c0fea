/**
 * The whole daemon (`localpost start`) with the real testbed: its outgoing SMTP server sits
 * behind a relay the test switches on and off, so the upstream is "down" and then "comes
 * back" on the same port (a flap only delays; coming back flushes the queue).
 *
 * - Offline: messages submitted to the daemon are accepted (250) and queued; `status --json`
 *   and `outbox list` show them while the daemon runs, and `outbox flush` goes through the
 *   daemon (still queued: the upstream is down); the upstream comes back and, with no
 *   user action and a retry delay of an hour, the connectivity monitor's "back online" flushes
 *   them to Postfix (read back from Dovecot over IMAP, Bcc recipient included) and pulls every
 *   account (a message put upstream meanwhile arrives in the local cache).
 *   The SIZE Postfix advertised is kept in `upstream-limits.json`.
 * - The CLI in-process: `outbox drop`, `flush` (down, then up), `retry` of a failed entry.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { inboxDir, readCached, runCli, waitFor } from '../support/localpost.js';
import { imaplibFetchAll } from '../support/python.js';
import { type DaemonProcess, daemonConfig, freePort, relay, smtplibSend, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let dir: string;
const daemons: DaemonProcess[] = [];
before(async () => {
  tb = await startTestbed({ postfix: true, env: { EXTRA_USERS: 'dave:davepw' } });
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-smtpd-'));
});
after(async () => {
  for (const d of daemons) if (d.child.exitCode === null) await d.kill();
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A daemon for alice whose outgoing server is Postfix behind a relay that starts switched off. */
async function daemonBehindRelay(name: string) {
  const port = await freePort();
  const upstream = relay(port, tb.smtpPort);
  const work = mkdtempSync(path.join(dir, `${name}-`));
  const config = daemonConfig(work, [
    {
      id: 'alice',
      incoming: { protocol: 'pop3', port: tb.pop3Port, username: 'alice', password: 'alicepw' },
      outgoing: { port, username: 'alice', password: 'alicepw' },
    },
  ]);
  const d = await startDaemon(config);
  daemons.push(d);
  return { upstream, work, config, d };
}

function messageFile(name: string, subject: string, extra = ''): string {
  const file = path.join(dir, `${name}.eml`);
  writeFileSync(
    file,
    `From: alice@example.test\r\nTo: bob@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${name}@example.test>\r\n${extra}\r\nbody of ${name}\r\n`,
  );
  return file;
}

test('offline: accepted and queued; the upstream comes back; delivered and pulled with no user action', async () => {
  const { upstream, work, config, d } = await daemonBehindRelay('offline');
  for (let i = 1; i <= 3; i++) {
    const r = await smtplibSend({
      port: d.smtpPort,
      user: 'alice',
      pass: 'localpw',
      file: messageFile(`off${i}`, `offline ${i}`, 'Bcc: dave@example.test\r\n'),
      from: 'alice@example.test',
      to: ['bob@example.test', 'dave@example.test'],
    });
    assert.match(r.stdout, /DATA 250 OK: queued as/);
  }
  await d.waitLog(/upstream SMTP unreachable/);
  const st = await runCli(['--config', config, 'status', '--json']);
  assert.equal(st.code, 0, st.stderr);
  const report = JSON.parse(st.stdout);
  assert.equal(report.daemon.running, true);
  const alice = report.outbox.accounts.find((a: { account: string }) => a.account === 'alice');
  assert.equal(alice.queued, 3);
  assert.match(alice.lastError, /ECONNREFUSED|unreachable/);
  const list = await runCli(['--config', config, 'outbox', 'list']);
  assert.equal(list.stdout.trim().split('\n').length, 3, list.stdout);
  const human = await runCli(['--config', config, 'status']);
  assert.match(human.stdout, /^ {2}alice +3 +0 +in \d+m +upstream unreachable/m);
  const busy = await runCli(['--config', config, 'outbox', 'flush']);
  assert.equal(busy.code, 1, 'flushed through the daemon, but the upstream is still down');
  assert.match(busy.stdout, /^flush: 0 of 3 sent or finished, 3 still queued/);

  // Meanwhile a message arrives upstream; the schedule is yearly, so only "back online" pulls it.
  const pulledBefore = readCached(inboxDir(path.join(work, 'data'))).length;
  await tb.appendMessage('alice', Buffer.from('Subject: arrived while offline\r\n\r\nhello\r\n'));
  await upstream.up();
  try {
    await waitFor(
      () => tb.countUpstream('bob') >= 3 && tb.countUpstream('dave') >= 3,
      20_000,
      'delivery after reconnect',
    );
    const bob = await imaplibFetchAll(tb.imapPort, 'bob', 'bobpw');
    assert.deepEqual(bob.map((m) => /Subject: (.*)\r\n/.exec(m.body.toString())![1]).sort(), [
      'offline 1',
      'offline 2',
      'offline 3',
    ]);
    assert.ok(bob.every((m) => !/^bcc:/im.test(m.body.toString().split('\r\n\r\n')[0]!)));
    await waitFor(
      () => readCached(inboxDir(path.join(work, 'data'))).length > pulledBefore,
      20_000,
      'pull after reconnect',
    );
    assert.ok(readCached(inboxDir(path.join(work, 'data'))).some((b) => b.includes('arrived while offline')));
    await waitFor(
      async () =>
        JSON.parse((await runCli(['--config', config, 'status', '--json'])).stdout).outbox.accounts.every(
          (a: { queued: number }) => a.queued === 0,
        ),
      10_000,
      'empty outbox in status',
    );
    assert.ok(d.logs.some((l) => l.msg === 'upstream server reachable again'));
    // Postfix advertises its message_size_limit (50 MiB in the testbed); the daemon keeps it.
    const limitsFile = path.join(work, 'data', 'upstream-limits.json');
    await waitFor(() => existsSync(limitsFile), 10_000, 'learnt upstream SIZE');
    assert.deepEqual(JSON.parse(readFileSync(limitsFile, 'utf8')), { alice: 52_428_800 });
  } finally {
    assert.equal(await d.stop(), 0);
    await upstream.down();
  }
});

test('CLI without a daemon: outbox drop, flush (down, then up), retry of a failed entry', async () => {
  const { upstream, work, config, d } = await daemonBehindRelay('cli');
  const ids: string[] = [];
  for (const [name, to] of [
    ['keep', 'bob@example.test'],
    ['drop', 'bob@example.test'],
    ['bad', 'nobody@example.test'],
  ] as const) {
    const r = await smtplibSend({
      port: d.smtpPort,
      user: 'alice',
      pass: 'localpw',
      file: messageFile(`cli-${name}`, `cli ${name}`),
      from: 'alice@example.test',
      to: [to],
    });
    ids.push(/queued as (\S+)/.exec(r.stdout)![1]!);
  }
  assert.equal(await d.stop(), 0);
  const [keep, drop, bad] = ids as [string, string, string];

  assert.match((await runCli(['--config', config, 'outbox', 'drop', drop])).stdout, new RegExp(`${drop} dropped`));
  assert.equal((await runCli(['--config', config, 'outbox', 'drop', drop])).code, 1);
  const down = await runCli(['--config', config, 'outbox', 'flush']);
  assert.equal(down.code, 1);
  assert.match(down.stdout, /flush: 0 of 2 sent or finished, 2 still queued/);
  await upstream.up();
  try {
    const up = await runCli(['--config', config, 'outbox', 'flush']);
    assert.equal(up.code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /flush: 2 of 2 sent or finished, 0 still queued/);
    const list = await runCli(['--config', config, 'outbox', 'list']);
    assert.match(list.stdout, new RegExp(`^${bad} .*FAILED`, 'm'));
    assert.doesNotMatch(list.stdout, new RegExp(keep));
    const bounces = readCached(inboxDir(path.join(work, 'data'))).filter((b) => b.includes('multipart/report'));
    assert.equal(bounces.length, 1);
    const st = JSON.parse((await runCli(['--config', config, 'status', '--json'])).stdout);
    assert.equal(st.daemon.running, false);
    assert.deepEqual(
      st.outbox.accounts.map((a: { account: string; queued: number; failed: number }) => [
        a.account,
        a.queued,
        a.failed,
      ]),
      [['alice', 0, 1]],
    );
    assert.match((await runCli(['--config', config, 'status'])).stdout, /^ {2}alice +0 +1 +-/m);
    const retry = await runCli(['--config', config, 'outbox', 'retry', bad]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(
      (await runCli(['--config', config, 'outbox', 'list'])).stdout,
      new RegExp(`^${bad} .*next attempt`, 'm'),
    );
    assert.equal((await runCli(['--config', config, 'outbox', 'retry', 'zzzzzz-00000000'])).code, 1);
  } finally {
    await upstream.down();
  }
});
