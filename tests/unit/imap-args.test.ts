/**
 * Typed IMAP command arguments (src/listeners/imap/command-args.ts, fetch-args.ts,
 * search-args.ts): client lines from RFC 3501 §8 and §6, UIDPLUS (RFC 4315), MOVE (RFC 6851),
 * CONDSTORE (RFC 7162), ENABLE, ID, and malformed arguments (BAD, never a throw).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as commandArgs from '../../src/listeners/imap/command-args.js';
import {
  parseAppend,
  parseAuthenticate,
  parseCopyMove,
  parseEnable,
  parseId,
  parseList,
  parseListExtended,
  parseLogin,
  parseMailboxArg,
  parseNoArgs,
  parseRename,
  parseSelect,
  parseStatus,
  parseStore,
  parseUidExpunge,
} from '../../src/listeners/imap/command-args.js';
import { type Command, CommandReader, type Token } from '../../src/listeners/imap/command-reader.js';
import { parseFetch, sectionLabel } from '../../src/listeners/imap/fetch-args.js';
import { parseSearch, type SearchKey, usesModseq } from '../../src/listeners/imap/search-args.js';

/** One client command through the real reader (literals accepted). */
function cmd(...chunks: (string | Buffer)[]): Command {
  const r = new CommandReader();
  for (const c of chunks) r.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  for (let ev = r.next(); ev; ev = r.next()) {
    if (ev.kind === 'continue') r.acceptLiteral();
    if (ev.kind === 'command') return ev.command;
    if (ev.kind === 'error') assert.fail(ev.error);
  }
  return assert.fail('incomplete command');
}

const args = (line: string) => cmd(`${line}\r\n`).args;

function value<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) assert.fail(r.error);
  return r.value;
}

test('LOGIN, SELECT/EXAMINE with CONDSTORE, LIST, STATUS', () => {
  assert.deepEqual(value(parseLogin(args('a001 login mrc secret'))), { user: 'mrc', password: 'secret' });
  assert.deepEqual(value(parseLogin(cmd('A1 LOGIN {4}\r\nfr\xc3\xa9 "p w"\r\n').args)), {
    user: 'fré',
    password: 'p w',
  });
  assert.deepEqual(value(parseSelect(args('a002 select inbox'))), { mailbox: 'INBOX', condstore: false });
  assert.deepEqual(value(parseSelect(args('A1 EXAMINE "Entw&APw-rfe" (CONDSTORE)'))), {
    mailbox: 'Entwürfe',
    condstore: true,
  });
  assert.equal(parseSelect(args('A1 SELECT INBOX (QRESYNC)')).ok, false);
  assert.equal(value(parseSelect(args('A1 SELECT [Gmail]/Drafts'))).mailbox, '[Gmail]/Drafts');
  assert.equal(value(parseCopyMove(args('A1 COPY 1 "[Gmail]/Sent Mail"'))).mailbox, '[Gmail]/Sent Mail');
  assert.equal(parseSelect(args('A1 SELECT [Sent Mail]')).ok, false);
  assert.deepEqual(value(parseList(args('A101 LIST "" ""'))), { reference: '', pattern: '' });
  assert.deepEqual(value(parseList(args('A102 LIST #news.comp.mail.misc ""'))), {
    reference: '#news.comp.mail.misc',
    pattern: '',
  });
  assert.deepEqual(value(parseList(args('A682 LIST "" *'))), { reference: '', pattern: '*' });
  assert.deepEqual(value(parseList(args('A1 LSUB "#news." "comp.mail.%"'))), {
    reference: '#news.',
    pattern: 'comp.mail.%',
  });
  // RFC 5258 §6 examples, RFC 6154 §3, RFC 5819.
  const ext = value(
    parseListExtended(
      args('A1 LIST (subscribed RECURSIVEMATCH) "" ("%" "Foo/*") RETURN (children STATUS (messages unseen))'),
    ),
  );
  assert.deepEqual(
    { ...ext, select: [...ext.select], returns: [...ext.returns] },
    {
      reference: '',
      patterns: ['%', 'Foo/*'],
      extended: true,
      select: ['SUBSCRIBED', 'RECURSIVEMATCH'],
      returns: ['CHILDREN', 'SUBSCRIBED'],
      status: ['MESSAGES', 'UNSEEN'],
    },
  );
  assert.equal(value(parseListExtended(args('A1 LIST "" *'))).extended, false);
  assert.equal(value(parseListExtended(args('A1 LIST "" * RETURN ()'))).extended, true);
  assert.deepEqual([...value(parseListExtended(args('A1 LIST (SPECIAL-USE) "" *'))).returns], ['SPECIAL-USE']);
  for (const b of [
    'A1 LIST (RECURSIVEMATCH) "" *',
    'A1 LIST (REMOTE RECURSIVEMATCH) "" *',
    'A1 LIST (X-FOO) "" *',
    'A1 LIST "" () ',
    'A1 LIST "" * RETURN',
    'A1 LIST "" * RETURN (STATUS ())',
    'A1 LIST "" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))',
    'A1 LIST "" * RETURN (X-FOO)',
    'A1 LIST "" * BACK ()',
    'A1 LIST "" ("a" ("b"))',
  ]) {
    assert.equal(parseListExtended(args(b)).ok, false, b);
  }
  assert.deepEqual(value(parseStatus(args('A042 STATUS blurdybloop (UIDNEXT MESSAGES highestmodseq)'))), {
    mailbox: 'blurdybloop',
    items: ['UIDNEXT', 'MESSAGES', 'HIGHESTMODSEQ'],
  });
  assert.equal(parseStatus(args('A1 STATUS x ()')).ok, false);
  assert.equal(parseStatus(args('A1 STATUS x (SIZE)')).ok, false);
  assert.equal(value(parseNoArgs(args('A1 NOOP'))), null);
  assert.deepEqual(value(parseRename(args('A683 RENAME blurdybloop sarasoop'))), {
    from: 'blurdybloop',
    to: 'sarasoop',
  });
  assert.equal(value(parseMailboxArg(args('A003 CREATE owatagusiam/'))), 'owatagusiam/');
  assert.deepEqual(value(parseAuthenticate(args('a AUTHENTICATE plain AGZyZWQAc2VjcmV0'))), {
    mechanism: 'PLAIN',
    initial: 'AGZyZWQAc2VjcmV0',
  });
  assert.equal(parseNoArgs(args('A1 NOOP x')).ok, false);
});

