/**
 * No AUTH payload in the logs, at any level: a trace-level log of full
 * sessions (AUTH PLAIN with and without an initial response, AUTH LOGIN, a wrong password,
 * a message) holds the protocol transcript but neither a password nor a base64 payload.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/shared/log.js';
import { dialog, plain, startSmtp } from '../support/smtp.js';

test('trace log of full sessions: transcript present, credentials absent', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'trace', destination: sink });
  const s = await startSmtp({}, log.child({ component: 'smtp' }));
  try {
    const a = await dialog(s.port);
    await a.cmd('EHLO x');
    await a.cmd(`AUTH PLAIN ${plain('alice', 'wrong-secret-1')}`);
    await a.cmd(`AUTH PLAIN ${plain('alice', 'alicepw-local')}`);
    await a.cmd('MAIL FROM:<alice@example.test>');
    await a.cmd('RCPT TO:<bob@example.test>');
    await a.cmd('DATA');
    await a.send('Subject: logged\r\n\r\nbody\r\n.\r\n');
    await a.cmd('QUIT');
    const b = await dialog(s.port);
    await b.cmd('EHLO x');
    await b.cmd('AUTH LOGIN');
    await b.cmd(Buffer.from('bob').toString('base64'));
    await b.cmd(Buffer.from('bobpw-local').toString('base64'));
    await b.cmd('QUIT');
    const c = await dialog(s.port);
    await c.cmd('EHLO x');
    await c.cmd('AUTH PLAIN');
    await c.cmd(plain('bob', 'bobpw-local'));
    await c.cmd('QUIT');
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await s.close();
  }
  const text = lines.join('\n');
  for (const secret of [
    'wrong-secret-1',
    'alicepw-local',
    'bobpw-local',
    plain('alice', 'wrong-secret-1'),
    plain('alice', 'alicepw-local'),
    plain('bob', 'bobpw-local'),
    Buffer.from('bobpw-local').toString('base64'),
    Buffer.from('bob').toString('base64'),
  ]) {
    assert.ok(!text.includes(secret), `log contains ${secret}: ${lines.filter((l) => l.includes(secret)).join('\n')}`);
  }
  // The transcript itself is there, at trace, with its text.
  const entries = lines.map((l) => JSON.parse(l) as { level: string; msg: string; component?: unknown });
  assert.ok(
    entries.some((e) => e.level === 'trace' && /C: MAIL FROM:<alice@example.test>/.test(e.msg)),
    'MAIL FROM line logged',
  );
  assert.ok(
    entries.some((e) => e.level === 'trace' && /^S: 250-.*250-AUTH=PLAIN LOGIN/s.test(e.msg)),
    'EHLO reply logged',
  );
  assert.ok(entries.some((e) => /AUTH PLAIN (\/\* secured \*\/|\[redacted\])/.test(e.msg)));
  assert.ok(
    entries.every((e) => e.component === 'smtp'),
    'one component key, ours',
  );
  assert.ok(entries.some((e) => e.level === 'info' && e.msg === 'local SMTP login'));
});

test('trace log of the upstream sender (nodemailer): transcript present, credentials absent', async () => {
  const { startFakeSmtp } = await import('../fakes/fake-smtp.js');
  const { NodemailerSender } = await import('../../src/upstream/smtp/sender.js');
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'trace', destination: sink });
  const fake = await startFakeSmtp({ user: 'alice', pass: 'upstream-secret-9' });
  const sender = new NodemailerSender({
    endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'upstream-secret-9' },
    log,
  });
  try {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const path = (await import('node:path')).default;
    const os = (await import('node:os')).default;
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'lp-sl-')), 'm.eml');
    writeFileSync(file, 'Subject: s\r\n\r\nbody\r\n');
    const r = await sender.send({
      path: file,
      from: 'alice@example.test',
      to: ['bob@example.test'],
      size: 20,
      eightBit: false,
    });
    assert.equal(r.sent.length, 1);
  } finally {
    sender.close();
    await fake.stop();
  }
  const text = lines.join('\n');
  for (const secret of [
    'upstream-secret-9',
    plain('alice', 'upstream-secret-9'),
    Buffer.from('upstream-secret-9').toString('base64'),
  ]) {
    assert.ok(!text.includes(secret), `log contains ${secret}`);
  }
  assert.match(text, /MAIL FROM:<alice@example.test>/);
  assert.doesNotMatch(text, /Subject: s/, 'no message content');
});
