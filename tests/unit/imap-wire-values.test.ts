/**
 * IMAP wire values: sequence sets (src/listeners/imap/sequence-set.ts), mailbox names in
 * modified UTF-7 and LIST patterns (mailbox-name.ts), dates (imap-date.ts) and the response
 * encoders (response.ts). Work is counted (values visited), never timed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dayNumber, formatDateTime, parseDate, parseDateTime } from '../../src/listeners/imap/imap-date.js';
import {
  decodeMailboxName,
  encodeMailboxName,
  listPattern,
  patternMatcher,
} from '../../src/listeners/imap/mailbox-name.js';
import {
  astring,
  flagList,
  internalDate,
  list,
  literal,
  mailboxName,
  nstring,
  string,
  toBuffer,
} from '../../src/listeners/imap/response.js';
import { formatNumbers, SequenceSet } from '../../src/listeners/imap/sequence-set.js';

function set(text: string): SequenceSet {
  const r = SequenceSet.parse(text);
  assert.ok(r.ok, text);
  return r.value;
}

test('sequence sets parse, resolve * at evaluation time and merge', () => {
  const s = set('7:*,1:3,5,2:4');
  assert.ok(s.usesStar);
  const r = s.resolve(10);
  assert.deepEqual([...r.starts, ...r.ends], [1, 7, 5, 10]);
  assert.ok(r.has(5) && r.has(9) && !r.has(6) && !r.has(11) && !r.has(0));
  // `7:*` with max 3 is 3:7 (RFC 3501 §9: the order of the ends does not matter).
  const small = s.resolve(3);
  assert.deepEqual([[...small.starts], [...small.ends]], [[1], [7]]);
  assert.deepEqual([...set('*').resolve(0).starts], [], 'empty mailbox: * matches nothing');
  assert.equal(set('5:2,*').toString(), '5:2,*');
});

test('sequence sets refuse 0, values over 2^32-1, junk and too many ranges', () => {
  for (const bad of ['0', '1:0', '4294967296', '1,,2', '1:', ':1', '', '1 2', '01', '$', '1:2:3', '99999999999']) {
    assert.equal(SequenceSet.parse(bad).ok, false, bad);
  }
  assert.ok(SequenceSet.parse('4294967295').ok);
  const many = Array.from({ length: 60_000 }, (_, i) => String(2 * i + 1)).join(',');
  const r = SequenceSet.parse(many);
  assert.deepEqual(r, { ok: false, error: 'too many ranges in sequence set' });
  assert.ok(SequenceSet.parse(many, 100_000).ok, 'a raised cap parses 60,000 ranges');
});

test('selection never expands a huge range: work is one step per message', () => {
  const uids = Uint32Array.from([3, 9, 10, 4000, 4294967295]);
  const r = set('1:4294967295').resolve(4294967295);
  assert.deepEqual([...r.indexesIn(uids)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...set('4:9,4000:*').resolve(4294967295).indexesIn(uids)], [1, 3, 4]);
  assert.deepEqual([...set('11:3999').resolve(1).indexesIn(uids)], []);
  let steps = 0;
  for (const _ of set('1:*').resolve(5).numbersUpTo(5)) steps++;
  assert.equal(steps, 5);
  steps = 0;
  for (const _ of set('2:4294967295').resolve(3).numbersUpTo(3)) steps++;
  assert.equal(steps, 2);
  assert.equal(formatNumbers([1, 2, 3, 7, 9, 10]), '1:3,7,9:10');
});

test('modified UTF-7 round-trips, incl. & and non-BMP characters (RFC 3501 §5.1.3)', () => {
  const cases: [string, string][] = [
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
    ['A&B', 'A&-B'],
    ['Entwürfe', 'Entw&APw-rfe'],
    ['😀 x', '&2D3eAA- x'],
    ['', ''],
  ];
  for (const [plain, wire] of cases) {
    assert.equal(encodeMailboxName(plain), wire);
    assert.deepEqual(decodeMailboxName(wire), { ok: true, value: plain });
  }
  for (const s of ['&', '&Jjo', '&Jjo!-', '&AGE-x', 'a\x01b', '&2D0-']) {
    assert.equal(decodeMailboxName(s).ok, false, s);
  }
  assert.deepEqual(decodeMailboxName('inBox'), { ok: true, value: 'INBOX' });
  assert.deepEqual(decodeMailboxName('inbox/x'), { ok: true, value: 'inbox/x' });
  assert.deepEqual(decodeMailboxName('Ärger'), { ok: true, value: 'Ärger' }, 'raw UTF-8 passes');
});

test('LIST patterns: * crosses the delimiter, % does not, INBOX is case-insensitive', () => {
  const names = ['INBOX', 'INBOX/a', 'Sent', 'Archive/2024/Q1', 'Archive/2024', 'Archive'];
  const match = (p: string): string[] => {
    const m = patternMatcher(p);
    assert.ok(m.ok);
    return names.filter(m.value);
  };
  assert.deepEqual(match('*'), names);
  assert.deepEqual(match('%'), ['INBOX', 'Sent', 'Archive']);
  assert.deepEqual(match('Archive/%'), ['Archive/2024']);
  assert.deepEqual(match('inbox'), ['INBOX']);
  assert.deepEqual(match('inbox/*'), ['INBOX/a']);
  assert.deepEqual(match('A*4'), ['Archive/2024']);
  assert.deepEqual(match(listPattern('Archive/', '%')), ['Archive/2024']);
  assert.deepEqual(match(listPattern('Archive', '*')), ['Archive/2024/Q1', 'Archive/2024']);
  assert.equal(listPattern('x', '/abs'), '/abs');
  const evil = patternMatcher(`${'*a'.repeat(400)}b`);
  assert.ok(evil.ok && evil.value('a'.repeat(5000)) === false);
  assert.equal(patternMatcher('x'.repeat(2000)).ok, false);
});

test('INTERNALDATE formats and parses date-time; SEARCH dates compare without time', () => {
  const ms = Date.UTC(1996, 6, 17, 9, 44, 25);
  assert.equal(formatDateTime(ms, -420), '17-Jul-1996 02:44:25 -0700');
  assert.equal(internalDate(ms, 0), '"17-Jul-1996 09:44:25 +0000"');
  assert.equal(formatDateTime(Date.UTC(2024, 0, 2, 3, 4, 5), 330), '02-Jan-2024 08:34:05 +0530');
  assert.deepEqual(parseDateTime('17-Jul-1996 02:44:25 -0700'), { ok: true, value: ms });
  assert.deepEqual(parseDateTime(' 7-Feb-1994 21:52:25 -0800'), { ok: true, value: Date.UTC(1994, 1, 8, 5, 52, 25) });
  for (const bad of ['31-Feb-2020 00:00:00 +0000', '17-Jux-1996 02:44:25 -0700', '17-Jul-1996 24:00:00 +0000', 'x']) {
    assert.equal(parseDateTime(bad).ok, false, bad);
  }
  const d = parseDate('1-Feb-1994');
  assert.ok(d.ok);
  assert.equal(d.value, dayNumber(Date.UTC(1994, 1, 1, 23, 59), 0));
  assert.equal(d.value, dayNumber(Date.UTC(1994, 1, 2, 5), -480), 'late on the 1st in -0800');
  assert.equal(parseDate('29-Feb-2023').ok, false);
});

test('response encoders choose atom, quoted or literal and count literal bytes', () => {
  const s = (w: Parameters<typeof toBuffer>[0]): string => toBuffer(w).toString('utf8');
  assert.equal(s(astring('INBOX')), 'INBOX');
  assert.equal(s(astring('two words')), '"two words"');
  assert.equal(s(astring('NIL')), '"NIL"');
  assert.equal(s(astring('')), '""');
  assert.equal(s(string('a"b\\c')), '"a\\"b\\\\c"');
  assert.equal(s(string('jörg')), '{5}\r\njörg');
  assert.equal(s(string('a\r\nb')), '{4}\r\na\r\nb');
  assert.equal(s(string('\\'.repeat(40))), `{40}\r\n${'\\'.repeat(40)}`);
  assert.equal(s(string('x'.repeat(2000))).slice(0, 8), '{2000}\r\n');
  assert.equal(s(nstring(null)), 'NIL');
  assert.equal(s(list([nstring('a'), 'NIL', list([])])), '("a" NIL ())');
  assert.equal(flagList(['\\Seen', '$Junk']), '(\\Seen $Junk)');
  assert.equal(s(mailboxName('Entwürfe')), 'Entw&APw-rfe');
  assert.equal(s(mailboxName('A&B C')), '"A&-B C"');
  const bytes = Buffer.from([0, 0xff, 0x0d]);
  assert.deepEqual(toBuffer(literal(bytes)), Buffer.concat([Buffer.from('{3}\r\n'), bytes]));
});
