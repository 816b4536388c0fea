/**
 * Logins the local listeners refuse, driven by Python's smtplib and poplib:
 * - SMTP AUTH PLAIN with an authorization identity other than the user name (535 with the reason);
 * - with a listener on a non-loopback address (`allowRemote`), plaintext AUTH from another machine
 *   (SMTP before STARTTLS: 538; POP3 USER and AUTH before STLS: -ERR, and CAPA offers no login),
 *   while the same client logs in after STARTTLS/STLS, and loopback clients in clear as before.
 *   The "other machine" is this machine's own non-loopback address, as the client's source.
 * And that machine's share of connections (`maxConnectionsPerAddress`, src/listeners/connection-slots.ts):
 * its idle connections beyond the share push out its own oldest ones, not loopback clients.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../support/localpost.js';
import { connected, type Pop3Fixture, startPop3 } from '../support/pop3-server.js';
import { PYTHON } from '../support/python.js';
import { type SmtpFixture, selfSignedCert, startSmtp } from '../support/smtp.js';

/** This machine's first non-loopback IPv4 address, if any. */
const remote = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
const noRemote = remote ? false : 'this machine has no non-loopback IPv4 address to connect from';

function python(script: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(PYTHON, ['-c', script, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`python failed: ${err.message}\n${stderr}`)) : res(stdout),
    );
  });
}

/** smtplib: EHLO, optional STARTTLS, a raw `AUTH PLAIN <authzid NUL user NUL pass>`; prints the reply code and text. */
const SMTP_AUTH = String.raw`
import smtplib, ssl, sys, base64
host, port, authzid, user, pw, starttls = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo('client.example')
if starttls == 'yes':
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo('client.example')
token = base64.b64encode(('%s\0%s\0%s' % (authzid, user, pw)).encode()).decode()
code, text = s.docmd('AUTH', 'PLAIN ' + token)
print(code, text.decode())
s.quit()
`;

/** poplib: optional STLS, CAPA, then USER/PASS; prints CAPA and the outcome. */
const POP_LOGIN = `
import poplib, ssl, sys
host, port, user, pw, stls = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
p = poplib.POP3(host, port, timeout=30)
if stls == 'yes':
    p.stls(context=ssl._create_unverified_context())
print('CAPA', ' '.join(sorted(p.capa().keys())))
try:
    p.user(user); p.pass_(pw)
    print('LOGIN ok', p.stat()[0])
except poplib.error_proto as e:
    print('LOGIN refused', e.args[0].decode())
p.quit()
`;

let cert: ReturnType<typeof selfSignedCert>;
let smtp: SmtpFixture;
let pop3: Pop3Fixture;
before(async () => {
  cert = selfSignedCert();
  const hosts = remote ? ['127.0.0.1', remote] : ['127.0.0.1'];
  smtp = await startSmtp({ hosts, tls: { cert: cert.cert, key: cert.key } });
  pop3 = await startPop3({ server: { hosts, tls: { cert: cert.cert, key: cert.key } } });
});
after(async () => {
  await smtp?.close();
  await pop3?.close();
  rmSync(cert.dir, { recursive: true, force: true });
});

describe('SMTP AUTH PLAIN authorization identity', () => {
  test('an authzid other than the user name is refused with 535 and the reason', async () => {
    const out = await python(SMTP_AUTH, ['127.0.0.1', String(smtp.port), 'bob', 'alice', 'alicepw-local', 'no']);
    assert.match(out, /^535 .*authorization identity differs from the user name/);
  });

  test('an authzid equal to the user name, or none, is accepted', async () => {
    for (const authzid of ['alice', '']) {
      const out = await python(SMTP_AUTH, ['127.0.0.1', String(smtp.port), authzid, 'alice', 'alicepw-local', 'no']);
      assert.match(out, /^235 /, `authzid ${JSON.stringify(authzid)}`);
    }
  });
});

describe('plaintext logins from another machine', { skip: noRemote }, () => {
  const host = remote ?? '';

  test('SMTP: AUTH before STARTTLS gets 538; after STARTTLS it logs in; loopback in clear still does', async () => {
    const args = (starttls: string, h = host) => [h, String(smtp.port), '', 'alice', 'alicepw-local', starttls];
    assert.match(await python(SMTP_AUTH, args('no')), /^538 .*STARTTLS/);
    assert.match(await python(SMTP_AUTH, args('yes')), /^235 /);
    assert.match(await python(SMTP_AUTH, args('no', '127.0.0.1')), /^235 /);
  });

  test('POP3: no login offered or accepted before STLS; after STLS it logs in; loopback in clear still does', async () => {
    const args = (stls: string, h = host) => [h, String(pop3.port), 'alice', 'localpw', stls];
    const clear = await python(POP_LOGIN, args('no'));
    assert.doesNotMatch(clear, /CAPA .*\bUSER\b/);
    assert.match(clear, /LOGIN refused -ERR plaintext login from another machine refused: use STLS first/);
    assert.match(await python(POP_LOGIN, args('yes')), /CAPA .*\bUSER\b[\s\S]*LOGIN ok 0/);
    assert.match(await python(POP_LOGIN, args('no', '127.0.0.1')), /LOGIN ok 0/);
  });
});

describe("another machine's share of connections", { skip: noRemote }, () => {
  test('POP3: 15 idle connections from it leave 10 open (its oldest closed); a loopback client logs in', async () => {
    const local = await connected(pop3.port);
    const theirs: net.Socket[] = [];
    for (let i = 0; i < 15; i++) {
      const s = net.connect({ host: remote ?? '', port: pop3.port });
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('data', () => r()));
      theirs.push(s);
    }
    await waitFor(() => pop3.server.sessionCount === 11, 10_000, '10 of theirs and the local one');
    assert.match(await local.ask('USER alice'), /^\+OK/);
    assert.match(await local.ask('PASS localpw'), /^\+OK/);
    for (const s of theirs) s.destroy();
    local.close();
  });
});