test('APPEND: mailbox, flags, date-time and a byte-exact literal', () => {
  const msg = 'Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred\r\n\r\nHello\xff\x00\r\n';
  const a = value(parseAppend(cmd(`A003 APPEND saved-messages (\\Seen) {${msg.length}}\r\n`, msg, '\r\n').args));
  assert.equal(a.mailbox, 'saved-messages');
  assert.deepEqual(a.flags, ['\\Seen']);
  assert.equal(a.date, undefined);
  assert.deepEqual(a.message, Buffer.from(msg, 'latin1'));
  const b = value(parseAppend(cmd('A1 APPEND INBOX () "17-Jul-1996 02:44:25 -0700" {1+}\r\nx\r\n').args));
  assert.deepEqual([b.flags, b.date], [[], Date.UTC(1996, 6, 17, 9, 44, 25)]);
  assert.equal(parseAppend(args('A1 APPEND INBOX "not a literal"')).ok, false);
  assert.equal(parseAppend(cmd('A1 APPEND INBOX "17-Jux-1996 02:44:25 -0700" {1+}\r\nx\r\n').args).ok, false);
});

test('STORE: +FLAGS/-FLAGS/FLAGS, .SILENT, single flag, UNCHANGEDSINCE', () => {
  const s = value(parseStore(args('A003 STORE 2:4 +FLAGS (\\deleted)')));
  assert.deepEqual([s.set.toString(), s.mode, s.silent, s.flags], ['2:4', 'add', false, ['\\Deleted']]);
  const t = value(parseStore(args('A1 STORE 1 -flags.silent \\Seen $Junk')));
  assert.deepEqual([t.mode, t.silent, t.flags], ['remove', true, ['\\Seen', '$Junk']]);
  const u = value(parseStore(args('d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)')));
  assert.deepEqual([u.mode, u.unchangedSince], ['add', 320162338n]);
  assert.equal(value(parseStore(args('A1 STORE 1 FLAGS ()'))).flags.length, 0);
  for (const bad of [
    'A1 STORE 1 XFLAGS (\\Seen)',
    'A1 STORE 0 FLAGS x',
    'A1 STORE 1 FLAGS',
    'A1 STORE 1 FLAGS (a%b)',
  ]) {
    assert.equal(parseStore(args(bad)).ok, false, bad);
  }
  assert.equal(parseStore(args('A1 STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS x')).ok, false);
});

