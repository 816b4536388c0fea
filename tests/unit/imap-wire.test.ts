/**
 * The IMAP command reader and lexer (src/listeners/imap/command-reader.ts, lexer.ts): framing,
 * literals (RFC 3501 §4.3, LITERAL+ RFC 7888), raw-line mode, and hostile input. Memory is
 * checked by counting buffered bytes, never by time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Command, CommandReader, type ReaderEvent, type Token } from '../../src/listeners/imap/command-reader.js';

/** Feeds chunks, drains events; accepts sync literals when `accept` (writing nothing). */
function run(reader: CommandReader, chunks: (string | Buffer)[], accept = true): ReaderEvent[] {
  const out: ReaderEvent[] = [];
  const drain = (): void => {
    for (let ev = reader.next(); ev; ev = reader.next()) {
      out.push(ev);
      if (ev.kind === 'continue' && accept) reader.acceptLiteral();
    }
  };
  for (const c of chunks) {
    reader.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    drain();
  }
  return out;
}

function commands(text: string | (string | Buffer)[]): Command[] {
  const evs = run(new CommandReader(), typeof text === 'string' ? [text] : text);
  return evs.flatMap((e) => (e.kind === 'command' ? [e.command] : []));
}

/** Tokens as plain JSON-ish values for deepEqual: atoms bare, quoted as {q}, literals as {lit}. */
function plain(tokens: Token[]): unknown[] {
  return tokens.map((t) => {
    if (t.kind === 'atom') return t.value;
    if (t.kind === 'quoted') return { q: t.value };
    if (t.kind === 'literal') return { lit: t.value.toString('latin1') };
    return plain(t.items);
  });
}

test('RFC 3501 §8 client lines are framed into tag, name and arguments', () => {
  const cmds = commands(
    [
      'a001 login mrc secret',
      'a002 select inbox',
      'a003 fetch 12 full',
      'a004 fetch 12 body[header]',
      'a005 store 12 +flags \\deleted',
      'a006 logout',
      '',
    ].join('\r\n'),
  );
  assert.deepEqual(
    cmds.map((c) => [c.tag, c.name, c.uid, plain(c.args)]),
    [
      ['a001', 'LOGIN', false, ['mrc', 'secret']],
      ['a002', 'SELECT', false, ['inbox']],
      ['a003', 'FETCH', false, ['12', 'full']],
      ['a004', 'FETCH', false, ['12', 'body[header]']],
      ['a005', 'STORE', false, ['12', '+flags', '\\deleted']],
      ['a006', 'LOGOUT', false, []],
    ],
  );
});

test('bare LF ends a line; quoted strings unescape; lists nest; sections stay one atom', () => {
  const [c] = commands('t1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.100>) "a\\"b\\\\c"\n');
  assert.deepEqual(plain(c!.args), ['1:*', ['FLAGS', 'BODY.PEEK[HEADER.FIELDS (From "To")]<0.100>'], { q: 'a"b\\c' }]);
});

test('UID prefix: name is the subcommand and uid is set; UID alone is BAD', () => {
  const evs = run(new CommandReader(), [
    'A1 UID fetch 1:2 FLAGS\r\nA2 UID\r\nA3 uid expunge 3:5\r\nA4 UID LOGIN x y\r\n',
  ]);
  const [a, b, c, d] = evs;
  assert.ok(d?.kind === 'error' && d.tag === 'A4');
  assert.ok(a?.kind === 'command' && a.command.name === 'FETCH' && a.command.uid);
  assert.deepEqual(plain(a.command.args), ['1:2', 'FLAGS']);
  assert.ok(b?.kind === 'error' && b.tag === 'A2' && !b.fatal);
  assert.ok(c?.kind === 'command' && c.command.name === 'EXPUNGE' && c.command.uid);
});

