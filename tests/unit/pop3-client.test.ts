/**
 * The upstream POP3 client against the scriptable fake (real sockets on 127.0.0.1:0):
 * byte-exactness, segmentation, timeouts, broken connections, -ERR mapping, login
 * failures, pipelining, backpressure and TLS/STLS.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { AuthError, TemporaryError, ThrottledError } from '../../src/shared/errors.js';
import { Pop3Client, type Pop3ClientOptions, Pop3ReplyError } from '../../src/upstream/pop3/client.js';
import {
  expectedRetr,
  type FakeAction,
  type FakePop3,
  type FakePop3Options,
  startFakePop3,
  wireBody,
} from '../fakes/fake-pop3.js';
import { settlesAtOnce } from '../support/localpost.js';
import { selfSignedCert } from '../support/smtp.js';

const fakes: FakePop3[] = [];
after(async () => {
  for (const f of fakes) await f.close();
});

async function fake(opts: FakePop3Options = {}): Promise<FakePop3> {
  const f = await startFakePop3(opts);
  fakes.push(f);
  return f;
}

function connect(f: FakePop3, extra: Partial<Pop3ClientOptions> = {}): Promise<Pop3Client> {
  return Pop3Client.connect({ host: '127.0.0.1', port: f.port, tls: 'none', timeoutMs: 5000, ...extra });
}

async function loggedIn(opts: FakePop3Options = {}, extra: Partial<Pop3ClientOptions> = {}) {
  const f = await fake(opts);
  const c = await connect(f, extra);
  await c.login('alice', 'secret');
  return { f, c };
}

/** A sink that collects everything written to it. */
function collector(): Writable & { bytes(): Buffer } {
  const parts: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  }) as Writable & { bytes(): Buffer };
  w.bytes = () => Buffer.concat(parts);
  return w;
}

function hasher(): Writable & { digest(): string } {
  const h = createHash('sha256');
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb();
    },
  }) as Writable & { digest(): string };
  w.digest = () => h.digest('hex');
  return w;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const TRICKY = Buffer.concat([
  Buffer.from('From: a@example.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n'),
  Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0xff, 0x80, 0x0d, 0x0a]),
  Buffer.from('.hidden line starts with dot\r\n.\r\n..two dots\r\n'),
  Buffer.from([0x00, 0x01, 0x00, 0x0d, 0x0a]),
  Buffer.from('bare LF line\nlone CR\rin line\r\n.\n'),
  Buffer.from(`${'x'.repeat(20_000)}\r\n`),
  Buffer.from('last line, no newline'),
]);

test('happy path: CAPA, AUTH PLAIN, STAT, LIST, UIDL, RETR, DELE, QUIT', async () => {
  const msgs = [TRICKY, Buffer.from('Subject: 2\r\n\r\nsecond\r\n')];
  const { f, c } = await loggedIn({ messages: msgs });
  assert.deepEqual(c.capabilities.get('SASL'), ['PLAIN']);
  assert.equal(c.pipelining, true);
  assert.ok(f.log.some((l) => l.startsWith('C: AUTH PLAIN ')));
  assert.deepEqual(await c.stat(), { count: 2, octets: expectedRetr(msgs[0]!).length + expectedRetr(msgs[1]!).length });
  assert.deepEqual(
    [...(await c.list())],
    [
      [1, expectedRetr(msgs[0]!).length],
      [2, expectedRetr(msgs[1]!).length],
    ],
  );
  assert.deepEqual(await c.uidl(), [
    { msg: 1, uidl: 'uid-1' },
    { msg: 2, uidl: 'uid-2' },
  ]);
  const sink = collector();
  const n = await c.retr(1, sink);
  assert.deepEqual(sink.bytes(), expectedRetr(TRICKY), 'byte-exact: 8-bit, NUL, dot lines, 20,000-char line');
  assert.equal(n, expectedRetr(TRICKY).length);
  assert.equal(sink.writableEnded, false, 'retr does not end the sink');
  await c.dele(1);
  await c.noop();
  await c.quit();
  assert.deepEqual(f.committed, [[1]]);
  await assert.rejects(c.noop(), TemporaryError, 'calls after QUIT reject');
});