test('COPY, MOVE, UID EXPUNGE, ENABLE, ID', () => {
  const c = cmd('A003 UID COPY 2:4 MEETING\r\n');
  assert.ok(c.uid && c.name === 'COPY');
  assert.deepEqual(value(parseCopyMove(c.args)).mailbox, 'MEETING');
  const m = cmd('a UID MOVE 42:69 foo\r\n');
  assert.deepEqual([m.name, value(parseCopyMove(m.args)).set.toString()], ['MOVE', '42:69']);
  const e = cmd('A003 UID EXPUNGE 3000:3002\r\n');
  assert.deepEqual([e.name, e.uid, value(parseUidExpunge(e.args)).toString()], ['EXPUNGE', true, '3000:3002']);
  assert.deepEqual(value(parseEnable(args('t2 ENABLE CONDSTORE X-GOOD-IDEA'))), ['CONDSTORE', 'X-GOOD-IDEA']);
  assert.equal(parseEnable(args('t2 ENABLE')).ok, false);
  assert.equal(value(parseId(args('a023 ID NIL'))), null);
  assert.deepEqual(value(parseId(args('a023 ID ("name" "sodr" "version" NIL)'))), [
    ['name', 'sodr'],
    ['version', null],
  ]);
  assert.equal(parseId(args('a023 ID ("name")')).ok, false);
});

test('FETCH: macros, attributes, sections, partials, CHANGEDSINCE', () => {
  const full = value(parseFetch(args('a003 fetch 12 full')));
  assert.deepEqual(
    full.atts.map((a) => a.kind),
    ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
  );
  const h = value(parseFetch(args('a004 fetch 12 body[header]')));
  assert.deepEqual(h.atts, [{ kind: 'BODY[]', section: { peek: false, part: [], kind: 'HEADER' } }]);
  const f = value(
    parseFetch(args('A654 FETCH 2:4 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From "To")]<0.100> BODY[] BODY[3.MIME] uid)')),
  );
  assert.deepEqual(f.atts, [
    { kind: 'FLAGS' },
    {
      kind: 'BODY[]',
      section: {
        peek: true,
        part: [1, 2],
        kind: 'HEADER.FIELDS',
        fields: ['FROM', 'TO'],
        partial: { start: 0, length: 100 },
      },
    },
    { kind: 'BODY[]', section: { peek: false, part: [], kind: '' } },
    { kind: 'BODY[]', section: { peek: false, part: [3], kind: 'MIME' } },
    { kind: 'UID' },
  ]);
  const first = f.atts[1];
  assert.ok(first?.kind === 'BODY[]');
  assert.equal(sectionLabel(first.section), 'BODY[1.2.HEADER.FIELDS (FROM TO)]<0>');
  const n = value(parseFetch(args('A1 FETCH 1:* (BODY[HEADER.FIELDS.NOT (Received)] RFC822.HEADER)')));
  assert.deepEqual(n.atts[0], {
    kind: 'BODY[]',
    section: { peek: false, part: [], kind: 'HEADER.FIELDS.NOT', fields: ['RECEIVED'] },
  });
  const cs = value(parseFetch(args('s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)')));
  assert.deepEqual([cs.changedSince, cs.atts.map((a) => a.kind)], [12345n, ['FLAGS', 'MODSEQ']]);
  for (const bad of [
    'A1 FETCH 1 (ALL)',
    'A1 FETCH 1 BODY[MIME]',
    'A1 FETCH 1 BODY[0]',
    'A1 FETCH 1 BODY[HEADER.FIELDS]',
    'A1 FETCH 1 BODY[HEADER.FIELDS ()]',
    'A1 FETCH 1 BODY[TEXT (a)]',
    'A1 FETCH 1 BODY[1.]',
    'A1 FETCH 1 BODY[]<1.0>',
    'A1 FETCH 1 BODY[]<1>',
    'A1 FETCH 1 BINARY[1]',
    'A1 FETCH 1 FLAGS (CHANGEDSINCE x)',
    'A1 FETCH 1 ()',
    'A1 FETCH * FLAGS extra',
  ]) {
    assert.equal(parseFetch(args(bad)).ok, false, bad);
  }
});

