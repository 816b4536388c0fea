/**
 * The CLI end to end against the testbed's Dovecot: `init` from flags → `check` →
 * `start` → `status --json` (accounts, listeners with their bound ports, outbox, pid) → `sync`
 * through the running daemon (the same one summary line and exit code as in-process) →
 * `outbox list|retry|drop|flush` through the control socket → SIGHUP with a broken config (the
 * old one keeps serving) → SIGTERM (socket and lock removed) → `status` from state.db; and
 * `localpost demo`: it starts, poplib logs in and reads the sample mail (one line starting with a
 * single dot), mail sent through it comes back at the next pull, the fetchmailrc its banner points
 * to reads it all, and SIGTERM stops it cleanly and removes its directory.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  LOOPBACK_LISTEN,
  runCli,
  spawnCli,
  spawnDaemon,
  statusJson as statusOf,
  waitFor,
} from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import { freePort, smtplibSend } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-e2e-'));
let tb: Testbed;
before(async () => {
  tb = await startTestbed();
  await tb.seed('alice', 5);
});
after(async () => {
  await tb?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const ENV = { LP_E2E_PASSWORD: 'alicepw' };
const portOf = (addr: string) => Number(/:(\d+)$/.exec(addr)![1]);

/** `status --json`, parsed. */
const statusJson = (configFile: string) => statusOf(configFile, ENV);

/** A message file for smtplib. */
function messageFile(name: string, from = 'alice@example.test'): string {
  const file = path.join(tmp, `${name}.eml`);
  writeFileSync(
    file,
    `From: ${from}\r\nTo: bob@example.test\r\nSubject: ${name}\r\nMessage-ID: <${name}@example.test>\r\n\r\nbody of ${name}\r\n`,
  );
  return file;
}