test('a synchronizing literal asks for a continuation, keeps bytes exact (8-bit, NUL, CRLF)', () => {
  const r = new CommandReader();
  const body = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x41]);
  r.push(Buffer.from('A003 APPEND saved-messages (\\Seen) {6}\r\n'));
  const ev = r.next();
  assert.deepEqual(ev, { kind: 'continue', tag: 'A003', name: 'APPEND', size: 6 });
  assert.equal(r.next(), undefined, 'nothing more until the session decides');
  r.acceptLiteral();
  r.push(body.subarray(0, 3));
  assert.equal(r.next(), undefined);
  r.push(Buffer.concat([body.subarray(3), Buffer.from('\r\n')]));
  const done = r.next();
  assert.ok(done?.kind === 'command');
  const lit = done.command.args[2];
  assert.ok(lit?.kind === 'literal');
  assert.deepEqual(lit.value, body);
});

test('the session may refuse a literal: no bytes expected, next command reads normally', () => {
  const r = new CommandReader();
  const evs = run(r, ['A1 APPEND x {10}\r\n'], false);
  assert.equal(evs[0]?.kind, 'continue');
  r.rejectLiteral();
  assert.deepEqual(
    run(r, ['A2 NOOP\r\n']).map((e) => e.kind),
    ['command'],
  );
});

test('a sync literal over the cap is refused by the reader without a continuation', () => {
  const r = new CommandReader({ maxOtherLiteralSize: 100, maxLiteralSize: 1000 });
  const evs = run(r, ['A1 LOGIN {101}\r\nA3 APPEND x {1001}\r\nA2 APPEND x {1000}\r\n'], false);
  assert.deepEqual(
    evs.map((e) => [e.kind, 'tag' in e ? e.tag : undefined, e.kind === 'error' ? e.fatal : undefined]),
    [
      ['error', 'A1', false],
      ['error', 'A3', false],
      ['continue', 'A2', undefined],
    ],
  );
  // APPEND's own cap applies to A2: its 1000 bytes are read once accepted.
  r.acceptLiteral();
  const rest = run(r, [Buffer.alloc(1000, 0x61), '\r\nA5 NOOP\r\n']);
  assert.deepEqual(
    rest.map((e) => (e.kind === 'command' ? e.command.tag : e.kind)),
    ['A2', 'A5'],
  );
});

test('{99999999999}, {-1}, and {5+} with more on the line are BAD, not hangs', () => {
  const evs = run(new CommandReader(), ['A1 LOGIN {99999999999}\r\nA2 LOGIN {-1}\r\nA3 LOGIN {5+} x\r\nA4 NOOP\r\n']);
  assert.deepEqual(
    evs.map((e) => (e.kind === 'error' ? `${e.tag} ${e.fatal}` : e.kind)),
    ['A1 false', 'A2 false', 'A3 false', 'command'],
  );
});

test('LITERAL+: {n+} is read without a continuation; an oversize one is discarded then fatal', () => {
  const r = new CommandReader({ maxOtherLiteralSize: 10, maxDiscard: 50 });
  const ok = run(r, ['A1 LOGIN {3+}\r\nfoo {3+}\r\nbar\r\n']);
  assert.ok(ok[0]?.kind === 'command');
  assert.deepEqual(plain(ok[0].command.args), [{ lit: 'foo' }, { lit: 'bar' }]);
  const evs = run(r, ['A2 LOGIN {40+}\r\n', 'x'.repeat(39)]);
  assert.deepEqual(evs, [], 'bytes still being swallowed');
  const last = run(r, ['x\r\nA3 NOOP\r\n']);
  assert.deepEqual(last, [{ kind: 'error', tag: 'A2', error: 'literal too large', fatal: true, tooBig: true }]);
  assert.ok(r.dead);
  assert.equal(r.buffered, 0);
  const huge = new CommandReader({ maxOtherLiteralSize: 10, maxDiscard: 50 });
  const h = run(huge, ['A1 LOGIN {51+}\r\n']);
  assert.ok(h[0]?.kind === 'error' && h[0].fatal);
});

