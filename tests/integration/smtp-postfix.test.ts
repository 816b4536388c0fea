/**
 * Relaying through the real Postfix of the testbed (a real server, not a fake): a message submitted
 * to the local listener with smtplib is queued, relayed with STARTTLS + AUTH, delivered by
 * Postfix into Dovecot, and read back over IMAP with imaplib: every envelope recipient (the Bcc
 * one included) has exactly one copy, no copy has a Bcc header, and the body is byte-exact
 * (a bare-LF message arrives with CRLF, the normalisation nodemailer does). The Sent copy is
 * tests/integration/sent-folder.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DeliveryService } from '../../src/daemon/delivery.js';
import { NodemailerSender } from '../../src/upstream/smtp/sender.js';
import { waitFor } from '../support/localpost.js';
import { chunks, silentLog } from '../support/outbox.js';
import { imaplibFetchAll } from '../support/python.js';
import { type SmtpFixture, smtplibSend, startSmtp } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let s: SmtpFixture;
let sender: NodemailerSender;
let delivery: DeliveryService;
before(async () => {
  tb = await startTestbed({ postfix: true, env: { EXTRA_USERS: 'carol:carolpw dave:davepw' } });
  assert.ok(tb.hasPostfix, 'Postfix runs (the testbed needs root)');
  s = await startSmtp();
  const endpoint = {
    host: 'localhost',
    port: tb.smtpPort,
    tls: 'starttls' as const,
    ca: readFileSync(tb.caCert, 'utf8'),
    username: 'alice',
    password: 'alicepw',
  };
  sender = new NodemailerSender({ endpoint, log: silentLog });
  delivery = new DeliveryService({
    outbox: s.fx.outbox,
    senderFor: async () => sender,
    log: silentLog,
    clock: s.fx.clock,
    policy: () => ({ initial: 1000, max: 5000, maxAge: 3_600_000 }),
  });
});
after(async () => {
  await delivery?.stop();
  sender?.close();
  await s?.close();
  await tb?.stop();
});

const env = {
  account: 'alice',
  from: 'alice@example.test',
  to: ['bob@example.test', 'carol@example.test', 'dave@example.test'],
};

function split(b: Buffer): { header: string; body: Buffer } {
  const i = b.indexOf('\r\n\r\n');
  return { header: b.subarray(0, i + 2).toString('latin1'), body: b.subarray(i + 4) };
}

test('delivered into Dovecot for every envelope recipient, Bcc stripped, body byte-exact', async () => {
  const header =
    'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nCc: carol@example.test\r\n' +
    'Bcc: dave@example.test\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\nSubject: via postfix\r\nMessage-ID: <postfix-1@example.test>\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n';
  const body = Buffer.concat([
    Buffer.from('.leading dot\r\n..two\r\n.\r\nCaf\xe9 \xff\r\n', 'latin1'),
    Buffer.from(`${'w'.repeat(998)}\r\nend\r\n`),
  ]);
  const file = path.join(os.tmpdir(), `lp-postfix-${process.pid}.eml`);
  writeFileSync(file, Buffer.concat([Buffer.from(header, 'latin1'), body]));
  const r = await smtplibSend({ port: s.port, user: 'alice', pass: 'alicepw-local', file, from: env.from, to: env.to });
  rmSync(file);
  assert.match(r.stdout, /DATA 250 OK: queued as/);
  await delivery.run();
  assert.equal(s.fx.outbox.queued().length, 0, s.fx.outbox.queued()[0]?.lastError);
  for (const user of ['bob', 'carol', 'dave']) {
    await waitFor(() => tb.countUpstream(user) >= 1, 15_000, `delivery to ${user}`);
    const got = await imaplibFetchAll(tb.imapPort, user, `${user}pw`);
    assert.equal(got.length, 1, `${user} has one copy`);
    const m = split(got[0]!.body);
    assert.ok(m.body.equals(body), `${user}: body differs: ${JSON.stringify(m.body.toString('latin1').slice(0, 200))}`);
    assert.doesNotMatch(m.header, /^bcc:/im);
    assert.ok(
      m.header.endsWith(header.replace('Bcc: dave@example.test\r\n', '').replace(/\r\n\r\n$/, '\r\n')),
      m.header,
    );
  }
});

test('bare LF and no final newline: delivered with CRLF (nodemailer normalises)', async () => {
  const raw = Buffer.from(
    'From: alice@example.test\nTo: bob@example.test\nSubject: lf\nMessage-ID: <lf@example.test>\n\none\ntwo',
    'latin1',
  );
  await s.fx.outbox.enqueue({ ...env, to: ['bob@example.test'] }, chunks(raw));
  await delivery.run();
  await waitFor(() => tb.countUpstream('bob') >= 2, 15_000, 'second delivery to bob');
  const got = await imaplibFetchAll(tb.imapPort, 'bob', 'bobpw');
  const m = split(got.find((x) => x.body.includes('Subject: lf'))!.body);
  assert.equal(m.body.toString('latin1'), 'one\r\ntwo\r\n');
});

test('an unknown local recipient is refused by Postfix (550 5.1.1): bounced into the local INBOX', async () => {
  await s.fx.outbox.enqueue(
    { ...env, to: ['bob@example.test', 'nobody@example.test'] },
    chunks(Buffer.from('Subject: partly\r\n\r\nx\r\n')),
  );
  await delivery.run();
  const inbox = (await import('../support/outbox.js')).inboxMessages;
  const bounces = await inbox(s.fx.dataDir, 'alice');
  assert.equal(bounces.length, 1);
  assert.match(bounces[0]!, /Final-Recipient: rfc822; nobody@example.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
  await waitFor(() => tb.countUpstream('bob') >= 3, 15_000, 'bob still got it');
});
