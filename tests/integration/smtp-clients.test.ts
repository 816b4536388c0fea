/**
 * Real clients against the local SMTP listener (AUTH without TLS on loopback, the envelope
 * kept): Python's smtplib (lower-case verbs; AUTH PLAIN via login(), AUTH LOGIN explicitly)
 * and curl's `smtp://` (AUTH PLAIN and LOGIN, over IPv4 and IPv6). Each message must land in
 * the outbox byte-exact (dot lines unstuffed, 8-bit kept) with every envelope recipient.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SmtpFixture, smtplibSend, startSmtp } from '../support/smtp.js';

let s: SmtpFixture;
let dir: string;
before(async () => {
  s = await startSmtp();
  dir = mkdtempSync(path.join(os.tmpdir(), 'lp-smtpc-'));
});
after(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A message with CRLF line ends, dot lines and 8-bit bytes. */
function body(tag: string): Buffer {
  return Buffer.concat([
    Buffer.from(
      `From: alice@example.test\r\nTo: bob@example.test\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@example.test>\r\n\r\n`,
    ),
    Buffer.from('.leading dot\r\n..two dots\r\n.\r\n', 'latin1'),
    Buffer.from([0xc3, 0xa9, 0xe9, 0x0d, 0x0a]),
    Buffer.from(`${'x'.repeat(990)}\r\nlast line\r\n`),
  ]);
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`${cmd} failed: ${err.message}\n${stderr}`)) : res({ stdout, stderr }),
    );
  });
}

/** The outbox entry named in a "queued as <id>" reply. */
function entryFrom(reply: string) {
  const id = /queued as (\S+)/.exec(reply)?.[1];
  assert.ok(id, reply);
  const e = s.fx.outbox.get(id)!;
  assert.ok(e, `entry ${id} in the queue`);
  return { e, bytes: readFileSync(s.fx.outbox.messagePath(id)) };
}

describe('Python smtplib', () => {
  for (const mode of ['plain', 'login'] as const) {
    test(`AUTH ${mode.toUpperCase()}, lower-case verbs, Bcc recipient, byte-exact`, async () => {
      const raw = body(`smtplib-${mode}`);
      const file = path.join(dir, `m-${mode}.eml`);
      writeFileSync(file, raw);
      const r = await smtplibSend({
        port: s.port,
        user: 'alice',
        pass: 'alicepw-local',
        mode,
        file,
        from: 'alice@example.test',
        to: ['bob@example.test', 'hidden@example.test'],
      });
      assert.match(r.stdout, /AUTH 235/);
      assert.match(r.stdout, /DATA 250 OK: queued as/);
      assert.match(r.stderr, /send: 'mail FROM:<alice@example.test> size=\d+/, 'smtplib sends lower-case verbs');
      assert.match(r.stderr, mode === 'plain' ? /send: 'AUTH PLAIN / : /send: 'AUTH LOGIN\\r\\n'/);
      const { e, bytes } = entryFrom(r.stdout);
      assert.ok(bytes.equals(raw), 'stored bytes equal what the client meant');
      assert.deepEqual(
        e.recipients.map((x) => x.address),
        ['bob@example.test', 'hidden@example.test'],
      );
      assert.equal(e.account, 'alice');
    });
  }

  test('a wrong password is refused (535)', async () => {
    const file = path.join(dir, 'wrong.eml');
    writeFileSync(file, body('wrong'));
    await assert.rejects(
      smtplibSend({
        port: s.port,
        user: 'alice',
        pass: 'nope',
        file,
        from: 'alice@example.test',
        to: ['bob@example.test'],
      }),
      /SMTPAuthenticationError: \(535/,
    );
  });
});

describe('curl smtp://', () => {
  const cases = [
    { name: 'AUTH PLAIN over IPv4', url: '127.0.0.1', opts: [] as string[], expect: /> AUTH PLAIN\r\n< 334 / },
    { name: 'AUTH LOGIN over IPv6', url: '[::1]', opts: ['--login-options', 'AUTH=LOGIN'], expect: /> AUTH LOGIN/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const raw = body(`curl-${c.url.length}`);
      const file = path.join(dir, `curl-${c.url.length}.eml`);
      writeFileSync(file, raw);
      const r = await run('curl', [
        '-sS',
        '-v',
        `smtp://${c.url}:${s.port}`,
        '--mail-from',
        'alice@example.test',
        '--mail-rcpt',
        'bob@example.test',
        '--mail-rcpt',
        'carol@example.test',
        '--mail-rcpt',
        'hidden@example.test',
        '--upload-file',
        file,
        '--user',
        'bob:bobpw-local',
        ...c.opts,
      ]);
      assert.match(r.stderr, c.expect);
      const reply = /< 250 (OK: queued as \S+)/.exec(r.stderr);
      assert.ok(reply, r.stderr);
      const { e, bytes } = entryFrom(reply[1]!);
      assert.ok(bytes.equals(raw));
      assert.equal(e.account, 'bob');
      assert.deepEqual(
        e.recipients.map((x) => x.address),
        ['bob@example.test', 'carol@example.test', 'hidden@example.test'],
      );
    });
  }
});
