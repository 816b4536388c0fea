/**
 * `localpost client-setup`: the list of clients, and for each client the server, ports and
 * user names taken from the config (defaults without one), the SPA / SSL / SMTP-auth advice,
 * the "leave a copy on server" explanation with each account's settings and the client's own
 * way of passing deletions on, and no password. fetchmail, msmtp and mutt get a whole
 * configuration file (every other line a comment), with the local certificate trusted and pinned
 * when the listeners offer it. (tests/integration/client-files.test.ts runs the real fetchmail
 * and msmtp with them.)
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { forPop3 } from '../../src/cli/client-imap.js';
import { forAccount, type SetupInfo, setupInfo } from '../../src/cli/client-info.js';
import { CLIENT_NAMES, clientSetupText } from '../../src/cli/client-setup.js';
import { parseConfigText } from '../../src/config/load.js';
import type { CertInfo } from '../../src/config/local-cert.js';
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

const ALL = [
  'outlook-express',
  'windows-mail',
  'outlook',
  'thunderbird',
  'apple-mail',
  'eudora',
  'k9',
  'generic',
  'mutt',
  'fetchmail',
  'msmtp',
];
/** Clients set up only for IMAP. */
const IMAP_ONLY = ['k9', 'generic'];
const FILES = ['fetchmail', 'msmtp', 'mutt'];
const DIALOGS = ALL.filter((c) => !FILES.includes(c) && !IMAP_ONLY.includes(c));

const CERT: CertInfo = {
  file: '/data/tls/localhost-cert.pem',
  sha256: Array.from({ length: 32 }, (_, n) => (n + 16).toString(16).toUpperCase()).join(':'),
  md5: Array.from({ length: 16 }, (_, n) => (n + 160).toString(16).toUpperCase()).join(':'),
  validTo: new Date('2030-01-01T00:00:00Z'),
  altNames: 'DNS:localhost, IP Address:127.0.0.1',
};

/** A config with one account that sends, as `setupInfo` reads it; `--pop3` unless `imap`. */
function sender(listen = 'listen: {}\n', cert?: CertInfo, imap = false): SetupInfo {
  const text = `${listen}accounts:
  - id: solo
    email: solo@example.test
    login: { username: solo-user, passwordHash: "scrypt$x" }
    incoming: { protocol: pop3, host: pop.example.test, username: u, password: p }
    outgoing: { host: smtp.example.test, username: u, password: p }
`;
  const info = setupInfo(parseConfigText(text), cert);
  return imap ? info : forPop3(info);
}

/** The lines of a file that are not comments or blank. */
const active = (t: string) => t.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));