describe('localpost CLI end to end', () => {
  test('init → check → start → status → sync → outbox → SIGHUP (broken) → SIGTERM', async () => {
    const configFile = path.join(tmp, 'config', 'config.yaml');
    const dataDir = path.join(tmp, 'data');
    const deadSmtp = await freePort(); // nothing listens: sent mail stays queued
    const init = await runCli([
      '--config',
      configFile,
      'init',
      '--non-interactive',
      '--provider',
      'generic',
      '--email',
      'alice@example.test',
      '--protocol',
      'pop3',
      '--host',
      '127.0.0.1',
      '--port',
      String(tb.pop3Port),
      '--tls',
      'none',
      '--username',
      'alice',
      '--password-env',
      'LP_E2E_PASSWORD',
      '--smtp-host',
      '127.0.0.1',
      '--smtp-port',
      String(deadSmtp),
      '--smtp-tls',
      'none',
      '--id',
      'alice',
      '--local-user',
      'alice',
      '--local-password',
      'localpw',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(init.code, 0, init.stderr + init.stdout);
    // never the real default ports: test files run in parallel
    appendFileSync(configFile, LOOPBACK_LISTEN);

    const check = await runCli(['--config', configFile, 'check'], ENV);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /config .*: ok \(1 account\)/);
    assert.match(check.stdout, /^warn alice: smtp .*: unreachable: 127\.0\.0\.1:\d+ refused the connection/m);

    const { proc, out, exited } = spawnDaemon(configFile, ENV);
    try {
      await waitFor(() => out().includes('localpost started') || proc.exitCode !== null, 30_000, 'the daemon start');
      assert.equal(proc.exitCode, null, out());
      assert.ok(existsSync(path.join(dataDir, 'control.sock')));

      // status --json: live, from the daemon
      await waitFor(
        async () => (await statusJson(configFile)).accounts[0]?.lastPull !== undefined,
        20_000,
        'the first pull',
      );
      const s = await statusJson(configFile);
      assert.equal(s.version, 1);
      assert.equal(s.source, 'daemon');
      assert.deepEqual(s.daemon, { running: true, pid: proc.pid });
      assert.equal(s.dataDir, dataDir);
      const [alice] = s.accounts;
      assert.equal(alice!.id, 'alice');
      assert.equal(alice!.lastPull!.result, 'ok');
      assert.equal(alice!.messages, 5);
      assert.ok(alice!.bytes > 0);
      assert.equal(alice!.online, 'online');
      assert.equal(alice!.sends, true);
      assert.equal(alice!.outgoing, 'offline', 'nothing listens on its outgoing port');
      assert.equal(s.listeners.pop3.length, 1);
      const pop3Port = portOf(s.listeners.pop3[0]!);
      const smtpPort = portOf(s.listeners.smtp[0]!);
      assert.ok(pop3Port > 0 && smtpPort > 0, 'the bound ports, not the configured 0');
      assert.deepEqual(s.outbox.entries, []);
      assert.equal((await poplibFetchAll(pop3Port, 'alice', 'localpw')).length, 5);
      const human = await runCli(['--config', configFile, 'status'], ENV);
      assert.match(human.stdout, new RegExp(`daemon running \\(pid ${proc.pid}\\)`));
      assert.match(human.stdout, /^ {2}ACCOUNT +INCOMING +OUTGOING +MESSAGES /m);
      assert.match(human.stdout, /^ {2}alice +online +offline +5 /m);
      assert.match(human.stdout, new RegExp(`pop3  127\\.0\\.0\\.1:${pop3Port}`));

      // sync through the daemon: the same summary line; exit 1 for an unknown account
      await tb.seed('alice', 2);
      const sync = await runCli(['--config', configFile, 'sync'], ENV);
      assert.equal(sync.code, 0, sync.stderr);
      assert.match(sync.stdout, /^sync: alice ok, 2 new \([\d.]+ [KM]?B\) in [\d.]+s\n$/);
      const again = await runCli(['--config', configFile, 'sync', 'alice'], ENV);
      assert.match(again.stdout, /^sync: alice ok, 0 new/);
      const unknown = await runCli(['--config', configFile, 'sync', 'nobody'], ENV);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no such account: nobody/);
      assert.equal((await statusJson(configFile)).accounts[0]!.messages, 7);

      // the outbox through the control socket: a message queued for the dead upstream
      await smtplibSend({
        port: smtpPort,
        user: 'alice',
        pass: 'localpw',
        file: messageFile('queued'),
        from: 'alice@example.test',
        to: ['bob@example.test'],
      });
      let list = await runCli(['--config', configFile, 'outbox', 'list'], ENV);
      assert.equal(list.code, 0, list.stderr);
      const id = /^(\S+)\s+alice\s/m.exec(list.stdout)?.[1];
      assert.ok(id, list.stdout);
      const live = await statusJson(configFile);
      assert.equal(live.outbox.accounts.find((o) => o.account === 'alice')?.queued, 1);
      const retry = await runCli(['--config', configFile, 'outbox', 'retry', id], ENV);
      assert.equal(retry.code, 0, retry.stderr);
      assert.match(retry.stdout, new RegExp(`${id} queued: the daemon \\(pid ${proc.pid}\\)`));
      const flush = await runCli(['--config', configFile, 'outbox', 'flush'], ENV);
      assert.equal(flush.code, 1, 'the upstream is down: the message is still queued');
      assert.match(flush.stdout, /^flush: 0 of 1 sent or finished, 1 still queued/);
      const missing = await runCli(['--config', configFile, 'outbox', 'drop', 'no-such-id'], ENV);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no queued or failed outbox entry no-such-id/);
      const drop = await runCli(['--config', configFile, 'outbox', 'drop', id], ENV);
      assert.equal(drop.code, 0, drop.stderr);
      list = await runCli(['--config', configFile, 'outbox', 'list'], ENV);
      assert.doesNotMatch(list.stdout, new RegExp(`^${id}\\s+alice\\s.*next attempt`, 'm'));

      // SIGHUP with a broken config: rejected, the old config keeps serving
      const good = readFileSync(configFile, 'utf8');
      writeFileSync(configFile, 'accounts: []\n');
      proc.kill('SIGHUP');
      await waitFor(() => out().includes('config reload rejected'), 10_000, 'the rejection');
      assert.equal(proc.exitCode, null);
      writeFileSync(configFile, good); // for the CLI's own reading of the config
      assert.equal((await poplibFetchAll(pop3Port, 'alice', 'localpw')).length, 7, 'the old config still serves');
      assert.equal((await statusJson(configFile)).source, 'daemon');

      // SIGTERM: a clean stop, the socket and the pid file gone (the lock file stays, free)
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out());
      assert.equal(existsSync(path.join(dataDir, 'control.sock')), false);
      assert.equal(existsSync(path.join(dataDir, 'localpost.pid')), false);
      const after = await statusJson(configFile);
      assert.equal(after.source, 'state.db');
      assert.deepEqual(after.daemon, { running: false });
      assert.equal(after.accounts[0]!.messages, 7);
      assert.equal(after.accounts[0]!.online, 'online');
      assert.deepEqual(after.listeners.pop3, ['127.0.0.1:0'], 'the configured port');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  test('demo: starts, serves the sample mail to poplib, sends mail round, stops cleanly', async () => {
    const proc = spawnCli(['demo', '--pop3-port', '0', '--smtp-port', '0']);
    let out = '';
    let err = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      await waitFor(() => out.includes('Press Ctrl-C') || proc.exitCode !== null, 30_000, 'the demo start');
      assert.equal(proc.exitCode, null, out + err);
      const pop3Port = Number(/POP3\)\s+server localhost\s+port (\d+)\s+user demo\s+password demo/.exec(out)?.[1]);
      const smtpPort = Number(/SMTP\)\s+server localhost\s+port (\d+)\s+user demo\s+password demo/.exec(out)?.[1]);
      const dir = /everything in (\S+),/.exec(out)?.[1];
      const configFile = /--config (\S+) status/.exec(out)?.[1];
      assert.ok(pop3Port > 0 && smtpPort > 0 && dir && configFile, out);
      assert.ok(existsSync(dir!));

      const msgs = await poplibFetchAll(pop3Port, 'demo', 'demo');
      assert.equal(msgs.length, 3);
      assert.match(msgs[0]!.toString(), /Subject: Welcome to localpost/);
      // sample 3 shows dot-stuffing undone: one dot, as the text around it says
      const sample3 = msgs[2]!.toString();
      assert.match(sample3, /\r\n\.this line starts with one dot\r\n/);
      assert.doesNotMatch(sample3, /\r\n\.\./, 'no line starting with two dots');

      // a message sent through the demo is delivered upstream and comes back at the next pull
      // the From: header is the demo account's address: a foreign sender is refused with 553
      const sent = await smtplibSend({
        port: smtpPort,
        user: 'demo',
        pass: 'demo',
        file: messageFile('demo-roundtrip', 'demo@localpost.example'),
        from: 'demo@localpost.example',
        to: ['someone@example.test'],
      });
      assert.match(sent.stdout, /DATA 250/);
      // pulled back by this `sync` or by the demo's own pull, whichever comes first: count the
      // cached messages rather than expect "1 new" from the sync (4 in INBOX, and the copy in Sent)
      await waitFor(
        async () => {
          await runCli(['--config', configFile!, 'sync']);
          const st = await runCli(['--config', configFile!, 'status', '--json']);
          const accounts = (JSON.parse(st.stdout) as { accounts: Array<{ id: string; messages: number }> }).accounts;
          return accounts.find((a) => a.id === 'demo')?.messages === 5;
        },
        20_000,
        'the sent message pulled back',
      );
      assert.equal((await poplibFetchAll(pop3Port, 'demo', 'demo')).length, 4);

      // the banner's client-setup line: its fetchmailrc, saved as printed, reads all four
      const setup = /^ {2}(\S+) --config (\S+) client-setup fetchmail /m.exec(out);
      assert.equal(setup?.[2], configFile, out);
      const rcText = await runCli(['--config', configFile!, 'client-setup', 'fetchmail']);
      assert.equal(rcText.code, 0, rcText.stderr);
      assert.match(rcText.stdout, new RegExp(`^poll localhost protocol pop3 port ${pop3Port} auth password$`, 'm'));
      const fm = path.join(tmp, 'demo-fetchmail');
      mkdirSync(path.join(fm, 'mail'), { recursive: true });
      writeFileSync(path.join(fm, 'rc'), rcText.stdout.replaceAll('YOUR-LOCAL-PASSWORD', 'demo'), { mode: 0o600 });
      writeFileSync(path.join(fm, 'deliver.sh'), `#!/bin/sh\ncat > "${fm}/mail/$(date +%s%N).$$"\n`);
      chmodSync(path.join(fm, 'deliver.sh'), 0o755);
      const fetched = await new Promise<{ code: number; out: string }>((resolve) => {
        const args = ['-f', path.join(fm, 'rc'), '--mda', path.join(fm, 'deliver.sh'), '-i', path.join(fm, 'ids')];
        execFile('fetchmail', args, { env: { ...process.env, HOME: fm, FETCHMAILHOME: fm } }, (e, so, se) =>
          resolve({ code: e ? Number(e.code) : 0, out: so + se }),
        );
      });
      assert.equal(fetched.code, 0, fetched.out);
      const files = readdirSync(path.join(fm, 'mail'));
      assert.equal(files.length, 4, fetched.out);
      assert.ok(
        files.some((f) =>
          /\n\.this line starts with one dot\r?\n/.test(readFileSync(path.join(fm, 'mail', f), 'utf8')),
        ),
      );

      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out + err);
      assert.match(out, /localpost demo stopped; removed/);
      assert.equal(existsSync(dir!), false, 'the temporary directory is removed');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });
});
