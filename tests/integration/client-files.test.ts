/**
 * The configuration files `localpost client-setup` prints for fetchmail and msmtp work as they
 * are, against a running `localpost start` that pulls from the testbed's Dovecot and relays
 * through its Postfix: the output is saved verbatim (only the password placeholder replaced, as
 * the file tells the user to), fetchmail reads every message, and msmtp sends one that reaches
 * the upstream INBOX. Once plaintext, once with the certificate `localpost cert` makes (then
 * fetchmail must use STLS and msmtp STARTTLS, trusting and pinning that certificate).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, waitFor } from '../support/localpost.js';
import { type DaemonProcess, daemonConfig, freePort, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lp-client-files-'));
let tb: Testbed;
before(async () => {
  tb = await startTestbed({ postfix: true });
  assert.ok(tb.hasPostfix, 'Postfix runs (the testbed needs root)');
});
after(async () => {
  await tb?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Run a program; resolves with its exit code and output, never rejects on a non-zero exit. */
function run(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: o.env ?? process.env, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(o.input ?? '');
  });
}

/** `client-setup CLIENT` saved as the file tells: mode 0600, the placeholder replaced by the password. */
async function savedClientFile(configFile: string, client: string, file: string): Promise<string> {
  const r = await runCli(['--config', configFile, 'client-setup', client]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /YOUR-LOCAL-PASSWORD/, 'a placeholder stands for the password');
  assert.doesNotMatch(r.stdout, /localpw/, 'the password itself is not printed');
  writeFileSync(file, r.stdout.replaceAll('YOUR-LOCAL-PASSWORD', 'localpw'), { mode: 0o600 });
  return r.stdout;
}

for (const withCert of [false, true]) {
  describe(withCert ? 'with the local certificate' : 'plaintext on loopback', () => {
    const dir = path.join(root, withCert ? 'tls' : 'plain');
    let daemon: DaemonProcess | undefined;
    let configFile: string;
    before(async () => {
      mkdirSync(dir);
      await tb.seed('alice', 3, 2048, { reset: true });
      configFile = daemonConfig(
        dir,
        [
          {
            id: 'alice',
            incoming: { protocol: 'pop3', port: tb.pop3Port, username: 'alice', password: 'alicepw' },
            outgoing: { port: tb.smtpPort, tls: 'starttls', tlsCa: tb.caCert, username: 'alice', password: 'alicepw' },
          },
        ],
        { ports: { pop3: await freePort(), smtp: await freePort() } },
      );
      if (withCert) {
        const c = await runCli(['--config', configFile, 'cert']);
        assert.equal(c.code, 0, c.stderr);
        assert.match(c.stdout, /wrote a private certificate for localhost/);
        const key = readdirSync(path.join(dir, 'data', 'tls')).find((f) => f.includes('key'));
        assert.ok(key);
        assert.equal(statSync(path.join(dir, 'data', 'tls', key)).mode & 0o777, 0o600, 'the key is mode 0600');
      }
      daemon = await startDaemon(configFile);
    });
    after(async () => {
      await daemon?.stop();
    });

    test('fetchmail reads every message with the printed rc file', async () => {
      const rc = path.join(dir, 'fetchmailrc');
      const text = await savedClientFile(configFile, 'fetchmail', rc);
      if (withCert) {
        assert.match(text, /sslcertfile "[^"]+localhost-cert\.pem"/);
        assert.match(text, /sslfingerprint "([0-9A-F]{2}:){15}[0-9A-F]{2}"/);
      } else assert.match(text, /sslproto ''/);
      const mail = path.join(dir, 'mail');
      mkdirSync(mail);
      // delivery is the user's business (a local MTA on port 25 by default): the test hands each
      // message to a script, on the command line, leaving the rc file as printed
      const deliver = path.join(dir, 'deliver.sh');
      writeFileSync(deliver, `#!/bin/sh\ncat > "${mail}/$(date +%s%N).$$"\n`);
      chmodSync(deliver, 0o755);
      const r = await run('fetchmail', ['-v', '-f', rc, '--mda', deliver, '-i', path.join(dir, 'fetchids')], {
        env: { ...process.env, HOME: dir, FETCHMAILHOME: dir },
      });
      assert.equal(r.code, 0, r.out);
      if (withCert) assert.match(r.out, /POP3> STLS/, r.out);
      else assert.doesNotMatch(r.out, /POP3> STLS/, r.out);
      const got = readdirSync(mail).map((f) => readFileSync(path.join(mail, f), 'latin1'));
      assert.equal(got.length, 3, r.out);
      for (const m of got) assert.match(m, /^Subject: /m);
    });

    test('msmtp sends a message that reaches the upstream with the printed msmtprc', async () => {
      const rc = path.join(dir, 'msmtprc');
      const text = await savedClientFile(configFile, 'msmtp', rc);
      assert.match(text, /^auth plain$/m);
      assert.match(text, withCert ? /^tls_trust_file .+localhost-cert\.pem$/m : /^tls off$/m);
      const before = tb.countUpstream('alice');
      const subject = `msmtp ${withCert ? 'tls' : 'plain'} ${process.pid}`;
      const r = await run('msmtp', ['-C', rc, '-v', '-t'], {
        input: `From: alice@example.test\nTo: alice@example.test\nSubject: ${subject}\n\nsent by msmtp\n`,
      });
      assert.equal(r.code, 0, r.out);
      if (withCert) assert.match(r.out, /STARTTLS/, r.out);
      else assert.doesNotMatch(r.out, /--> STARTTLS/, r.out);
      await waitFor(() => tb.countUpstream('alice') === before + 1, 30_000, 'Postfix delivered the message upstream');
    });
  });
}
