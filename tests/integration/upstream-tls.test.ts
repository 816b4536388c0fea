/**
 * Upstream TLS: certificates are verified by default, and a failed check says how to
 * fix it, through `localpost check` and `localpost sync`, for each upstream library:
 * our POP3 client, imapflow (IMAP) and nodemailer (SMTP).
 *
 * - an unknown self-signed certificate (the testbed's real Dovecot and Postfix) fails and names
 *   `tlsCa`; with `tlsCa` pointing at it the same servers work;
 * - a certificate for another host name (a CA-signed certificate for wrong.example, served by a
 *   bare TLS listener here, with that CA trusted) fails and says to use a name it lists.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { runCli } from '../support/localpost.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let dir: string;
let wrongName: tls.Server;
let wrongPort: number;
let ca: string;

/** A CA and a certificate it signed for wrong.example only. */
function makeCerts(d: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(d, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=localpost test CA',
  ]);
  ssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('leaf.key'),
    '-out',
    f('leaf.csr'),
    '-subj',
    '/CN=wrong.example',
  ]);
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:wrong.example\n');
  ssl([
    'x509',
    '-req',
    '-in',
    f('leaf.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('leaf.pem'),
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
  ]);
  return { ca: f('ca.pem'), cert: f('leaf.pem'), key: f('leaf.key') };
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-tls-'));
  tb = await startTestbed();
  const c = makeCerts(dir);
  ca = c.ca;
  wrongName = tls.createServer({ cert: readFileSync(c.cert), key: readFileSync(c.key) }, (s) =>
    s.on('error', () => undefined),
  );
  wrongName.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => wrongName.listen(0, '127.0.0.1', () => r()));
  wrongPort = (wrongName.address() as net.AddressInfo).port;
});
after(async () => {
  await new Promise<void>((r) => wrongName?.close(() => r()));
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Acc {
  id: string;
  protocol: 'pop3' | 'imap';
  port: number;
  tlsCa?: string;
  smtp?: { port: number; tlsCa?: string };
}

function config(accounts: Acc[]): string {
  const lines = [
    `dataDir: ${path.join(dir, 'data')}`,
    'listen:',
    '  pop3: { port: 0, hosts: ["127.0.0.1"] }',
    '  smtp: { port: 0, hosts: ["127.0.0.1"] }',
    '  imap: { port: 0, hosts: ["127.0.0.1"] }',
    'accounts:',
  ];
  for (const a of accounts) {
    lines.push(
      `  - id: ${a.id}`,
      `    email: ${a.id}@example.test`,
      '    login: { password: localpw }',
      '    incoming:',
      `      protocol: ${a.protocol}`,
      '      host: 127.0.0.1',
      `      port: ${a.port}`,
      '      tls: implicit',
      ...(a.tlsCa ? [`      tlsCa: ${a.tlsCa}`] : []),
      '      username: alice',
      '      password: alicepw',
      '      schedule: "0 0 1 1 *"',
      '      idle: false',
    );
    if (a.smtp) {
      lines.push(
        '    outgoing:',
        '      host: 127.0.0.1',
        `      port: ${a.smtp.port}`,
        '      tls: implicit',
        ...(a.smtp.tlsCa ? [`      tlsCa: ${a.smtp.tlsCa}`] : []),
        '      username: alice',
        '      password: alicepw',
      );
    }
  }
  const file = path.join(dir, `config-${accounts[0]!.id}.yaml`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** The `check` line of one account and protocol. */
function line(out: string, id: string, proto: string): string {
  return (
    out.split('\n').find((l) => new RegExp(`^\\S+ +${id}: ${proto} `).test(l)) ?? `(no ${id} ${proto} line in ${out})`
  );
}

describe('upstream TLS', () => {
  test('a self-signed certificate is refused by default with a message naming tlsCa; with tlsCa it works (POP3, IMAP, SMTP)', async () => {
    const smtps = tb.hasPostfix; // Postfix runs only as root
    const cfg = config([
      {
        id: 'pop3-untrusted',
        protocol: 'pop3',
        port: tb.pop3sPort,
        ...(smtps ? { smtp: { port: tb.smtpsPort } } : {}),
      },
      { id: 'imap-untrusted', protocol: 'imap', port: tb.imapsPort },
      {
        id: 'trusted',
        protocol: 'pop3',
        port: tb.pop3sPort,
        tlsCa: tb.caCert,
        ...(smtps ? { smtp: { port: tb.smtpsPort, tlsCa: tb.caCert } } : {}),
      },
      { id: 'imap-trusted', protocol: 'imap', port: tb.imapsPort, tlsCa: tb.caCert },
    ]);
    const check = await runCli(['--config', cfg, 'check']);
    assert.equal(check.code, 1, check.stdout + check.stderr);
    for (const [id, proto] of [
      ['pop3-untrusted', 'pop3'],
      ...(smtps ? [['pop3-untrusted', 'smtp']] : []),
      ['imap-untrusted', 'imap'],
    ]) {
      const l = line(check.stdout, id!, proto!);
      assert.match(l, /^FAIL /, l);
      assert.match(l, /self[- ]signed/i, l);
      assert.match(l, /set tlsCa: \/path\/to\/ca\.pem/, l);
    }
    for (const [id, proto] of [['trusted', 'pop3'], ...(smtps ? [['trusted', 'smtp']] : []), ['imap-trusted', 'imap']])
      assert.match(line(check.stdout, id!, proto!), /^ok +.*login ok/);

    const sync = await runCli(['--config', cfg, 'sync']);
    assert.equal(sync.code, 1);
    assert.match(
      sync.stdout,
      /pop3-untrusted error: [^;]*self[- ]signed[^;]*; the server certificate is not trusted: .*set tlsCa/,
    );
    assert.match(
      sync.stdout,
      /imap-untrusted error: [^;]*self[- ]signed[^;]*; the server certificate is not trusted: .*set tlsCa/,
    );
    assert.match(sync.stdout, /trusted ok/);
  });

  test('a certificate for another host name is refused even with its CA trusted, and the message says so (POP3, IMAP, SMTP)', async () => {
    const cfg = config([
      { id: 'pop3-wrong', protocol: 'pop3', port: wrongPort, tlsCa: ca, smtp: { port: wrongPort, tlsCa: ca } },
      { id: 'imap-wrong', protocol: 'imap', port: wrongPort, tlsCa: ca },
    ]);
    const check = await runCli(['--config', cfg, 'check']);
    assert.equal(check.code, 1);
    for (const [id, proto] of [
      ['pop3-wrong', 'pop3'],
      ['pop3-wrong', 'smtp'],
      ['imap-wrong', 'imap'],
    ]) {
      const l = line(check.stdout, id!, proto!);
      assert.match(l, /^FAIL .*wrong\.example/, l);
      assert.match(l, /set host to a name the certificate lists \(tlsCa adds trust, not names\)/, l);
    }
    const sync = await runCli(['--config', cfg, 'sync']);
    assert.match(sync.stdout, /pop3-wrong error: .*certificate is for another host name/);
    assert.match(sync.stdout, /imap-wrong error: .*certificate is for another host name/);
  });
});