test('USER/PASS when SASL PLAIN is not offered; the transcript never shows the password', async () => {
  const lines: string[] = [];
  const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
  const { f, c } = await loggedIn({ capa: ['USER', 'UIDL'] }, { log });
  assert.equal(c.pipelining, false);
  assert.ok(f.log.includes('C: USER alice'));
  assert.ok(f.log.includes('C: PASS secret'));
  await c.quit();
  const sasl = await loggedIn({}, { log });
  await sasl.c.quit();
  const transcript = lines.join('');
  assert.match(transcript, /PASS \*\*\*\*/);
  assert.match(transcript, /AUTH PLAIN \*\*\*\*/);
  assert.ok(!transcript.includes('secret'), 'password not logged');
  assert.ok(!transcript.includes(Buffer.from('\0alice\0secret').toString('base64')), 'AUTH payload not logged');
});

test('no CAPA support: old server still works', async () => {
  const { c } = await loggedIn({ capa: null });
  assert.equal(c.capabilities.size, 0);
  assert.equal((await c.stat()).count, 1);
  c.close();
});

for (const rawLineEnds of [false, true]) {
  test(`byte-exact RETR from a ${rawLineEnds ? 'sloppy (bare LF kept)' : 'correct'} server in many segmentations`, async () => {
    let plan: FakeAction | undefined;
    const { c } = await loggedIn({
      messages: [TRICKY],
      rawLineEnds,
      onCommand: (v) => (v === 'RETR' ? plan : undefined),
    });
    const expected = expectedRetr(TRICKY, rawLineEnds);
    const wire = Buffer.concat([
      Buffer.from(`+OK ${wireBody(TRICKY, rawLineEnds).length} octets\r\n`),
      wireBody(TRICKY, rawLineEnds),
    ]);
    const end = wire.length;
    const stuffedDot = wire.indexOf('\r\n..two') + 2;
    const plans: Array<[string, number | number[], number]> = [
      ['terminator split ".\\r" | "\\n"', [end - 1], 30],
      ['terminator split "\\r\\n" | ".\\r\\n"', [end - 3], 30],
      ['terminator split "\\r" | "\\n.\\r\\n"', [end - 4], 30],
      ['each terminator byte alone', [end - 5, end - 4, end - 3, end - 2, end - 1], 20],
      ['a segment that is exactly "."', [stuffedDot, stuffedDot + 1], 30],
      ['status line split from the body', [5, wire.indexOf('\n') + 1], 20],
      ['7-byte segments', 7, 0],
    ];
    for (const [name, segments, segmentDelayMs] of plans) {
      plan = { segments, segmentDelayMs };
      const sink = collector();
      const seen = await c.retr(1, sink);
      assert.deepEqual(sink.bytes(), expected, name);
      assert.equal(seen, expected.length, name);
      await c.noop(); // still in sync
    }
    c.close();
  });
}

test('1-byte segments', async () => {
  const msg = Buffer.from('a\r\n.\r\n..b\r\nc');
  const { c } = await loggedIn({
    messages: [msg],
    onCommand: (v) => (v === 'RETR' ? { segments: 1, segmentDelayMs: 1 } : undefined),
  });
  const sink = collector();
  await c.retr(1, sink);
  assert.deepEqual(sink.bytes(), Buffer.from('a\r\n.\r\n..b\r\nc\r\n'));
  c.close();
});