test('after a BAD the rest of the command, {n+} literals included, is skipped', () => {
  const evs = run(new CommandReader(), ['A1 FOO ((( {4+}\r\n)))) {2+}\r\nxx\r\nA2 NOOP\r\n']);
  assert.deepEqual(
    evs.map((e) => e.kind),
    ['error', 'command'],
  );
  const evs2 = run(new CommandReader(), ['A1 FOO ) {4+}\r\n', 'ab', 'cd {2+}\r', '\nxx\r\nA2 NOOP\r\n']);
  assert.deepEqual(
    evs2.map((e) => e.kind),
    ['error', 'command'],
  );
});

test('unbalanced parentheses, deep nesting and 8-bit atoms are BAD with the tag', () => {
  const deep = `A4 X ${'('.repeat(1000)}${')'.repeat(1000)}`;
  const evs = run(new CommandReader(), [`A1 X (a\r\nA2 X a)\r\nA3 X caf\xe9\r\n${deep}\r\nA5 NOOP\r\n`]);
  assert.deepEqual(
    evs.map((e) => (e.kind === 'error' ? `${e.tag} ${e.error}` : e.kind)),
    [
      'A1 unbalanced parenthesis',
      'A2 unbalanced parenthesis',
      'A3 8-bit byte outside a string',
      'A4 lists nested too deeply',
      'command',
    ],
  );
});

test('quoted strings: UTF-8 accepted, invalid UTF-8, NUL and bad escapes refused', () => {
  const ok = commands([Buffer.from('A1 LOGIN "j\xc3\xb6rg" "p\\"w"\r\n', 'latin1')]);
  assert.deepEqual(plain(ok[0]!.args), [{ q: 'jörg' }, { q: 'p"w' }]);
  const evs = run(new CommandReader(), ['A1 X "\xff"\r\nA2 X "a\x00"\r\nA3 X "\\n"\r\nA4 X "open\r\n']);
  assert.deepEqual(
    evs.map((e) => e.kind === 'error' && e.tag),
    ['A1', 'A2', 'A3', 'A4'],
  );
});

test('too many arguments and too long commands are refused', () => {
  const r = new CommandReader({ maxArgs: 10, maxCommandBytes: 100 });
  const evs = run(r, [`A1 X ${'a '.repeat(20)}\r\nA2 X {90+}\r\n${'x'.repeat(90)}\r\nA3 NOOP\r\n`]);
  assert.deepEqual(
    evs.map((e) => (e.kind === 'error' ? `${e.tag} ${e.fatal}` : e.kind)),
    ['A1 false', 'A2 true'],
  );
});

test('too many arguments counted across literals; the rest of the command is skipped', () => {
  const r = new CommandReader({ maxArgs: 4 });
  const evs = run(r, ['A1 X a {1+}\r\nb {1+}\r\nc {1+}\r\nd e\r\nA2 NOOP\r\n']);
  assert.deepEqual(
    evs.map((e) => (e.kind === 'error' ? `${e.tag} ${e.error}` : e.kind)),
    ['A1 too many arguments', 'command'],
  );
});

test('RFC 7888 example, two sync literals in one command, and a {0} literal', () => {
  const [a] = commands('A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n');
  assert.deepEqual(plain(a!.args), [{ lit: 'FRED FOOBAR' }, { lit: 'fat man' }]);
  const r = new CommandReader();
  const evs = run(r, ['A1 LOGIN {4}\r\n', 'fred {0}\r\n', '\r\n']);
  assert.deepEqual(
    evs.map((e) => e.kind),
    ['continue', 'continue', 'command'],
  );
  const last = evs[2];
  assert.ok(last?.kind === 'command');
  assert.deepEqual(plain(last.command.args), [{ lit: 'fred' }, { lit: '' }]);
});

test('raw-line mode delivers IDLE DONE and AUTHENTICATE continuations unparsed', () => {
  const r = new CommandReader();
  r.push(Buffer.from('A1 IDLE\r\nDONE\r\n(((\r\n'));
  assert.equal(r.next()?.kind, 'command');
  r.rawLines = true;
  const a = r.next();
  const b = r.next();
  assert.deepEqual(
    [a, b],
    [
      { kind: 'line', line: Buffer.from('DONE') },
      { kind: 'line', line: Buffer.from('(((') },
    ],
  );
  r.rawLines = false;
  assert.equal(run(r, ['A2 NOOP\r\n'])[0]?.kind, 'command');
});

