/**
 * `localpost client-setup`: the list of clients, and for each client the server, ports and
 * user names taken from the config (defaults without one), the SPA / SSL / SMTP-auth advice,
 * the "leave a copy on server" explanation with each account's settings, and no password.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CLIENT_NAMES, clientSetupText, setupInfo } from '../../src/cli/client-setup.js';
import { parseConfigText } from '../../src/config/load.js';
import { makeConfig, runCli } from '../support/localpost.js';

const two = makeConfig(
  [
    { id: 'home', protocol: 'pop3', port: 110, keepOnServer: false },
    { id: 'work', protocol: 'imap', port: 143 },
  ],
  'listen:\n  pop3: { port: 2110 }\n  smtp: { port: 2025 }\n',
);
// the default listen ports (makeConfig otherwise picks free ones for daemons under test)
const one = makeConfig([{ id: 'solo', protocol: 'pop3', port: 110 }], 'listen: {}\n');
after(() => {
  two.cleanup();
  one.cleanup();
});

describe('localpost client-setup', () => {
  test('without an argument it lists the clients', async () => {
    const r = await runCli(['client-setup']);
    assert.equal(r.code, 0, r.stderr);
    for (const c of ['outlook-express', 'windows-mail', 'thunderbird', 'apple-mail', 'mutt'])
      assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
    assert.deepEqual(CLIENT_NAMES, ['outlook-express', 'windows-mail', 'thunderbird', 'apple-mail', 'mutt']);
  });

  test('Outlook Express: ports and user name from the config, SPA and SSL off, SMTP auth on', async () => {
    const r = await runCli(['--config', one.configFile, 'client-setup', 'outlook-express']);
    assert.equal(r.code, 0, r.stderr);
    const t = r.stdout;
    assert.match(t, /Incoming \(POP3\)\s+localhost, port 1110, no SSL/);
    assert.match(
      t,
      /Outgoing \(SMTP\)\s+localhost, port 1025, no SSL\/TLS, authentication ON with the same name and password/,
    );
    assert.match(t, /User name\s+solo\s+\(solo@example\.test\)/);
    assert.match(t, /Account name: solo\./);
    assert.match(t, /"Log on using Secure Password Authentication \(SPA\)": OFF/);
    assert.match(t, /"My server requires authentication": ON/);
    assert.match(t, /both "This server requires a secure connection \(SSL\)" boxes OFF/);
    assert.match(t, /Leave a copy on server/);
    assert.match(t, /solo \(127\.0\.0\.1\): keepOnServer: true, onLocalDelete: keep-upstream/);
    assert.doesNotMatch(t, /localpw|alicepw/, 'no password is printed');
  });

  test("every client, several accounts: each user name, the configured ports, each account's settings", () => {
    const info = setupInfo(parseConfigText(readFileSync(two.configFile, 'utf8')));
    for (const client of CLIENT_NAMES) {
      const t = clientSetupText(client, info);
      assert.match(t, /localhost/, client);
      assert.match(t, /2110/, client);
      assert.match(t, /2025/, client);
      assert.match(t, /^ {4}home +home@example\.test {2}\(receive only\)$/m, client);
      assert.match(t, /^ {4}work +work@example\.test {2}\(receive only\)$/m, client);
      assert.match(t, /home \(127\.0\.0\.1\): keepOnServer: false, onLocalDelete: keep-upstream/, client);
      assert.match(t, /work \(127\.0\.0\.1\): onLocalDelete: keep-upstream/, client);
      assert.match(t, /SPA|Normal password|Password|pop_pass/, client);
      assert.doesNotMatch(t, /localpw|alicepw/, client);
    }
    const mutt = clientSetupText('mutt', info);
    assert.match(mutt, /set smtp_url += "smtp:\/\/<user name from the list above>@localhost:2025\/"/);
  });

  test('without a config file it shows the defaults and says so', async () => {
    const r = await runCli(['--config', path.join(one.dir, 'missing.yaml'), 'client-setup', 'thunderbird']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No config file yet/);
    assert.match(r.stdout, /port 1110, Connection security None, Authentication "Normal password"/);
    assert.match(r.stdout, /port 1025/);
  });

  test('an unknown client exits 1 naming the known ones; a broken config exits 78', async () => {
    const r = await runCli(['--config', one.configFile, 'client-setup', 'eudora']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown client "eudora"; known: outlook-express, windows-mail/);
    const broken = path.join(one.dir, 'broken.yaml');
    writeFileSync(broken, 'accounts: []\n');
    const b = await runCli(['--config', broken, 'client-setup', 'mutt']);
    assert.equal(b.code, 78);
    assert.match(b.stderr, /accounts: needs at least one account/);
  });
});
