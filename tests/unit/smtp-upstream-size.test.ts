/**
 * The upstream's SIZE limit: the sender reports what the server advertised after a send, the
 * limit survives a restart (upstream-limits.json), the listener's limit is the smaller of
 * `outgoing.maxMessageSize` and the learnt SIZE, and the local EHLO after AUTH advertises it with
 * 552 for a declared or actual oversize.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { UpstreamLimits } from '../../src/cache/upstream-limits.js';
import { parseConfigText } from '../../src/config/load.js';
import { submissionAccounts } from '../../src/daemon/outgoing.js';
import { NodemailerSender } from '../../src/upstream/smtp/sender.js';
import { startFakeSmtp } from '../fakes/fake-smtp.js';
import { outboxFiles, silentLog } from '../support/outbox.js';
import { authenticated, type SmtpFixture, startData, startSmtp } from '../support/smtp.js';

const open: SmtpFixture[] = [];
after(async () => {
  for (const s of open) await s.close();
});

test('the sender reports the SIZE the upstream advertised after a send', async () => {
  const fake = await startFakeSmtp({ user: 'alice', pass: 'pw', size: 123_456 });
  const seen: number[] = [];
  const sender = new NodemailerSender({
    endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'pw' },
    log: silentLog,
    onServerSize: (n) => seen.push(n),
  });
  try {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'lp-size-')), 'm.eml');
    writeFileSync(file, 'Subject: s\r\n\r\nbody\r\n');
    const r = await sender.send({ path: file, from: 'a@b.c', to: ['d@e.f'], size: 20, eightBit: false });
    assert.equal(r.sent.length, 1);
  } finally {
    sender.close();
    await fake.stop();
  }
  assert.deepEqual(seen, [123_456]);
});

test('learnt limits are durable; 0 forgets one', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-limits-'));
  const a = await UpstreamLimits.open(dir);
  assert.equal(a.get('home'), undefined);
  await a.set('home', 10_000);
  assert.equal((await UpstreamLimits.open(dir)).get('home'), 10_000);
  await a.set('home', 0);
  assert.equal((await UpstreamLimits.open(dir)).get('home'), undefined);
});

test('the listener limit is the smaller of maxMessageSize and the learnt SIZE', () => {
  const c = parseConfigText(`
dataDir: /tmp/lp-size-test
accounts:
  - id: home
    email: me@example.com
    login: { password: pw }
    incoming: { protocol: imap, host: mail.example.com, username: me, password: x }
    outgoing: { host: smtp.example.com, username: me, password: x, maxMessageSize: 1MB }
`);
  const limit = (learnt?: number) => submissionAccounts(c, () => learnt).get('home')!.maxMessageSize;
  assert.equal(limit(), 1024 * 1024, 'not known yet: the configured limit');
  assert.equal(limit(5000), 5000);
  assert.equal(limit(50 * 1024 * 1024), 1024 * 1024);
});

test('EHLO after AUTH advertises the learnt size; 552 for a declared or an actual oversize', async () => {
  const limits = await UpstreamLimits.open(mkdtempSync(path.join(os.tmpdir(), 'lp-limits-')));
  await limits.set('alice', 2000);
  const accounts = () =>
    new Map([
      ['alice', { id: 'alice', maxMessageSize: Math.min(1024 * 1024, limits.get('alice') ?? Infinity), canSend: true }],
    ]);
  const s = await startSmtp({ accounts });
  open.push(s);
  const d = await authenticated(s.port, 'alice', 'alicepw-local');
  const caps = (await d.cmd('EHLO x')).map((l) => l.slice(4));
  assert.ok(caps.includes('SIZE 2000'), caps.join(' | '));
  assert.match((await d.cmd('MAIL FROM:<a@b> SIZE=2001'))[0]!, /^552 /);
  await d.cmd('RSET');
  await startData(d);
  const r = await d.send(`Subject: big\r\n\r\n${'x'.repeat(3000)}\r\n.\r\n`);
  assert.match(r[0]!, /^552 /);
  d.close();
  assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
});
