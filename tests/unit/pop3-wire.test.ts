/**
 * The shared POP3 wire codec: line framing, dot-stuffing both ways, the CRLF sizer (the LIST octet
 * count) and status lines. The property test checks the streaming codec against a byte-by-byte
 * reference on random messages and random segmentations.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CrlfSizer,
  DotStuffer,
  DotUnstuffer,
  dotStuff,
  formatStatusLine,
  hasResponseCode,
  LineReader,
  LineTooLongError,
  parseStatusLine,
} from '../../src/shared/pop3-wire/index.js';

/** mulberry32: a small seeded PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Reference: bare LF → CRLF, final CRLF if non-empty and not ending in LF. */
function normalise(msg: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < msg.length; i++) {
    if (msg[i] === 0x0a && (i === 0 || msg[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(msg[i]!);
  }
  if (msg.length && msg[msg.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Buffer.from(out);
}

/** Reference: dot-stuff normalised bytes line by line, then the terminator; counts the dots. */
function stuffReference(norm: Buffer): { wire: Buffer; dots: number } {
  const out: number[] = [];
  let dots = 0;
  let atStart = true;
  for (const b of norm) {
    if (atStart && b === 0x2e) {
      out.push(0x2e);
      dots++;
    }
    out.push(b);
    atStart = b === 0x0a;
  }
  out.push(0x2e, 0x0d, 0x0a);
  return { wire: Buffer.from(out), dots };
}

function randomMessage(r: () => number): Buffer {
  const tokens = [
    () => Buffer.from('\r\n'),
    () => Buffer.from('\n'),
    () => Buffer.from('\r'),
    () => Buffer.from('.'),
    () => Buffer.from('\r\n.\r\n'),
    () => Buffer.from('\n.\n'),
    () => Buffer.from('..'),
    () => Buffer.from([0]),
    () => Buffer.from([0xff, 0x80, 0xe9]),
    () => Buffer.from('\r\r\n'),
    () => Buffer.from('Subject: x'),
    () => Buffer.from('.\r'),
    () => Buffer.from(Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256))),
  ];
  const parts: Buffer[] = [];
  const n = Math.floor(r() * 60);
  for (let i = 0; i < n; i++) parts.push(tokens[Math.floor(r() * tokens.length)]!());
  return Buffer.concat(parts);
}

function segment(buf: Buffer, r: () => number): Buffer[] {
  const out: Buffer[] = [];
  const max = r() < 0.3 ? 1 : 1 + Math.floor(r() * 17);
  for (let i = 0; i < buf.length; ) {
    const len = 1 + Math.floor(r() * max);
    out.push(buf.subarray(i, i + len));
    i += len;
  }
  return out;
}

function unstuffAll(chunks: Buffer[]): { data: Buffer; rest: Buffer; done: boolean } {
  const u = new DotUnstuffer();
  const data: Buffer[] = [];
  const rest: Buffer[] = [];
  for (const c of chunks) {
    const res = u.push(c);
    data.push(res.data);
    rest.push(res.rest);
  }
  return { data: Buffer.concat(data), rest: Buffer.concat(rest), done: u.done };
}

test('property: stuff → unstuff round-trips, sizer equals wire minus dots minus terminator', () => {
  const r = rng(0x10ca1);
  for (let iter = 0; iter < 3000; iter++) {
    const msg = randomMessage(r);
    const norm = normalise(msg);
    const { wire, dots } = stuffReference(norm);

    const stuffer = new DotStuffer();
    const out = segment(msg, r).map((c) => stuffer.push(c));
    out.push(stuffer.end());
    const streamed = Buffer.concat(out);
    assert.deepEqual(streamed, wire, `stuffer, iteration ${iter}`);

    const sizer = new CrlfSizer();
    for (const c of segment(msg, r)) sizer.update(c);
    assert.equal(sizer.size, norm.length, `sizer vs normalised, iteration ${iter}`);
    assert.equal(sizer.size, streamed.length - dots - 3, `sizer vs writer, iteration ${iter}`);

    const next = Buffer.from('+OK next\r\n');
    const back = unstuffAll(segment(Buffer.concat([wire, next]), r));
    assert.ok(back.done);
    assert.deepEqual(back.data, norm, `round trip, iteration ${iter}`);
    assert.deepEqual(back.rest, next, `pipelined rest, iteration ${iter}`);
  }
});

test('property: a sloppy server (bare LF kept, dots stuffed) round-trips byte-exact', () => {
  const r = rng(0xbad1f);
  for (let iter = 0; iter < 2000; iter++) {
    const msg = randomMessage(r);
    // What such a server sends: lines as stored, a final line end added, dots stuffed.
    const body = msg.length && msg[msg.length - 1] !== 0x0a ? Buffer.concat([msg, Buffer.from('\r\n')]) : msg;
    const { wire } = stuffReference(body);
    const back = unstuffAll(segment(wire, r));
    assert.ok(back.done);
    assert.deepEqual(back.data, body, `iteration ${iter}`);
  }
});

test('property: NUL → 0x80 replacement changes nothing else', () => {
  const r = rng(7);
  for (let iter = 0; iter < 500; iter++) {
    const msg = randomMessage(r);
    const s = new DotStuffer({ replaceNul: true });
    const wire = Buffer.concat([...segment(msg, r).map((c) => s.push(c)), s.end()]);
    const expected = stuffReference(normalise(Buffer.from(msg.map((b) => (b === 0 ? 0x80 : b))))).wire;
    assert.deepEqual(wire, expected);
    assert.equal(wire.indexOf(0), -1);
  }
  const original = Buffer.from('a\0b\r\n');
  new DotStuffer({ replaceNul: true }).push(original);
  assert.deepEqual(original, Buffer.from('a\0b\r\n'), 'input buffer not modified');
});

test('unstuffer: terminator split at every offset', () => {
  const wire = Buffer.from('Subject: x\r\n\r\n..dot\r\nlast\r\n.\r\n+OK');
  for (let cut = 1; cut < wire.length; cut++) {
    const res = unstuffAll([wire.subarray(0, cut), wire.subarray(cut)]);
    assert.equal(res.data.toString('latin1'), 'Subject: x\r\n\r\n.dot\r\nlast\r\n', `cut ${cut}`);
    assert.equal(res.rest.toString(), '+OK', `cut ${cut}`);
  }
});

test('unstuffer: a chunk that is exactly "." and 1-byte chunks', () => {
  const wire = Buffer.from('a\r\n..b\r\n.\r\n');
  const dotChunk = unstuffAll([
    Buffer.from('a\r\n'),
    Buffer.from('.'),
    Buffer.from('.b\r\n'),
    Buffer.from('.'),
    Buffer.from('\r\n'),
  ]);
  assert.equal(dotChunk.data.toString(), 'a\r\n.b\r\n');
  assert.ok(dotChunk.done);
  const bytes = unstuffAll([...wire].map((b) => Buffer.from([b])));
  assert.equal(bytes.data.toString(), 'a\r\n.b\r\n');
  assert.ok(bytes.done);
});

test('unstuffer: bare LF lines, ".\\n" terminator, ".\\rX" and an empty body', () => {
  const sloppy = unstuffAll([Buffer.from('a\nb\r\n..c\n.\rx\n.\n')]);
  assert.equal(sloppy.data.toString('latin1'), 'a\nb\r\n.c\n\rx\n');
  assert.ok(sloppy.done);
  const empty = unstuffAll([Buffer.from('.\r\nNEXT')]);
  assert.equal(empty.data.length, 0);
  assert.equal(empty.rest.toString(), 'NEXT');
  const split = unstuffAll([Buffer.from('x\r\n.'), Buffer.from('\r'), Buffer.from('y\r\n.\r\n')]);
  assert.equal(split.data.toString('latin1'), 'x\r\n\ry\r\n');
  const u = new DotUnstuffer();
  assert.equal(u.push(Buffer.from('.\r\n')).done, true);
  assert.equal(u.push(Buffer.from('more')).rest.toString(), 'more', 'bytes after done are handed back');
});

test('unstuffer: 30 MB in 64 KiB chunks, byte-exact (its speed: bench/dot-stuffing.ts)', () => {
  const line = Buffer.from('.A line of a big message that starts with a dot, seventy-odd chars\r\n');
  const body = Buffer.alloc(line.length * Math.floor((30 * 1024 * 1024) / line.length));
  for (let o = 0; o < body.length; o += line.length) line.copy(body, o);
  const stuffer = new DotStuffer();
  const wire = Buffer.concat([stuffer.push(body), stuffer.end()]);
  const u = new DotUnstuffer();
  let total = 0;
  for (let o = 0; o < wire.length; o += 65536) total += u.push(wire.subarray(o, o + 65536)).data.length;
  assert.ok(u.done);
  assert.equal(total, body.length);
  assert.equal(wire.length, body.length + body.length / line.length + 3);
});

test('CrlfSizer: empty, bare LF, CR split from LF across chunks, no final newline', () => {
  const size = (...chunks: string[]) => {
    const s = new CrlfSizer();
    for (const c of chunks) s.update(Buffer.from(c, 'latin1'));
    return s.size;
  };
  assert.equal(size(), 0);
  assert.equal(size(''), 0);
  assert.equal(size('a\n'), 3);
  assert.equal(size('a\r', '\nb'), 6);
  assert.equal(size('a\r'), 4);
  assert.equal(size('\n', '\n'), 4);
});

test('dotStuff(): async iterable to complete wire form', async () => {
  const chunks: Buffer[] = [];
  for await (const c of dotStuff([Buffer.from('.a\n'), Buffer.from('b')])) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), '..a\r\nb\r\n.\r\n');
  const empty: Buffer[] = [];
  for await (const c of dotStuff([])) empty.push(c);
  assert.equal(Buffer.concat(empty).toString(), '.\r\n');
});

