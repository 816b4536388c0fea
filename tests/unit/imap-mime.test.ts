/**
 * The IMAP MIME module against Dovecot's recorded answers (tests/fixtures/mime/expected.json,
 * re-derived live by tests/integration/imap-mime-dovecot.test.ts), hostile inputs (never throws,
 * bounded depth), section parsing and the SEARCH text helpers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import * as mime from '../../src/listeners/imap/mime/index.js';
import {
  type Answers,
  EXPECTED_FILE,
  EXPECTED_SEARCH_FILE,
  fetchItems,
  mimeCorpus,
  ourAnswer,
  ourSearchAnswers,
  type SearchAnswers,
} from '../support/mime-reference.js';

/**
 * Known, harmless differences from Dovecot (docs/imap-server.md "MIME structure"):
 * - bare-LF messages: Dovecot sends every line end as CRLF; we serve the stored bytes.
 * - 1,000-deep nesting past Dovecot's cap: one section differs by a line end where a capped
 *   part's inner delimiter lines prefix-match open boundaries.
 */
function knownDifference(name: string, item: string, ours: string, theirs: string): boolean {
  if (name === '16-bare-lf') return ours.replace(/\r?\n/g, '\r\n') === theirs;
  return name === 'g2-deep-multipart-1000' && item === 'BODY.PEEK[1.1]';
}

function depth(root: mime.MimePart): number {
  let max = 0;
  const todo = [root];
  while (todo.length) {
    const p = todo.pop() as mime.MimePart;
    max = Math.max(max, p.depth);
    todo.push(...p.children);
    if (p.message) todo.push(p.message);
  }
  return max;
}

function exercise(raw: Buffer): mime.MimePart {
  const root = mime.parseMessage(raw);
  mime.envelope(raw, root);
  mime.bodyStructure(raw, root, true);
  mime.bodyStructure(raw, root, false);
  for (const item of fetchItems(raw)) ourAnswer(raw, root, item);
  mime.bodyText(raw, root);
  mime.headerText(raw, 'subject', root);
  mime.addressText(raw, 'from', root);
  mime.sentDate(raw, root);
  return root;
}