test('a stalled server: rejects with ETIMEDOUT after timeoutMs; later calls reject at once', async () => {
  const { c } = await loggedIn({ onCommand: (v) => (v === 'RETR' ? { stall: true } : undefined) }, { timeoutMs: 300 });
  const err = await c.retr(1, collector()).catch((e: unknown) => e);
  assert.ok(err instanceof TemporaryError, String(err));
  assert.equal(err.code, 'ETIMEDOUT');
  assert.match(err.message, /no reply to RETR 1 within 300 ms/, 'the configured timeout, not the default');
  const later = c.noop();
  assert.ok(await settlesAtOnce(later), 'a later call does not wait for the server');
  await assert.rejects(later, (e: unknown) => e instanceof TemporaryError && e.code === 'ETIMEDOUT');
});

test('a server that stalls mid-body, or never greets, times out too', async () => {
  const { c } = await loggedIn(
    { onCommand: (v) => (v === 'RETR' ? { cutAfter: 1e9, reply: '+OK\r\npartial body\r\n' } : undefined) },
    { timeoutMs: 300 },
  );
  await assert.rejects(c.retr(1, collector()), (e: unknown) => e instanceof TemporaryError && e.code === 'ETIMEDOUT');
  const mute = await fake({ greeting: '+OK', defaults: { delayMs: 60_000 } });
  await assert.rejects(
    connect(mute, { timeoutMs: 300 }),
    (e: unknown) => e instanceof TemporaryError && e.code === 'ETIMEDOUT',
  );
});

test('connection cut mid-RETR: rejects, no hang, the sink keeps what arrived', async () => {
  const big = Buffer.alloc(200_000, 'y\r\n');
  const { c } = await loggedIn({
    messages: [big],
    onCommand: (v) => (v === 'RETR' ? { cutAfter: 100_000 } : undefined),
  });
  const sink = collector();
  const err = await c.retr(1, sink).catch((e: unknown) => e);
  assert.ok(err instanceof TemporaryError && !(err instanceof Pop3ReplyError), String(err));
  assert.ok(sink.bytes().length < big.length);
  await assert.rejects(c.noop(), TemporaryError);
});

test('-ERR on DELE → Pop3ReplyError; RETR of a missing message; connection stays usable', async () => {
  const { c } = await loggedIn({
    onCommand: (v) => (v === 'DELE' ? { reply: '-ERR [SYS/TEMP] cannot delete\r\n' } : undefined),
  });
  const err = await c.dele(1).catch((e: unknown) => e);
  assert.ok(err instanceof Pop3ReplyError);
  assert.equal(err.responseCode, 'SYS/TEMP');
  assert.equal(err.text, 'cannot delete');
  assert.equal(err.command, 'DELE 1');
  await assert.rejects(c.retr(9, collector()), Pop3ReplyError);
  assert.equal((await c.stat()).count, 1);
  await c.quit();
});

test('login failures: wrong password → AuthError; [SYS/TEMP] → ThrottledError; [IN-USE] → Pop3ReplyError', async () => {
  for (const capa of [undefined, ['USER']]) {
    const f = await fake({ capa });
    const c = await connect(f);
    await assert.rejects(
      c.login('alice', 'wrong'),
      (e: unknown) => e instanceof AuthError && /login refused/.test(e.message),
    );
    c.close();
  }
  for (const code of ['SYS/TEMP', 'IN-USE']) {
    const f = await fake({
      capa: ['USER'],
      onCommand: (v) => (v === 'PASS' ? { reply: `-ERR [${code}] busy\r\n` } : undefined),
    });
    const c = await connect(f);
    const err = await c.login('alice', 'secret').catch((e: unknown) => e);
    assert.ok(err instanceof TemporaryError && !(err instanceof AuthError), String(err));
    if (code === 'SYS/TEMP') {
      // the server asks us to slow down: the reply is kept as the cause
      assert.ok(err instanceof ThrottledError, String(err));
      assert.ok(err.cause instanceof Pop3ReplyError && err.cause.responseCode === code);
    } else {
      assert.ok(err instanceof Pop3ReplyError && !(err instanceof ThrottledError), String(err));
      assert.equal(err.responseCode, code);
    }
    c.close();
  }
});

