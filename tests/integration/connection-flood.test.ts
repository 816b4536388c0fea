/**
 * A flood of idle connections does not lock the real client out (src/listeners/connection-slots.ts):
 * `localpost start` with its default limits (50 per listener, 10 per address), 60 idle
 * connections from loopback held open on each listener, then Python's poplib logs in and reads
 * the mail the daemon pulled from the real Dovecot, and smtplib submits a message (250, queued).
 * The flood sockets stay open on the client side throughout: the daemon made room by closing
 * its oldest idle connections that had not logged in.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import { type DaemonProcess, daemonConfig, freePort, smtplibSend, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const FLOOD = 60;

let tb: Testbed;
let dir: string;
let d: DaemonProcess;
let ports: { pop3: number; smtp: number };
const flood: net.Socket[] = [];

before(async () => {
  tb = await startTestbed({ postfix: false });
  await tb.seed('alice', 2, undefined, { reset: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-flood-'));
  ports = { pop3: await freePort(), smtp: await freePort() };
  const config = daemonConfig(
    dir,
    [
      {
        id: 'alice',
        incoming: { protocol: 'pop3', port: tb.pop3Port, username: 'alice', password: 'alicepw' },
        // an upstream that is down: the message is accepted into the outbox and stays queued
        outgoing: { port: await freePort(), username: 'alice', password: 'alicepw' },
      },
    ],
    { ports, probe: '1h' },
  );
  d = await startDaemon(config);
});
after(async () => {
  for (const s of flood) s.destroy();
  if (d?.child.exitCode === null) await d.stop();
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens an idle connection and waits for the server's first line; the socket is kept open. */
async function idleConnection(port: number): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port });
  flood.push(s);
  s.on('error', () => undefined);
  let text = '';
  await new Promise<void>((resolve) => {
    s.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      if (text.includes('\r\n')) resolve();
    });
    s.on('close', () => resolve());
  });
}

test(`POP3: ${FLOOD} idle connections held open, poplib still logs in and reads the mail`, async () => {
  for (let i = 0; i < FLOOD; i++) await idleConnection(ports.pop3);
  const messages = await poplibFetchAll(ports.pop3, 'alice', 'localpw');
  assert.equal(messages.length, 2, 'poplib logged in and read both messages');
  await d.waitLog(/closing an idle connection that has not logged in/);
});

test(`SMTP: ${FLOOD} idle connections held open, smtplib still authenticates and gets 250`, async () => {
  const start = flood.length;
  for (let i = 0; i < FLOOD; i++) await idleConnection(ports.smtp);
  const file = path.join(dir, 'm.eml');
  writeFileSync(file, 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: flood\r\n\r\nbody\r\n');
  const r = await smtplibSend({
    port: ports.smtp,
    user: 'alice',
    pass: 'localpw',
    file,
    from: 'alice@example.test',
    to: ['bob@example.test'],
  });
  assert.match(r.stdout, /AUTH 235/);
  assert.match(r.stdout, /DATA 250 OK: queued as/);
  await waitFor(() => flood.slice(start).some((s) => s.readableEnded), 10_000, 'a flood connection got its 421');
});