test('one-byte chunks: 104,000 queued before the session reads still frame exactly', () => {
  const r = new CommandReader();
  const text = Buffer.from('A1 LOGIN {5+}\r\nab\x00cd "x"\r\n'.repeat(4000), 'latin1');
  for (const b of text) r.push(Buffer.of(b));
  assert.equal(r.buffered, 104_000);
  let n = 0;
  for (let ev = r.next(); ev; ev = r.next()) {
    assert.ok(ev.kind === 'command');
    assert.deepEqual(plain(ev.command.args), [{ lit: 'ab\x00cd' }, { q: 'x' }]);
    n++;
  }
  assert.equal(n, 4000);
  assert.equal(r.buffered, 0);
});

test('a 10 MB line without CRLF is fatal and never buffers past the line cap', () => {
  const r = new CommandReader({ maxLineLength: 64 * 1024 });
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  r.push(Buffer.from('T9 APPEND '));
  let maxBuffered = 0;
  const evs: ReaderEvent[] = [];
  for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
    r.push(chunk);
    for (let ev = r.next(); ev; ev = r.next()) evs.push(ev);
    maxBuffered = Math.max(maxBuffered, r.buffered);
  }
  assert.equal(evs.length, 1);
  assert.ok(evs[0]?.kind === 'error' && evs[0].fatal && evs[0].tag === 'T9');
  assert.ok(maxBuffered <= 64 * 1024 + 1, `buffered ${maxBuffered}`);
  assert.equal(r.buffered, 0);
});

test('fuzz: 20,000 seeded random inputs give events, never a throw, with bounded buffers', () => {
  let seed = 12345;
  const rand = (): number => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const alphabet = Buffer.from('a1 ()"\\{}+*%[]<>.:\r\n\x00\xffNILUID05');
  const pieces = ['A1 ', 'X ', 'APPEND ', 'UID ', 'a ', '(', ')', '"q" ', '{1+}\r\nz', '{2}\r\nzz', '{3}\r\n', '\r\n'];
  pieces.push('{200+}\r\n', '{999+}\r\n', 'BODY[1 (a)]<1.2> ', '\n', '\xff ', '"\xc3\xa9" ');
  const limits = {
    maxLineLength: 200,
    maxLiteralSize: 300,
    maxOtherLiteralSize: 100,
    maxCommandBytes: 500,
    maxArgs: 8,
    maxDepth: 3,
  };
  const bound = limits.maxLineLength + limits.maxCommandBytes + 64;
  let commandsSeen = 0;
  let errorsSeen = 0;
  for (let n = 0; n < 20_000; n++) {
    const r = new CommandReader(limits);
    let bytes: Buffer;
    if (n % 2) {
      // Half the inputs are made of grammar pieces so literals, lists and limits are reached.
      const parts = Array.from({ length: Math.floor(rand() * 24) }, () => pieces[Math.floor(rand() * pieces.length)]);
      bytes = Buffer.from(parts.join(''), 'latin1');
    } else {
      bytes = Buffer.alloc(Math.floor(rand() * 120));
      for (let i = 0; i < bytes.length; i++) {
        bytes[i] = rand() < 0.8 ? (alphabet[Math.floor(rand() * alphabet.length)] as number) : Math.floor(rand() * 256);
      }
    }
    const len = bytes.length;
    for (let i = 0; i < len; ) {
      const k = 1 + Math.floor(rand() * 16);
      r.push(bytes.subarray(i, i + k));
      i += k;
      for (let ev = r.next(); ev; ev = r.next()) {
        if (ev.kind === 'continue') r.acceptLiteral();
        if (ev.kind === 'command') commandsSeen++;
        if (ev.kind === 'error') errorsSeen++;
      }
      assert.ok(r.buffered <= bound + k, `input ${n}: buffered ${r.buffered}`);
    }
  }
  assert.ok(commandsSeen > 0 && errorsSeen > 0);
});