test('deleMany is pipelined when PIPELINING is offered, sequential otherwise; all replies read', async () => {
  const slowDele = (v: string) => (v === 'DELE' ? { delayMs: 30 } : undefined);
  const piped = await loggedIn({ messages: [TRICKY, TRICKY, TRICKY], onCommand: slowDele });
  await piped.c.deleMany([1, 2, 3]);
  const order = piped.f.log.filter((l) => /^C: DELE|^S: \+OK deleted/.test(l)).map((l) => l.slice(0, 1));
  assert.deepEqual(order, ['C', 'C', 'C', 'S', 'S', 'S'], 'all DELEs sent before the first reply');
  await piped.c.quit();
  assert.deepEqual(piped.f.committed, [[1, 2, 3]]);

  const seq = await loggedIn({ messages: [TRICKY, TRICKY], capa: ['USER'], onCommand: slowDele });
  await seq.c.deleMany([1, 2]);
  const order2 = seq.f.log.filter((l) => /^C: DELE|^S: \+OK deleted/.test(l)).map((l) => l.slice(0, 1));
  assert.deepEqual(order2, ['C', 'S', 'C', 'S']);
  seq.c.close();

  const bad = await loggedIn({ messages: [TRICKY, TRICKY] });
  await assert.rejects(
    bad.c.deleMany([1, 7, 2]),
    (e: unknown) => e instanceof Pop3ReplyError && e.command === 'DELE 7',
  );
  assert.equal((await bad.c.stat()).count, 0, 'every reply consumed; DELE 2 applied');
  bad.c.close();
  assert.deepEqual(bad.f.committed, [], 'close() without QUIT deletes nothing');
});

test('concurrent calls are serialised and matched in order', async () => {
  const { c } = await loggedIn({ messages: [TRICKY, Buffer.from('b\r\n')] });
  const sink = collector();
  const [stat, list, uidl, n] = await Promise.all([c.stat(), c.list(), c.uidl(), c.retr(2, sink), c.noop()]);
  assert.equal(stat.count, 2);
  assert.equal(list.get(2), 3);
  assert.equal(uidl[1]!.uidl, 'uid-2');
  assert.equal(n, 3);
  c.close();
});

test('with PIPELINING, RETRs and the command after them go out before the first RETR reply', async () => {
  const sent = (f: FakePop3, line: string) => f.log.includes(`C: ${line}`);
  let f: FakePop3 | undefined;
  // RETR 1 is answered only once RETR 2 and NOOP have arrived: they must not wait for its reply
  const onCommand = async (verb: string, args: string[]) => {
    if (verb !== 'RETR' || args[0] !== '1') return undefined;
    for (let i = 0; i < 200 && !(f && sent(f, 'RETR 2') && sent(f, 'NOOP')); i++) await sleep(10);
    return undefined;
  };
  const r = await loggedIn({ messages: [TRICKY, Buffer.from('b\r\n')], onCommand });
  f = r.f;
  const [one, two] = [collector(), collector()];
  const [n1, n2] = await Promise.all([r.c.retr(1, one), r.c.retr(2, two), r.c.noop()]);
  assert.equal(n1, expectedRetr(TRICKY).length);
  assert.equal(n2, 3);
  assert.equal(sha(one.bytes()), sha(expectedRetr(TRICKY)));
  assert.equal(two.bytes().toString(), 'b\r\n');
  const log = r.f.log.slice(r.f.log.indexOf('C: RETR 1'));
  assert.deepEqual(log.slice(0, 3), ['C: RETR 1', 'C: RETR 2', 'C: NOOP'], 'all three sent before any reply');
  r.c.close();
});

