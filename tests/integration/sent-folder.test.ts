/**
 * Mail sent through the local SMTP server is filed in the account's Sent folder, which every
 * client of the local IMAP server sees (src/daemon/outgoing.ts `sentCopy`), through the real
 * daemon, Postfix and Dovecot of the testbed:
 * - an IMAP account with `outgoing.saveSent: Sent`: the copy is in the local Sent at once and
 *   reaches Dovecot's Sent through the change journal, exactly once; a pull of Sent afterwards
 *   recognises it (the journal gave it its upstream key) instead of downloading a second copy;
 * - a POP3 account: the copy is in its local Sent folder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, waitFor } from '../support/localpost.js';
import { imaplibFetchAll, runPython } from '../support/python.js';
import { type DaemonProcess, daemonConfig, freePort, smtplibSend, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let daemon: DaemonProcess | undefined;
let dir: string;
let config: string;
let imapPort: number;
before(async () => {
  tb = await startTestbed({ postfix: true, env: { EXTRA_USERS: 'carol:carolpw' } });
  assert.ok(tb.hasPostfix, 'Postfix runs (the testbed needs root)');
  // the provider's Sent folder exists before the first pull, as at any real provider
  await runPython(
    "import imaplib, sys\nm = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\nm.login('alice', 'alicepw')\nm.create('Sent')\nm.logout()",
    [String(tb.imapPort)],
  );
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-sent-'));
  imapPort = await freePort();
  const outgoing = (user: string) => ({
    host: 'localhost',
    port: tb.smtpPort,
    tls: 'starttls' as const,
    tlsCa: tb.caCert,
    username: user,
    password: `${user}pw`,
  });
  config = daemonConfig(
    dir,
    [
      {
        id: 'alice',
        incoming: {
          protocol: 'imap',
          port: tb.imapPort,
          username: 'alice',
          password: 'alicepw',
          folders: ['INBOX', 'Sent'],
        },
        outgoing: { ...outgoing('alice'), saveSent: 'Sent' },
      },
      {
        id: 'bob',
        incoming: { protocol: 'pop3', port: tb.pop3Port, username: 'bob', password: 'bobpw' },
        outgoing: outgoing('bob'),
      },
    ],
    { retry: '1s', ports: { pop3: 0, smtp: 0, imap: imapPort } },
  );
  daemon = await startDaemon(config);
});
after(async () => {
  await daemon?.stop();
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function send(user: string, id: string): Promise<void> {
  const file = path.join(dir, `${id}.eml`);
  writeFileSync(
    file,
    `From: ${user}@example.test\r\nTo: carol@example.test\r\nSubject: ${id}\r\nMessage-ID: <${id}@example.test>\r\n\r\nbody of ${id}\r\n`,
  );
  await smtplibSend({
    port: daemon!.smtpPort,
    user,
    pass: 'localpw',
    file,
    from: `${user}@example.test`,
    to: ['carol@example.test'],
  });
}

const localSent = (user: string) => imaplibFetchAll(imapPort, user, 'localpw', 'Sent');

test('IMAP account with saveSent: one copy in the local Sent, one upstream through the journal, none downloaded again', async () => {
  await send('alice', 'sent-imap-1');
  await waitFor(() => tb.countUpstream('carol') >= 1, 20_000, 'delivery to carol');
  await waitFor(async () => (await localSent('alice')).length === 1, 20_000, 'the local Sent copy');
  await waitFor(() => tb.countUpstream('alice', 'Sent') === 1, 20_000, "the copy in Dovecot's Sent");
  const local = (await localSent('alice'))[0]!.body.toString('latin1');
  assert.match(local, /^Message-ID: <sent-imap-1@example\.test>\r$/m);
  // a pull of Sent: the copy is known under its upstream key, nothing is downloaded twice
  const r = await runCli(['--config', config, 'sync', 'alice']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await localSent('alice')).length, 1, 'still one copy in the local Sent after a pull');
  assert.equal(tb.countUpstream('alice', 'Sent'), 1, "still one copy in Dovecot's Sent");
  const j = await runCli(['--config', config, 'journal']);
  assert.equal(j.code, 0, j.stderr);
  assert.doesNotMatch(j.stdout, /append/i, 'the journal is drained');
});

test('POP3 account: the copy is filed in its local Sent folder', async () => {
  await send('bob', 'sent-pop3-1');
  await waitFor(async () => (await localSent('bob')).length === 1, 20_000, "bob's local Sent copy");
  assert.match((await localSent('bob'))[0]!.body.toString('latin1'), /^Subject: sent-pop3-1\r$/m);
});