test('LineReader: framing across chunks, CRLF and LF, CR kept inside a line', () => {
  const lr = new LineReader(100);
  lr.push(Buffer.from('+OK a\r'));
  assert.equal(lr.readLine(), null);
  lr.push(Buffer.from('\nsecond\nthi'));
  lr.push(Buffer.from('rd\r\r\nrest'));
  assert.equal(lr.readLine()?.toString(), '+OK a');
  assert.equal(lr.readLine()?.toString(), 'second');
  assert.equal(lr.readLine()?.toString(), 'third\r');
  assert.equal(lr.readLine(), null);
  assert.equal(lr.buffered, 4);
  lr.push(Buffer.from('\nafter'));
  assert.equal(lr.takeRest().toString(), 'rest\nafter');
  assert.equal(lr.buffered, 0);
});

test('LineReader: maximum line length, bounded memory, recovery after an over-long line', () => {
  const lr = new LineReader(10);
  lr.push(Buffer.from('0123456789\r\n01234567890\r\nok\r\n'));
  assert.equal(lr.readLine()?.toString(), '0123456789', 'exactly the maximum is accepted');
  assert.throws(() => lr.readLine(), LineTooLongError);
  assert.equal(lr.readLine()?.toString(), 'ok', 'reading resumes after the long line');

  const slow = new LineReader(1000);
  let threw = 0;
  for (let i = 0; i < 100_000; i++) {
    slow.push(Buffer.from('x'));
    try {
      slow.readLine();
    } catch (err) {
      assert.ok(err instanceof LineTooLongError);
      threw++;
    }
    assert.ok(slow.buffered <= 1002, 'an endless line is not buffered');
  }
  assert.equal(threw, 1, 'thrown once per long line');
  slow.push(Buffer.from('tail\nnext\n'));
  assert.equal(slow.readLine()?.toString(), 'next');
});

