/**
 * The local SMTP listener (src/listeners/smtp) over real sockets and a real outbox: EHLO/HELO
 * tolerance and the advertised extensions, AUTH (also without TLS; NTLM refused), per-account SIZE,
 * 250 only when durable and 451 on a local failure, duplicates (a resubmitted copy), TLS only with a
 * configured certificate, stop().
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { createTransport } from 'nodemailer';
import { within } from '../support/localpost.js';
import { message, outboxFiles } from '../support/outbox.js';
import {
  authenticated,
  dialog,
  plain,
  type SmtpFixture,
  selfSignedCert,
  startData,
  startSmtp,
} from '../support/smtp.js';

const open: SmtpFixture[] = [];
after(async () => {
  for (const s of open) await s.close();
});
async function smtp(...a: Parameters<typeof startSmtp>): Promise<SmtpFixture> {
  const s = await startSmtp(...a);
  open.push(s);
  return s;
}
const waitMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('greeting and EHLO', () => {
  test('extensions: PIPELINING 8BITMIME SMTPUTF8, both AUTH forms, SIZE, no STARTTLS without a certificate', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    assert.match(d.greeting[0]!, /^220 localpost ESMTP/);
    const ehlo = await d.cmd('EHLO client.example');
    assert.equal(ehlo[0], '250-localpost Nice to meet you, [127.0.0.1]');
    const caps = ehlo.slice(1).map((l) => l.slice(4));
    for (const c of [
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      'AUTH PLAIN LOGIN',
      'AUTH=PLAIN LOGIN',
      `SIZE ${10 * 1024 * 1024}`,
    ]) {
      assert.ok(caps.includes(c), `${c} in ${caps.join(' | ')}`);
    }
    assert.ok(caps.indexOf('AUTH=PLAIN LOGIN') === caps.indexOf('AUTH PLAIN LOGIN') + 1);
    assert.ok(!caps.some((c) => /STARTTLS|DSN/.test(c)));
    d.close();
  });

  test('EHLO and HELO without an argument are accepted; lower-case verbs work', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    assert.match((await d.cmd('EHLO'))[0]!, /^250-localpost Nice to meet you/);
    assert.match((await d.cmd('helo'))[0]!, /^250 localpost/);
    assert.match((await d.cmd('ehlo'))[0]!, /^250-/);
    d.close();
    const v6 = await dialog(s.port, '::1');
    assert.match((await v6.cmd('EHLO'))[0]!, /^250-/);
    v6.close();
  });

  test('listens on 127.0.0.1 and ::1 with the same port', async () => {
    const s = await smtp();
    assert.deepEqual(
      s.listener.addresses.map((a) => a.host),
      ['127.0.0.1', '::1'],
    );
    assert.equal(new Set(s.listener.addresses.map((a) => a.port)).size, 1);
  });
});

describe('AUTH', () => {
  test('mail needs AUTH; wrong password 535; PLAIN works; a second EHLO shows the account SIZE and no AUTH', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    await d.cmd('EHLO x');
    assert.match((await d.cmd('MAIL FROM:<alice@example.test>'))[0]!, /^530 /);
    assert.match((await d.cmd(`AUTH PLAIN ${plain('alice', 'wrong')}`))[0]!, /^535 /);
    assert.match((await d.cmd(`AUTH PLAIN ${plain('alice', 'alicepw-local')}`))[0]!, /^235 /);
    const again = (await d.cmd('EHLO x')).map((l) => l.slice(4));
    assert.ok(again.includes(`SIZE ${1024 * 1024}`), again.join('|'));
    assert.ok(!again.some((l) => l.startsWith('AUTH')));
    d.close();
  });

  test('AUTH LOGIN (two 334 prompts) and AUTH PLAIN without an initial response', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    await d.cmd('ehlo x');
    assert.deepEqual(await d.cmd('auth login'), ['334 VXNlcm5hbWU6']);
    assert.deepEqual(await d.cmd(Buffer.from('bob').toString('base64')), ['334 UGFzc3dvcmQ6']);
    assert.match((await d.cmd(Buffer.from('bobpw-local').toString('base64')))[0]!, /^235 /);
    d.close();
    const e = await dialog(s.port);
    await e.cmd('EHLO x');
    assert.deepEqual(await e.cmd('AUTH PLAIN'), ['334 ']);
    assert.match((await e.cmd(plain('bob', 'bobpw-local')))[0]!, /^235 /);
    e.close();
  });

  test('AUTH NTLM is refused with 504', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    await d.cmd('EHLO x');
    assert.match((await d.cmd('AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA='))[0]!, /^504 /);
    d.close();
  });
});

describe('submission', () => {
  test('250 only once queued: bytes dot-unstuffed and exact, every RCPT kept (Bcc only in the envelope)', async () => {
    const s = await smtp();
    const d = await dialog(s.port);
    await d.cmd('ehlo x');
    await d.cmd(`auth plain ${plain('alice', 'alicepw-local')}`);
    assert.match((await d.cmd('mail FROM:<alice@example.test> size=200'))[0]!, /^250 /);
    for (const r of ['bob@example.test', 'carol@example.test', 'secret@example.test'])
      assert.match((await d.cmd(`rcpt TO:<${r}>`))[0]!, /^250 /);
    assert.match((await d.cmd('data'))[0]!, /^354 /);
    const reply = await d.send('Subject: t\r\n\r\n..leading dot\r\n\xe9t\xe9\r\n.\r\n');
    const m = /^250 OK: queued as (\S+)$/.exec(reply[0]!);
    assert.ok(m, reply[0]);
    const id = m[1]!;
    assert.equal(
      await readFile(path.join(s.fx.dataDir, 'outbox', `${id}.eml`), 'latin1'),
      'Subject: t\r\n\r\n.leading dot\r\n\xe9t\xe9\r\n',
    );
    const e = s.fx.outbox.get(id)!;
    assert.equal(e.account, 'alice');
    assert.deepEqual(
      e.recipients.map((r) => r.address),
      ['bob@example.test', 'carol@example.test', 'secret@example.test'],
    );
    assert.equal(e.eightBit, true);
    // pipelined second transaction on the same connection
    const rest = await d.send('MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
    assert.match(rest[0]!, /^250 /);
    d.close();
  });

  test('SIZE: a declared size over the account limit gets 552 at MAIL; an undeclared one 552 after DATA, nothing queued', async () => {
    const s = await smtp();
    const d = await authenticated(s.port, 'alice', 'alicepw-local');
    assert.match((await d.cmd(`MAIL FROM:<a@b> SIZE=${2 * 1024 * 1024}`))[0]!, /^552 /);
    await startData(d);
    const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(1200);
    assert.match((await d.send(`${big}.\r\n`))[0]!, /^552 /);
    assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
    // bob's limit is larger: the same message goes through.
    const e = await authenticated(s.port, 'bob', 'bobpw-local');
    await startData(e);
    assert.match((await e.send(`${big}.\r\n`))[0]!, /^250 /);
    d.close();
    e.close();
  });

  test('SMTPUTF8: internationalized addresses are accepted and kept in the envelope', async () => {
    const s = await smtp();
    const d = await authenticated(s.port, 'alice', 'alicepw-local');
    assert.match((await d.send(Buffer.from('MAIL FROM:<jörg@example.test> SMTPUTF8\r\n')))[0]!, /^250 /);
    assert.match((await d.send(Buffer.from('RCPT TO:<zoë@example.test>\r\n')))[0]!, /^250 /);
    await d.cmd('DATA');
    const id = /queued as (\S+)/.exec((await d.send(Buffer.from('Subject: ü\r\n\r\nhi\r\n.\r\n')))[0]!)![1]!;
    const e = s.fx.outbox.get(id)!;
    assert.equal(e.from, 'jörg@example.test');
    assert.deepEqual(
      e.recipients.map((r) => r.address),
      ['zoë@example.test'],
    );
    d.close();
  });

  test('a receive-only account cannot send (550)', async () => {
    const s = await smtp();
    const d = await authenticated(s.port, 'recv', 'recvpw');
    assert.match((await d.cmd('MAIL FROM:<r@example.test>'))[0]!, /^550 .*no outgoing server/);
    d.close();
  });

  test('the client drops mid-DATA: nothing queued, nothing half-written', async () => {
    const s = await smtp();
    const d = await authenticated(s.port, 'alice', 'alicepw-local');
    await startData(d);
    d.write(`Subject: cut\r\n\r\n${'y'.repeat(50_000)}`);
    await waitMs(100);
    d.close();
    await waitMs(200);
    assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
    assert.deepEqual(await readdirSafe(path.join(s.fx.dataDir, 'outbox', 'tmp')), []);
  });

  test('a local failure (disk full) answers 451, leaves nothing, and the session goes on', async () => {
    let fail = true;
    const { open: fsOpen } = await import('node:fs/promises');
    const s = await smtp({}, undefined, {
      io: {
        async create(file) {
          const fh = await fsOpen(file, 'wx', 0o600);
          return {
            write: async (b) => {
              if (fail) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
              await fh.write(b);
            },
            sync: () => fh.sync(),
            close: () => fh.close(),
          };
        },
      },
    });
    const d = await authenticated(s.port, 'alice', 'alicepw-local');
    await startData(d);
    assert.match((await d.send(`Subject: full\r\n\r\n${'z'.repeat(300_000)}\r\n.\r\n`))[0]!, /^451 /);
    assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
    assert.deepEqual(await readdirSafe(path.join(s.fx.dataDir, 'outbox', 'tmp')), []);
    fail = false;
    await startData(d);
    assert.match((await d.send('Subject: ok\r\n\r\nfine\r\n.\r\n'))[0]!, /^250 /);
    d.close();
  });

  test('nodemailer as a client; a resubmitted copy gets 250 with the first id and is queued once', async () => {
    const s = await smtp();
    const t = createTransport({
      host: '127.0.0.1',
      port: s.port,
      secure: false,
      ignoreTLS: true,
      auth: { user: 'alice', pass: 'alicepw-local' },
    });
    const raw = message({ messageId: 'resend@example.test', bcc: 'hidden@example.test' });
    const envelope = { from: 'alice@example.test', to: ['bob@example.test', 'hidden@example.test'] };
    const a = await t.sendMail({ envelope, raw });
    const b = await t.sendMail({ envelope, raw });
    const id = /queued as (\S+)/.exec(a.response)![1]!;
    assert.match(b.response, new RegExp(`already queued as ${id}`));
    assert.equal(s.fx.outbox.queued().length, 1);
    t.close();
  });
});

describe('STARTTLS', () => {
  test('offered only with a configured certificate; AUTH and mail work after the upgrade', async () => {
    const c = selfSignedCert();
    try {
      const s = await smtp({ tls: { cert: c.cert, key: c.key } });
      const d = await dialog(s.port);
      const caps = (await d.cmd('EHLO x')).map((l) => l.slice(4));
      assert.ok(caps.includes('STARTTLS'));
      assert.match((await d.cmd('STARTTLS'))[0]!, /^220 /);
      const ca = await readFile(c.cert);
      const sock = tls.connect({ socket: d.socket, ca, servername: 'localhost' });
      await new Promise<void>((r, j) => {
        sock.once('secureConnect', () => r());
        sock.once('error', j);
      });
      const got: string[] = [];
      sock.on('data', (b: Buffer) => got.push(b.toString()));
      sock.write('EHLO x\r\n');
      await waitMs(200);
      assert.match(got.join(''), /250-AUTH PLAIN LOGIN/);
      assert.doesNotMatch(got.join(''), /STARTTLS/);
      sock.destroy();
      // nodemailer with requireTLS trusts our CA and sends.
      const t = createTransport({
        host: '127.0.0.1',
        port: s.port,
        requireTLS: true,
        tls: { ca, servername: 'localhost' },
        auth: { user: 'bob', pass: 'bobpw-local' },
      });
      const info = await t.sendMail({
        envelope: { from: 'bob@example.test', to: ['alice@example.test'] },
        raw: message(),
      });
      assert.match(info.response, /queued as/);
      t.close();
    } finally {
      await rm(c.dir, { recursive: true, force: true });
    }
  });
});

describe('stop()', () => {
  test('closes idle sessions at once', async () => {
    // smtp-server alone would wait the whole closeTimeout before closing an idle session
    const s = await startSmtp({ closeTimeoutMs: 10 * 60_000 });
    const d = await dialog(s.port);
    await d.cmd('EHLO x');
    await within(s.close(), 60_000, 'stop() with an idle session');
    assert.match(d.transcript(), /421 Server shutting down/);
  });
});

async function readdirSafe(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir).catch(() => []);
}
