/**
 * Smoke test of the test support itself: a real Dovecot/Postfix instance from tests/testbed,
 * seeded or fed with the hostile corpus, read back with Python's poplib and imaplib, and
 * compared byte for byte with the upstream Maildir files, modulo what Dovecot legitimately
 * changes on the wire (see `popWire` / `imapWire`). Also: concurrent instances get distinct
 * ports and DIRs, and `stop()` leaves no process, listener or directory behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { corpus } from '../fixtures/corpus.js';
import { imaplibFetchAll, poplibFetchAll } from '../support/python.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

/** Bare LF → CRLF (Dovecot sends CRLF line ends over both protocols). */
function crlf(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
}

/** What Dovecot's POP3 RETR carries for a stored message: CRLF line ends, and a CRLF added when the last line lacks one. */
function popWire(raw: Buffer): Buffer {
  const b = crlf(raw);
  return b.length === 0 || b.at(-1) === 0x0a ? b : Buffer.concat([b, Buffer.from('\r\n')]);
}

/** What Dovecot's IMAP BODY[] carries: CRLF line ends, nothing appended, NUL bytes replaced by 0x80. */
function imapWire(raw: Buffer): Buffer {
  const b = crlf(raw);
  for (let i = b.indexOf(0); i !== -1; i = b.indexOf(0, i + 1)) b[i] = 0x80;
  return b;
}

/** Upstream Maildir files of a folder, keyed by the value of `headerName`. */
function upstreamBy(dir: string, headerName: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const re = new RegExp(`^${headerName}: *(\\S+)`, 'mi');
  for (const sub of ['cur', 'new']) {
    for (const f of readdirSync(join(dir, sub))) {
      const raw = readFileSync(join(dir, sub, f));
      const m = re.exec(raw.subarray(0, 4096).toString('latin1'));
      assert.ok(m, `${f} has no ${headerName}`);
      out.set(m[1]!, raw);
    }
  }
  return out;
}

function headerOf(body: Buffer, name: string): string {
  const m = new RegExp(`^${name}: *(\\S+)`, 'mi').exec(body.subarray(0, 4096).toString('latin1'));
  assert.ok(m, `fetched message without ${name}`);
  return m[1]!;
}

function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  assert.fail(
    `${what}: ${actual.length} bytes vs ${expected.length} expected; first difference at ${i}: ` +
      `${JSON.stringify(actual.subarray(i, i + 20).toString('latin1'))} vs ${JSON.stringify(expected.subarray(i, i + 20).toString('latin1'))}`,
  );
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('testbed support', () => {
  let tb: Testbed;
  before(async () => {
    tb = await startTestbed();
  });
  after(async () => {
    await tb?.stop();
  });

  test('seeded messages: poplib and imaplib return the upstream bytes', async () => {
    await tb.seed('alice', 20, undefined, { reset: true });
    assert.equal(tb.countUpstream('alice'), 20);
    assert.equal(tb.countUpstream('alice', 'Archive'), 5);
    const upstream = upstreamBy(tb.maildir('alice'), 'X-Seed-Index');
    assert.equal(upstream.size, 20);

    const pop = await poplibFetchAll(tb.pop3Port, 'alice', 'alicepw');
    assert.equal(pop.length, 20);
    pop.forEach((body, i) => {
      const idx = headerOf(body, 'X-Seed-Index');
      assert.equal(idx, String(i + 1), 'POP3 order follows the seed index');
      assertSameBytes(body, popWire(upstream.get(idx)!), `POP3 message ${idx}`);
    });

    const imap = await imaplibFetchAll(tb.imapPort, 'alice', 'alicepw');
    assert.equal(imap.length, 20);
    for (const { uid, body } of imap) {
      const idx = headerOf(body, 'X-Seed-Index');
      assert.equal(idx, String(uid), 'UIDs follow the seed index');
      assertSameBytes(body, imapWire(upstream.get(idx)!), `IMAP message ${idx}`);
    }
  });

  test('the hostile corpus survives a round trip through Dovecot', async () => {
    const msgs = corpus();
    for (const m of msgs) await tb.appendMessage('bob', m.raw);
    await tb.appendMessage('bob', msgs[0]!.raw, 'Archive');
    assert.equal(tb.countUpstream('bob'), msgs.length);
    assert.equal(tb.countUpstream('bob', 'Archive'), 1);
    const byName = new Map(msgs.map((m) => [m.name, m.raw]));
    // The corpus helper and the upstream files agree
    for (const [name, raw] of upstreamBy(tb.maildir('bob'), 'X-Corpus'))
      assertSameBytes(raw, byName.get(name)!, `stored ${name}`);

    const pop = await poplibFetchAll(tb.pop3Port, 'bob', 'bobpw');
    assert.equal(pop.length, msgs.length);
    for (const body of pop) {
      const name = headerOf(body, 'X-Corpus');
      assertSameBytes(body, popWire(byName.get(name)!), `POP3 ${name}`);
    }
    const imap = await imaplibFetchAll(tb.imapPort, 'bob', 'bobpw');
    assert.equal(imap.length, msgs.length);
    for (const { body } of imap) {
      const name = headerOf(body, 'X-Corpus');
      assertSameBytes(body, imapWire(byName.get(name)!), `IMAP ${name}`);
    }
    const archive = await imaplibFetchAll(tb.imapPort, 'bob', 'bobpw', 'Archive');
    assert.equal(archive.length, 1);
    assertSameBytes(archive[0]!.body, imapWire(msgs[0]!.raw), 'IMAP Archive');
  });

  test('concurrent instances get their own ports and DIRs; stop() cleans up', async () => {
    const [a, b] = await Promise.all([startTestbed({ postfix: false }), startTestbed({ postfix: false })]);
    const portsA = [a.imapPort, a.imapsPort, a.pop3Port, a.pop3sPort, a.smtpPort, a.smtpsPort];
    const portsB = [b.imapPort, b.imapsPort, b.pop3Port, b.pop3sPort, b.smtpPort, b.smtpsPort];
    assert.equal(new Set([...portsA, ...portsB, tb.pop3Port, tb.imapPort]).size, 14);
    assert.notEqual(a.dir, b.dir);
    assert.equal(a.hasPostfix, false);
    assert.ok((await listening(a.pop3Port)) && (await listening(b.imapPort)));
    const pidA = Number(readFileSync(join(a.dir, 'run/master.pid'), 'utf8'));
    await Promise.all([a.stop(), b.stop()]);
    assert.ok(!existsSync(a.dir) && !existsSync(b.dir), 'DIRs removed');
    assert.ok(!alive(pidA), 'Dovecot master gone');
    assert.ok(!(await listening(a.pop3Port)) && !(await listening(b.imapPort)), 'no listener left');
    await a.stop(); // idempotent
  });

  test('Postfix runs by default as root (and only then: its master needs root)', async () => {
    const root = process.getuid?.() === 0;
    assert.equal(tb.hasPostfix, root);
    assert.equal(await listening(tb.smtpPort), root);
  });
});