test('TOP n 0: the header un-stuffed and pipelined; -ERR is a Pop3ReplyError; hasTop follows CAPA', async () => {
  let f: FakePop3 | undefined;
  const onCommand = async (verb: string, args: string[]): Promise<FakeAction | undefined> => {
    if (verb !== 'TOP') return undefined;
    if (args[0] === '3') return { reply: '-ERR no such message\r\n' };
    // TOP 1 is answered only once TOP 2 has arrived: it must not wait for the reply before it
    for (let i = 0; i < 200 && args[0] === '1' && !f?.log.includes('C: TOP 2 0'); i++) await sleep(10);
    return { reply: `+OK\r\nMessage-ID: <h${args[0]}@x>\r\n..X-Dot: 1\r\n\r\n.\r\n` };
  };
  const r = await loggedIn({ messages: [TRICKY, TRICKY], onCommand });
  f = r.f;
  const c = r.c;
  assert.equal(c.hasTop, true);
  const [h1, h2] = await Promise.all([c.head(1, 0), c.head(2, 0)]);
  assert.equal(h1.toString(), 'Message-ID: <h1@x>\r\n.X-Dot: 1\r\n\r\n');
  assert.equal(h2.toString(), 'Message-ID: <h2@x>\r\n.X-Dot: 1\r\n\r\n');
  const log = r.f.log.slice(r.f.log.indexOf('C: TOP 1 0'));
  assert.deepEqual(log.slice(0, 2), ['C: TOP 1 0', 'C: TOP 2 0'], 'both sent before any reply');
  await assert.rejects(c.head(3, 0), Pop3ReplyError);
  c.close();
  const old = await loggedIn({ capa: ['USER', 'UIDL'] });
  assert.equal(old.c.hasTop, false, 'CAPA without TOP');
  old.c.close();
});

test('a sink that fails mid-RETR: the reply is drained, then the sink error is thrown', async () => {
  const big = Buffer.alloc(500_000, 'z\r\n');
  const { c } = await loggedIn({ messages: [big, Buffer.from('ok\r\n')] });
  let got = 0;
  const failing = new Writable({
    write(chunk: Buffer, _e, cb) {
      got += chunk.length;
      cb(got > 100_000 ? new Error('disk full') : undefined);
    },
  });
  failing.on('error', () => {});
  await assert.rejects(c.retr(1, failing), /disk full/);
  const sink = collector();
  await c.retr(2, sink);
  assert.equal(sink.bytes().toString(), 'ok\r\n', 'connection still in sync');
  c.close();
});

test('hostile server: an endless status line fails the connection, memory bounded', async () => {
  const { c } = await loggedIn({
    onCommand: (v) => (v === 'NOOP' ? { reply: Buffer.alloc(1_000_000, 'A') } : undefined),
  });
  await assert.rejects(c.noop(), (e: unknown) => e instanceof TemporaryError && e.code === 'EPROTO');
});

function bigMessage(size: number): Buffer {
  const pattern = Buffer.from(
    'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n' +
      '.leading dot line\r\n' +
      '\u00e9\u00ff 8-bit text\u0000 with a NUL and a bare LF\n',
    'latin1',
  );
  const msg = Buffer.alloc(size);
  Buffer.from('Subject: big\r\n\r\n').copy(msg);
  msg.fill(pattern, 16);
  return msg;
}

test('30 MB message: byte-exact, throughput', async () => {
  const msg = bigMessage(30 * 1024 * 1024);
  const { c } = await loggedIn({ messages: [msg] });
  const expected = sha(expectedRetr(msg));
  for (let run = 0; run < 2; run++) {
    const sink = hasher();
    const t0 = performance.now();
    const n = await c.retr(1, sink);
    const ms = performance.now() - t0;
    assert.equal(sink.digest(), expected);
    console.log(`  RETR 30 MB (run ${run + 1}): ${ms.toFixed(0)} ms, ${(n / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`);
  }
  c.close();
});