test('SEARCH: every RFC 3501 key, groups, CHARSET, MODSEQ', () => {
  const s = value(parseSearch(args('A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')));
  assert.equal(s.charset, undefined);
  assert.deepEqual(s.key, {
    kind: 'and',
    keys: [
      { kind: 'flag', flag: '\\Flagged', has: true },
      { kind: 'date', of: 'internal', op: 'since', day: Date.UTC(1994, 1, 1) / 86_400_000 },
      { kind: 'not', key: { kind: 'header', field: 'FROM', value: 'Smith' } },
    ],
  });
  const all = [
    'ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY y CC z DELETED DRAFT FLAGGED FROM a',
    'HEADER X-Foo bar KEYWORD $Junk LARGER 10 NEW NOT SEEN OLD ON 2-Jan-2000 OR RECENT SEEN',
    'SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 SMALLER 5',
    'SUBJECT s TEXT t TO u UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD foo UNSEEN',
    '2,4:* (OR DELETED (SEEN DRAFT))',
  ].join(' ');
  const big = value(parseSearch(args(`A1 SEARCH CHARSET utf-8 ${all}`)));
  assert.equal(big.charset, 'UTF-8');
  assert.ok(big.key.kind === 'and');
  assert.equal(big.key.keys.length, 35);
  const kinds = new Set<string>();
  const walk = (k: SearchKey): void => {
    kinds.add(k.kind);
    if (k.kind === 'and') k.keys.forEach(walk);
    if (k.kind === 'or') [k.a, k.b].forEach(walk);
    if (k.kind === 'not') walk(k.key);
  };
  walk(big.key);
  assert.deepEqual([...kinds].sort(), [
    'all',
    'and',
    'body',
    'date',
    'flag',
    'header',
    'new',
    'not',
    'old',
    'or',
    'recent',
    'seq',
    'size',
    'text',
    'uid',
  ]);
  const lit = value(parseSearch(cmd('A1 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n').args));
  assert.deepEqual(lit.key, { kind: 'text', value: 'XXXXXX' });
  const bad = parseSearch(args('A1 SEARCH CHARSET KOI8-R TEXT x'));
  assert.deepEqual(bad, { ok: false, error: 'unsupported charset KOI8-R', code: 'BADCHARSET' });
  const ms = value(parseSearch(args('a SEARCH MODSEQ "/flags/\\\\draft" all 620162338 UNSEEN')));
  assert.ok(usesModseq(ms.key));
  const ms2 = value(parseSearch(args('t SEARCH OR NOT MODSEQ 720162338 LARGER 50000')));
  assert.ok(usesModseq(ms2.key));
  assert.ok(!usesModseq(value(parseSearch(args('t SEARCH ALL'))).key));
  for (const b of [
    'A1 SEARCH',
    'A1 SEARCH FOO',
    'A1 SEARCH OR SEEN',
    'A1 SEARCH SINCE 31-Feb-2000',
    'A1 SEARCH LARGER x',
    'A1 SEARCH UID 0',
    'A1 SEARCH HEADER "a b" c',
    'A1 SEARCH ()',
    `A1 SEARCH ${'NOT '.repeat(100)}ALL`,
  ]) {
    assert.equal(parseSearch(args(b)).ok, false, b);
  }
});

test('random token soup never throws from any parser', () => {
  const parsers = [
    ...(Object.values(commandArgs) as unknown[]).filter(
      (f): f is (a: readonly Token[]) => unknown => typeof f === 'function',
    ),
    parseFetch,
    parseSearch,
  ];
  assert.equal(parsers.length, 17);
  const words = [
    'NIL',
    '1:*',
    '0',
    '(',
    ')',
    '"x"',
    '{1+}\r\nz',
    'BODY[',
    'BODY[1]<0.5>',
    'OR',
    'NOT',
    'FLAGS',
    '\\Seen',
  ];
  let seed = 7;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let parsed = 0;
  for (let i = 0; i < 3000; i++) {
    const parts = Array.from({ length: rand(8) }, () => words[rand(words.length)]);
    const r = new CommandReader();
    r.push(Buffer.from(`A1 X ${parts.join(' ')}\r\n`));
    const ev = r.next();
    if (ev?.kind !== 'command') continue;
    parsed++;
    for (const p of parsers) p(ev.command.args);
  }
  assert.ok(parsed > 300, `parsed ${parsed}`);
});