describe('IMAP MIME structure', () => {
  test('every FETCH answer equals Dovecot 2.3 (ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]<partial>)', () => {
    const expected = JSON.parse(readFileSync(EXPECTED_FILE, 'utf8')) as Answers;
    const corpus = mimeCorpus();
    assert.ok(corpus.length >= 45);
    let equal = 0;
    let total = 0;
    const bad: string[] = [];
    for (const m of corpus) {
      const answers = expected[m.name];
      assert.ok(answers, `no recorded answers for ${m.name}`);
      const root = mime.parseMessage(m.raw);
      for (const [item, theirs] of Object.entries(answers)) {
        total++;
        const ours = ourAnswer(m.raw, root, item);
        if (ours === theirs) equal++;
        else if (!knownDifference(m.name, item, ours, theirs))
          bad.push(
            `${m.name} ${item}\n  dovecot ${JSON.stringify(theirs).slice(0, 300)}\n  ours    ${JSON.stringify(ours).slice(0, 300)}`,
          );
      }
    }
    assert.deepEqual(bad, []);
    assert.ok(equal >= total - 10, `${equal}/${total}`);
  });

  test('SEARCH with our text helpers finds what Dovecot finds (SUBJECT/FROM/TO/CC/BCC/BODY/HEADER/SENT*)', () => {
    const expected = JSON.parse(readFileSync(EXPECTED_SEARCH_FILE, 'utf8')) as SearchAnswers;
    assert.ok(Object.keys(expected).length >= 24);
    assert.deepEqual(ourSearchAnswers(), expected);
  });

  test('hostile input never throws and nesting stays bounded', () => {
    const cases: Buffer[] = [
      Buffer.from(`From: ${'word '.repeat(200_000)}\r\nTo: ${'a b, '.repeat(50_000)}\r\n\r\n`),
      Buffer.alloc(0),
      Buffer.from('no separator at all'),
      Buffer.from('Subject: x\nContent-Type: multipart/mixed; boundary=a\n\n--a\n--a\n--a--\n--a\n'),
      Buffer.from(`Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n`),
      Buffer.from(`Content-Type: multipart/mixed; boundary=${'x'.repeat(10_000)}\r\n\r\n--${'x'.repeat(9_999)}\r\n`),
      Buffer.from(`${'no colon line\r\n'.repeat(50_000)}\r\nbody`),
      Buffer.from(
        `Subject: ${'=?utf-8?q?'.repeat(20_000)}\r\nFrom: ${'<'.repeat(20_000)}\r\nTo: ${'"('.repeat(20_000)}\r\n\r\n`,
      ),
      Buffer.from(
        `Content-Type: ${'text/plain; a='.repeat(5_000)}\r\nContent-Disposition: ${'(('.repeat(10_000)}\r\n\r\n`,
      ),
    ];
    let deep = '';
    for (let i = 0; i < 5_000; i++) deep += `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`;
    cases.push(Buffer.from(deep));
    cases.push(Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(20_000)));
    cases.push(Buffer.from(`Content-Type: multipart/mixed; boundary=z\r\n\r\n${'--z\r\n\r\n'.repeat(30_000)}`));
    for (const raw of cases) {
      const root = exercise(raw);
      assert.ok(depth(root) < mime.MAX_DEPTH, `depth ${depth(root)}`);
    }
    // byte flips and truncations of the corpus (deterministic)
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const specials = Buffer.from('\r\n-:;="\\()<>@,');
    for (const m of mimeCorpus().slice(0, 40)) {
      for (let k = 0; k < 8; k++) {
        const raw = Buffer.from(m.raw.subarray(0, rand(m.raw.length + 1)));
        for (let f = 0; f < 5 && raw.length; f++) raw[rand(raw.length)] = specials[rand(specials.length)] as number;
        exercise(raw);
      }
    }
  });

  test('a 50 MB part: offsets only, sizes exact', () => {
    const body = Buffer.alloc(50 * 1024 * 1024, 0x61);
    for (let i = 76; i < body.length; i += 78) {
      body[i] = 13;
      body[i + 1] = 10;
    }
    const raw = Buffer.concat([
      Buffer.from('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\n'),
      body,
      Buffer.from('\r\n--q--\r\n'),
    ]);
    const root = mime.parseMessage(raw);
    const part = mime.section(raw, root, { path: [1], kind: '' });
    assert.equal(part.length, body.length);
    assert.equal(part.buffer, raw.buffer, 'a slice of the message, not a copy');
    assert.match(
      mime.bodyStructure(raw, root, false).toString('latin1'),
      new RegExp(` ${body.length} ${Math.floor(body.length / 78)}\\)`),
    );
  });

  test('section specifiers parse as RFC 3501 says; partial clamps', () => {
    assert.deepEqual(mime.parseSection(''), { path: [], kind: '' });
    assert.deepEqual(mime.parseSection('1.2.3'), { path: [1, 2, 3], kind: '' });
    assert.deepEqual(mime.parseSection('2.header'), { path: [2], kind: 'HEADER' });
    assert.deepEqual(mime.parseSection('HEADER.FIELDS (From  To)'), {
      path: [],
      kind: 'HEADER.FIELDS',
      fields: ['From', 'To'],
    });
    assert.deepEqual(mime.parseSection('1.MIME'), { path: [1], kind: 'MIME' });
    for (const bad of ['MIME', '0', '1.', 'HEADER.FIELDS ()', 'TEXT x', '1..2', 'BOGUS'])
      assert.equal(mime.parseSection(bad), null, bad);
    const b = Buffer.from('0123456789');
    assert.equal(mime.partial(b, 2, 3).toString(), '234');
    assert.equal(mime.partial(b, 8, 100).toString(), '89');
    assert.equal(mime.partial(b, 20, 1).length, 0);
  });

  test('search text: decoded headers, addresses, decoded bodies, Date', () => {
    const corpus = new Map(mimeCorpus().map((m) => [m.name, m.raw]));
    const get = (n: string) => corpus.get(n) as Buffer;
    assert.deepEqual(mime.headerText(get('14-encoded-words'), 'SUBJECT'), ['Élève and café plain']);
    assert.deepEqual(mime.addressText(get('14-encoded-words'), 'from'), ['André <andre@example.test>']);
    assert.deepEqual(mime.addressText(get('14-encoded-words'), 'to'), ['José <jose@example.test>']);
    assert.deepEqual(mime.addressText(get('13-groups'), 'to'), [
      'Team',
      'bob@example.test',
      'Carol C. <carol@example.test>',
      'dave@example.test',
    ]);
    assert.deepEqual(mime.headerText(get('22-8bit-headers'), 'subject'), ['Grüße']);
    assert.deepEqual(mime.headerText(get('35-latin1-qp'), 'subject'), ['été']);
    assert.deepEqual(mime.headerText(get('20-folded-headers'), 'x-long'), ['one  two three']);
    const alt = mime.bodyText(get('05-alternative'));
    assert.ok(alt.includes('Café au laitsoft break'), alt);
    assert.ok(alt.includes('<p>Café <b>au lait</b></p>'), alt);
    assert.equal(mime.bodyText(get('28-comments-in-ct')), 'Hello world\n');
    assert.equal(mime.bodyText(get('35-latin1-qp')), 'Été chaud\r\n');
    assert.ok(mime.bodyText(get('08-rfc822')).includes('inner plain'));
    assert.ok(!mime.bodyText(get('04-mixed')).includes('AAEC'), 'attachments are not text');
    assert.deepEqual(mime.sentDate(get('01-plain')), {
      ms: Date.UTC(2026, 11, 7, 9, 0, 0),
      day: Date.UTC(2026, 11, 7),
    });
    const late = Buffer.from('Date: Sun, 6 Dec 2026 23:30 -0500\r\n\r\n');
    assert.deepEqual(mime.sentDate(late), { ms: Date.UTC(2026, 11, 7, 4, 30, 0), day: Date.UTC(2026, 11, 6) });
    assert.equal(mime.sentDate(get('33-route-and-odd')), null);
    assert.equal(mime.sentDate(get('15-missing-headers')), null);
  });
});
