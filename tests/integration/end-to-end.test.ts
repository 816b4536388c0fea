/**
 * The three flows end to end through one `localpost start` against the testbed's real Dovecot
 * and Postfix: pull (POP3 from Dovecot into the cache), serve (poplib reads the cache over the
 * local POP3 listener, byte for byte what Dovecot serves), send (smtplib submits to the local
 * SMTP listener, the outbox relays through Postfix, Dovecot delivers, and the next pull brings the
 * message back). `npm run test:node24` runs this file on another Node.js version too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import { type DaemonProcess, daemonConfig, smtplibSend, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-e2e-flows-'));
let tb: Testbed;
let daemon: DaemonProcess | undefined;
before(async () => {
  tb = await startTestbed({ postfix: true });
  assert.ok(tb.hasPostfix, 'Postfix runs (the testbed needs root)');
  await tb.seed('alice', 3, 2048, { reset: true });
});
after(async () => {
  await daemon?.stop();
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('pull from Dovecot, serve over POP3, send through the outbox and pull it back', async () => {
  const configFile = daemonConfig(dir, [
    {
      id: 'alice',
      incoming: { protocol: 'pop3', port: tb.pop3Port, username: 'alice', password: 'alicepw' },
      outgoing: {
        port: tb.smtpPort,
        tls: 'starttls',
        tlsCa: tb.caCert,
        username: 'alice',
        password: 'alicepw',
      },
    },
  ]);
  // every local login pulls, however soon after the last pull (the default floor is 30 s)
  writeFileSync(
    configFile,
    readFileSync(configFile, 'utf8').replace('      idle: false\n', '      idle: false\n      syncOnLoginFloor: 0s\n'),
  );
  daemon = await startDaemon(configFile);
  const ready = await daemon.waitLog(/^POP3 listener ready$/);
  const pop3Port = (ready.addresses as Array<{ port: number }>)[0]?.port;
  assert.ok(pop3Port, 'the POP3 listener reports its port');

  // Serve: a local login pulls first, then serves exactly what the upstream serves.
  const upstream = await poplibFetchAll(tb.pop3Port, 'alice', 'alicepw');
  const local = await poplibFetchAll(pop3Port, 'alice', 'localpw');
  assert.equal(upstream.length, 3);
  assert.deepEqual(local, upstream, 'the local POP3 server serves the upstream bytes');

  // Send: submitted locally, relayed by Postfix, delivered by Dovecot into alice's INBOX.
  const file = path.join(dir, 'msg.eml');
  const subject = `end to end ${process.pid}`;
  writeFileSync(
    file,
    `From: alice@example.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <e2e-${process.pid}@example.test>\r\n\r\nround trip\r\n`,
  );
  const sent = await smtplibSend({
    port: daemon.smtpPort,
    user: 'alice',
    pass: 'localpw',
    file,
    from: 'alice@example.test',
    to: ['alice@example.test'],
  });
  assert.match(sent.stdout, /DATA 250/);
  await waitFor(() => tb.countUpstream('alice') === 4, 30_000, 'Postfix delivered the message upstream');

  // Pull it back: the next local login pulls the new message and serves it after the first three.
  const again = await poplibFetchAll(pop3Port, 'alice', 'localpw');
  assert.equal(again.length, 4);
  assert.deepEqual(again.slice(0, 3), upstream, 'the cached messages keep their order and bytes');
  assert.match(again[3]?.toString('latin1') ?? '', new RegExp(`Subject: ${subject}`));
  assert.match(again[3]?.toString('latin1') ?? '', /round trip/);

  assert.equal(await daemon.stop(), 0, 'SIGTERM stops the daemon cleanly');
  daemon = undefined;
});