test('status lines: +OK, -ERR, response codes, continuation, garbage', () => {
  assert.deepEqual(parseStatusLine(Buffer.from('+OK 2 320')), { kind: 'ok', text: '2 320' });
  assert.deepEqual(parseStatusLine('+OK'), { kind: 'ok', text: '' });
  assert.deepEqual(parseStatusLine('-ERR [IN-USE] mailbox locked'), {
    kind: 'err',
    code: 'IN-USE',
    text: 'mailbox locked',
  });
  assert.deepEqual(parseStatusLine('-ERR [SYS/TEMP] try later'), { kind: 'err', code: 'SYS/TEMP', text: 'try later' });
  assert.deepEqual(parseStatusLine('-err [auth] bad'), { kind: 'err', code: 'AUTH', text: 'bad' });
  assert.deepEqual(parseStatusLine('+ '), { kind: 'continue', text: '' });
  assert.deepEqual(parseStatusLine('+ eHl6'), { kind: 'continue', text: 'eHl6' });
  assert.equal(parseStatusLine('+OKAY'), null);
  assert.equal(parseStatusLine('* OK imap'), null);
  assert.equal(parseStatusLine(''), null);
  const st = parseStatusLine('-ERR [SYS/TEMP] x')!;
  assert.ok(hasResponseCode(st, 'SYS'));
  assert.ok(hasResponseCode(st, 'sys/temp'));
  assert.ok(!hasResponseCode(st, 'SYS/PERM'));
  assert.equal(formatStatusLine(true, '2 320'), '+OK 2 320\r\n');
  assert.equal(formatStatusLine(false, 'locked', 'IN-USE'), '-ERR [IN-USE] locked\r\n');
  assert.equal(formatStatusLine(true), '+OK\r\n');
  assert.throws(() => formatStatusLine(false, 'a\r\n+OK'), RangeError);
});