describe('localpost client-setup', () => {
  test('without an argument it lists every client', async () => {
    const r = await runCli(['client-setup']);
    assert.equal(r.code, 0, r.stderr);
    for (const c of ALL) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
    assert.deepEqual(CLIENT_NAMES, ALL);
    assert.match(r.stdout, /^ {2}outlook +Outlook 2010 to 2021 and Microsoft 365/m);
    assert.match(r.stdout, /^ {2}eudora +Eudora/m);
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
    assert.match(t, /Remove from server when deleted from 'Deleted Items'/);
    assert.match(t, /solo \(127\.0\.0\.1\): keepOnServer: true, onLocalDelete: keep-upstream/);
    assert.doesNotMatch(t, /localpw|alicepw/, 'no password is printed');
  });

  test("every client, several accounts: each user name, the configured ports, each account's settings", () => {
    const info = forPop3(setupInfo(parseConfigText(readFileSync(two.configFile, 'utf8'))));
    for (const client of CLIENT_NAMES.filter((c) => !IMAP_ONLY.includes(c))) {
      const t = clientSetupText(client, info);
      assert.match(t, /localhost/, client);
      if (client !== 'msmtp') assert.match(t, /2110/, client);
      if (client !== 'fetchmail') assert.match(t, /2025/, client);
      assert.doesNotMatch(t, /localpw|alicepw/, client);
      if (client === 'msmtp') continue; // sends only: no "leave a copy"
      assert.match(t, /home \(127\.0\.0\.1\): keepOnServer: false, onLocalDelete: keep-upstream/, client);
      assert.match(t, /work \(127\.0\.0\.1\): onLocalDelete: keep-upstream/, client);
    }
    for (const client of DIALOGS) {
      const t = clientSetupText(client, info);
      assert.match(t, /^ {4}home +home@example\.test {2}\(receive only\)$/m, client);
      assert.match(t, /^ {4}work +work@example\.test {2}\(receive only\)$/m, client);
      assert.match(t, /SPA|Normal password|Password/, client);
    }
    const fetchmail = clientSetupText('fetchmail', info);
    assert.match(fetchmail, /^ {4}user "home" password "YOUR-LOCAL-PASSWORD-FOR-home"$/m);
    assert.match(fetchmail, /^ {4}user "work" password "YOUR-LOCAL-PASSWORD-FOR-work"$/m);
    const mutt = clientSetupText('mutt', info);
    assert.match(mutt, /^set pop_host += "pop:\/\/home@localhost:2110"$/m);
    assert.match(mutt, /^# For account home; another: localpost client-setup mutt --account ID \(ids: home, work\)/m);
    assert.match(clientSetupText('msmtp', info), /^# No account of this config sends mail/m);
  });

  test('the "deleted from Deleted Items" box only for the clients that have it', () => {
    const info = sender();
    const box = /deleted from 'Deleted Items'/i;
    for (const c of ['outlook-express', 'windows-mail', 'outlook']) assert.match(clientSetupText(c, info), box, c);
    for (const c of ['thunderbird', 'apple-mail', 'eudora', 'mutt', 'fetchmail', 'msmtp'])
      assert.doesNotMatch(clientSetupText(c, info), box, c);
    assert.match(clientSetupText('thunderbird', info), /"Until I delete them"/);
    assert.match(clientSetupText('apple-mail', info), /"When moved from Inbox"/);
    assert.match(clientSetupText('eudora', info), /"Delete from server when emptied from Trash"/);
  });

  test('Apple Mail asks for name, address and password, each in its own words', () => {
    const t = clientSetupText('apple-mail', sender());
    assert.match(
      t,
      /^1\. Mail > Add Account > Other Mail Account\. Name: your own\. Email Address: your own\. Password: the local password/m,
    );
  });

  test('Eudora and Outlook: where their ports are set, SPA off, plain passwords', () => {
    const eudora = clientSetupText('eudora', sender());
    assert.match(eudora, /Tools > Options > Ports: POP 1110, SMTP 1025/);
    assert.match(eudora, /POPPort=1110 and SMTPPort=1025 under \[Settings\] in Eudora\.ini/);
    assert.match(eudora, /Login Name: solo-user/);
    assert.match(eudora, /Authentication style: Passwords/);
    const outlook = clientSetupText('outlook', sender());
    assert.match(outlook, /User Name: solo-user/);
    assert.match(outlook, /"Require logon using Secure Password Authentication \(SPA\)": OFF/);
    assert.match(outlook, /Incoming server \(POP3\) 1110/);
    assert.match(outlook, /Outgoing server \(SMTP\) 1025, "Use the following type of encrypted connection": None/);
    assert.match(outlook, /"My outgoing server \(SMTP\) requires authentication": ON/);
  });

  test('mutt: a config block whose lines are not numbered', () => {
    const t = clientSetupText('mutt', sender());
    assert.doesNotMatch(t, /^\s*\d+\.\s/m, 'no numbered line to copy by mistake');
    for (const l of active(t)) assert.match(l, /^set [a-z_]+ += /, l);
    assert.match(t, /^set pop_host += "pop:\/\/solo-user@localhost:1110"$/m);
    assert.match(t, /^set smtp_url += "smtp:\/\/solo-user@localhost:1025\/"$/m);
    assert.match(t, /^set from += "solo@example\.test"$/m);
    assert.match(t, /^set ssl_starttls += no$/m);
    assert.match(t, /^# set pop_pass += "YOUR-LOCAL-PASSWORD"$/m);
  });

  test("fetchmail: a whole rc file, plaintext with sslproto '', where to save it and its mode", () => {
    const t = clientSetupText('fetchmail', sender('listen: { pop3: { port: 3110 } }\n'));
    assert.deepEqual(active(t), [
      'poll localhost protocol pop3 port 3110 auth password',
      '    user "solo-user" password "YOUR-LOCAL-PASSWORD"',
      "        sslproto ''",
    ]);
    assert.match(t, /^# fetchmail through localpost: this whole output is your ~\/\.fetchmailrc/m);
    assert.match(t, /^# {3}\(umask 077; localpost client-setup fetchmail > ~\/\.fetchmailrc\)$/m);
    assert.match(t, /^# then replace YOUR-LOCAL-PASSWORD below with your local password/m);
    assert.match(t, /^ {8}# keep /m);
  });

  test('msmtp: auth plain and tls off on loopback, one account per sending account', () => {
    const t = clientSetupText('msmtp', sender('listen: { smtp: { port: 3025 } }\n'));
    assert.deepEqual(active(t), [
      'defaults',
      'host localhost',
      'port 3025',
      'auth plain',
      'tls off',
      'account solo-user',
      'from solo@example.test',
      'user solo-user',
      'password YOUR-LOCAL-PASSWORD',
      'account default : solo-user',
    ]);
    assert.match(t, /^# {3}\(umask 077; localpost client-setup msmtp > ~\/\.msmtprc\)$/m);
  });

  test('with the local certificate: fetchmail and msmtp trust and pin it, dialogs show its fingerprint', () => {
    const info = sender('listen: {}\n', CERT);
    const fetchmail = active(clientSetupText('fetchmail', info));
    assert.ok(
      fetchmail.includes(`        sslproto 'TLS1.2+' sslcertck sslcertfile "${CERT.file}"`),
      fetchmail.join('\n'),
    );
    assert.ok(fetchmail.includes(`        sslfingerprint "${CERT.md5}"`));
    const msmtp = clientSetupText('msmtp', info);
    for (const l of ['tls on', 'tls_starttls on', `tls_trust_file ${CERT.file}`])
      assert.ok(active(msmtp).includes(l), l);
    assert.match(msmtp, new RegExp(`^# tls_fingerprint ${CERT.sha256}$`, 'm'));
    const tb = clientSetupText('thunderbird', info);
    assert.match(tb, /POP3 \(STLS\), IMAP \(STARTTLS\) and SMTP \(STARTTLS\)/);
    assert.ok(tb.includes(CERT.sha256));
    assert.match(tb, /Connection security None/, 'the plaintext settings stay');
    // a listener with tls: off does not offer it
    const off = sender('listen: { pop3: { tls: off } }\n', CERT);
    assert.ok(active(clientSetupText('fetchmail', off)).includes("        sslproto ''"));
    assert.ok(active(clientSetupText('msmtp', off)).includes(`tls_trust_file ${CERT.file}`));
    assert.match(
      clientSetupText('thunderbird', off),
      /on the same ports, IMAP \(STARTTLS\) and SMTP \(STARTTLS\), with/,
    );
  });

  test('IMAP for the clients that speak it: Thunderbird, Apple Mail, Outlook, Live Mail, mutt, K-9, any other', () => {
    const info = sender('listen: { imap: { port: 2143 } }\n', undefined, true);
    const tb = clientSetupText('thunderbird', info);
    assert.match(tb, /^ {2}Incoming \(IMAP\) {3}localhost, port 2143, no SSL\/TLS$/m);
    assert.match(
      tb,
      /Incoming: IMAP, hostname localhost, port 2143, Connection security None, Authentication "Normal password", username solo-user\./,
    );
    assert.match(tb, /Outgoing: SMTP, hostname localhost, port 1025/);
    assert.match(tb, /untick "Place a copy in"/);
    assert.match(tb, /localpost journal/);
    assert.match(tb, /POP3 instead \(port 1110, same name and password\): localpost client-setup thunderbird --pop3/);
    assert.doesNotMatch(tb, /Leave messages on server/);
    assert.match(clientSetupText('apple-mail', info), /Account Type: IMAP\. User name: solo-user/);
    assert.match(clientSetupText('outlook', info), /Incoming server \(IMAP\) 2143, encrypted connection None/);
    assert.match(clientSetupText('windows-mail', info), /Incoming server type: IMAP, server localhost, port 2143/);
    // legacy clients keep POP3
    assert.match(clientSetupText('outlook-express', info), /Incoming \(POP3\)\s+localhost, port 1110/);
    assert.match(clientSetupText('eudora', info), /POP 1110/);
    const mutt = clientSetupText('mutt', info);
    for (const l of active(mutt)) assert.match(l, /^set [a-z_]+ += /, l);
    assert.match(mutt, /^set folder += "imap:\/\/solo-user@localhost:2143\/"$/m);
    assert.match(mutt, /^set record += ""$/m);
    assert.match(mutt, /^# set imap_pass += "YOUR-LOCAL-PASSWORD"$/m);
    assert.match(clientSetupText('k9', info), /Security: STARTTLS, port 2143/);
    assert.match(clientSetupText('generic', info), /IMAP, server localhost, port 2143/);
    const off = sender('listen: { imap: { enabled: false } }\n', undefined, true);
    assert.match(clientSetupText('thunderbird', off), /Incoming: POP3, hostname localhost, port 1110/);
    assert.match(clientSetupText('k9', off), /the local IMAP listener is off/);
  });

  test('an expiring certificate is pointed out', () => {
    const info = sender('listen: {}\n', { ...CERT, validTo: new Date('2030-01-10T00:00:00Z') });
    const now = new Date('2030-01-01T00:00:00Z');
    assert.match(
      clientSetupText('fetchmail', info, now),
      /^# The local certificate expires in 9 days: run `localpost cert --renew`/m,
    );
    assert.match(clientSetupText('outlook', info, new Date('2031-01-01')), /The local certificate has expired/);
    assert.doesNotMatch(clientSetupText('msmtp', info, new Date('2029-01-01')), /expire/);
  });

  test('--account picks one account of several', async () => {
    const info = setupInfo(parseConfigText(readFileSync(two.configFile, 'utf8')));
    const work = forAccount(info, 'work');
    assert.deepEqual(
      work?.accounts.map((a) => a.id),
      ['work'],
    );
    assert.equal(forAccount(info, 'nope'), undefined);
    const r = await runCli(['--config', two.configFile, 'client-setup', 'fetchmail', '--account', 'work']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {4}user "work" password "YOUR-LOCAL-PASSWORD"$/m);
    assert.doesNotMatch(r.stdout, /"home"/);
    const bad = await runCli(['--config', two.configFile, 'client-setup', 'mutt', '--account', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no such account: nope \(configured: home, work\)/);
  });

  test('without a config file it shows the defaults and says so', async () => {
    const r = await runCli(['--config', path.join(one.dir, 'missing.yaml'), 'client-setup', 'thunderbird']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No config file yet/);
    assert.match(r.stdout, /Incoming: IMAP, hostname localhost, port 1143, Connection security None/);
    const pop = await runCli(['--config', path.join(one.dir, 'missing.yaml'), 'client-setup', 'thunderbird', '--pop3']);
    assert.match(pop.stdout, /port 1110, Connection security None, Authentication "Normal password"/);
    assert.match(r.stdout, /port 1025/);
    const f = await runCli(['--config', path.join(one.dir, 'missing.yaml'), 'client-setup', 'fetchmail']);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /^# No config file yet/);
  });

  test('an unknown client exits 1 naming the known ones; a broken config exits 78', async () => {
    const r = await runCli(['--config', one.configFile, 'client-setup', 'pine']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown client "pine"; known: outlook-express, windows-mail, outlook, thunderbird/);
    const broken = path.join(one.dir, 'broken.yaml');
    writeFileSync(broken, 'accounts: []\n');
    const b = await runCli(['--config', broken, 'client-setup', 'mutt']);
    assert.equal(b.code, 78);
    assert.match(b.stderr, /accounts: needs at least one account/);
  });
});