test('backpressure: a slow sink keeps memory bounded', async () => {
  const msg = bigMessage(30 * 1024 * 1024);
  const { c } = await loggedIn({ messages: [msg] });
  await c.retr(1, hasher()); // warm the fake's wire cache
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  let maxRss = rss0;
  let maxBuffered = 0;
  let writes = 0;
  const h = createHash('sha256');
  const slow = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      maxBuffered = Math.max(maxBuffered, this.writableLength);
      if (++writes % 64 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
      setTimeout(cb, 0);
    },
  });
  const t0 = performance.now();
  await c.retr(1, slow);
  console.log(
    `  slow sink: ${(performance.now() - t0).toFixed(0)} ms, ${writes} writes, max buffered ${maxBuffered} B, RSS +${((maxRss - rss0) / 1048576).toFixed(1)} MiB`,
  );
  assert.equal(h.digest('hex'), sha(expectedRetr(msg)));
  assert.ok(maxBuffered <= 16 * 1024 + 2 * 65536, `sink buffered at most ~2 reads (${maxBuffered})`);
  assert.ok(maxRss - rss0 < 25 * 1048576, `RSS growth ${(maxRss - rss0) / 1048576} MiB`);
  c.close();
});

/** The contents of a throw-away self-signed certificate for localhost and 127.0.0.1. */
function selfSigned(): { key: string; cert: string } {
  const made = selfSignedCert();
  try {
    return { key: readFileSync(made.key, 'utf8'), cert: readFileSync(made.cert, 'utf8') };
  } finally {
    rmSync(made.dir, { recursive: true, force: true });
  }
}

test('TLS: implicit and STLS with tlsCa; an untrusted certificate names the fix', async () => {
  const pair = selfSigned();
  const implicit = await fake({ tls: { mode: 'implicit', ...pair } });
  const err = await connect(implicit, { tls: 'implicit' }).catch((e: unknown) => e);
  assert.ok(err instanceof TemporaryError, String(err));
  assert.match(err.message, /set tlsCa: \/path\/to\/ca\.pem for this server/);
  const c1 = await connect(implicit, { tls: 'implicit', ca: pair.cert });
  await c1.login('alice', 'secret');
  assert.equal((await c1.stat()).count, 1);
  await c1.quit();

  const stls = await fake({ tls: { mode: 'starttls', ...pair } });
  const c2 = await connect(stls, { tls: 'starttls', ca: pair.cert, servername: 'localhost' });
  assert.ok(stls.log.includes('C: STLS'));
  assert.equal(c2.capabilities.has('STLS'), false, 'CAPA re-read after STLS');
  await c2.login('alice', 'secret');
  const sink = collector();
  await c2.retr(1, sink);
  assert.equal(sink.bytes().toString(), 'Subject: hello\r\n\r\nHi.\r\n');
  await c2.quit();
  await assert.rejects(connect(stls, { tls: 'starttls' }), /tlsCa/);
  const plainOnly = await fake();
  await assert.rejects(
    connect(plainOnly, { tls: 'starttls' }),
    (e: unknown) => e instanceof Pop3ReplyError && e.command === 'STLS',
  );
});

test('connect errors: refused port, TLS handshake timeout', async () => {
  const f = await fake();
  const port = f.port;
  await f.close();
  fakes.splice(fakes.indexOf(f), 1);
  await assert.rejects(
    Pop3Client.connect({ host: '127.0.0.1', port, tls: 'none' }),
    (e: unknown) => e instanceof TemporaryError && e.code === 'ECONNREFUSED',
  );
  // A TCP server that never speaks TLS: the handshake counts against connectTimeoutMs.
  const mute = net.createServer(() => {}).listen(0, '127.0.0.1');
  await once(mute, 'listening');
  const err = await Pop3Client.connect({
    host: '127.0.0.1',
    port: (mute.address() as net.AddressInfo).port,
    tls: 'implicit',
    connectTimeoutMs: 200,
  }).catch((e: unknown) => e);
  assert.ok(err instanceof TemporaryError && err.code === 'ETIMEDOUT', String(err));
  assert.match(err.message, /no connection within 200 ms/, 'the handshake counted against connectTimeoutMs');
  mute.close();
});
