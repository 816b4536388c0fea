/**
 * FETCH, STORE and SEARCH of the local IMAP server, counting work: which commands read message
 * files (none for FLAGS/UID/SIZE/MODSEQ keys, one read per message otherwise), \Seen made
 * durable by BODY[] but not by PEEK or EXAMINE, bare-LF files served with CRLF, partials.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ImapTestClient } from '../support/imap-client.js';
import { type ImapFixture, startImap } from '../support/imap-server.js';
import type { MemoryMailboxes } from '../support/memory-mailboxes.js';
import { sampleMessage } from '../support/pop3-server.js';

const fixtures: ImapFixture[] = [];
const clients: ImapTestClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const f of fixtures) await f.close();
});

async function setup(count: number): Promise<{ fx: ImapFixture; store: MemoryMailboxes; c: ImapTestClient }> {
  const fx = await startImap({ messages: Array.from({ length: count }, (_, i) => sampleMessage(i + 1)) });
  fixtures.push(fx);
  const c = await ImapTestClient.open(fx.port, ['alice', 'localpw']);
  clients.push(c);
  return { fx, store: fx.stores.get('alice') as MemoryMailboxes, c };
}

describe('IMAP FETCH and SEARCH work', () => {
  test('UID FETCH 1:* (FLAGS) and flag/size searches read no message file', async () => {
    const { store, c } = await setup(500);
    await c.run('SELECT INBOX');
    const r = await c.run('UID FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE MODSEQ)');
    assert.equal(r.length, 501);
    assert.match(
      r[0] as string,
      /^\* 1 FETCH \(UID 1 FLAGS \(\) RFC822\.SIZE 7\d INTERNALDATE "[^"]+" MODSEQ \(\d+\)\)$/,
    );
    const s = await c.run('SEARCH UNSEEN LARGER 10 UID 1:* SINCE 1-Jan-2024 NOT DELETED');
    assert.equal(s[0]?.split(' ').length, 2 + 500);
    assert.equal(store.reads, 0);
  });

  test('bodies, envelopes and structures read each file once per command', async () => {
    const { store, c } = await setup(20);
    await c.run('SELECT INBOX');
    const r = await c.run(
      'FETCH 1:* (BODY.PEEK[] ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject)] RFC822.SIZE)',
    );
    assert.equal(store.reads, 20);
    assert.equal(r.filter((l) => l.startsWith('* ')).length, 20);
    const s = await c.run('SEARCH SUBJECT "test 7"');
    assert.deepEqual(s[0], '* SEARCH 7');
    assert.equal(store.reads, 40);
    const b = await c.run('SEARCH BODY "BODY 3 LINE"');
    assert.deepEqual(b[0], '* SEARCH 3');
  });

  test('BODY[] sets \\Seen durably, PEEK and EXAMINE do not', async () => {
    const { store, c } = await setup(3);
    await c.run('EXAMINE INBOX');
    await c.run('FETCH 1 BODY[]');
    await c.run('SELECT INBOX');
    await c.run('FETCH 2 BODY.PEEK[]');
    const r = await c.run('FETCH 3 BODY[TEXT]<5.6>');
    assert.deepEqual(r.slice(0, 3), [
      '* 3 FETCH (FLAGS (\\Seen) BODY[TEXT]<5> {6}',
      '3 line)',
      't6 OK FETCH completed',
    ]);
    assert.deepEqual(
      store.select('INBOX').messages.map((m) => m.flags.join(' ')),
      ['', '', '\\Seen'],
    );
  });

  test('a file with bare LFs is served with CRLF, matching RFC822.SIZE', async () => {
    const { store, c } = await setup(0);
    store.deliver('INBOX', 'Subject: lf\n\nline one\nline two\n');
    await c.run('SELECT INBOX');
    const r = await c.run('FETCH 1 (RFC822.SIZE BODY.PEEK[])');
    assert.deepEqual(r.slice(0, 5), [
      '* 1 FETCH (RFC822.SIZE 35 BODY[] {35}',
      'Subject: lf',
      '',
      'line one',
      'line two',
    ]);
  });

  test('a flag change by another session reaches this one as FETCH FLAGS, own changes do not repeat', async () => {
    const { fx, c } = await setup(2);
    const other = await ImapTestClient.open(fx.port, ['alice', 'localpw']);
    clients.push(other);
    await c.run('SELECT INBOX');
    await other.run('SELECT INBOX');
    assert.deepEqual(await c.run('STORE 1 +FLAGS (\\Flagged)'), [
      '* 1 FETCH (FLAGS (\\Flagged))',
      't3 OK STORE completed',
    ]);
    assert.deepEqual(await c.run('NOOP'), ['t4 OK NOOP completed']);
    await other.run('STORE 2 +FLAGS.SILENT (\\Answered)');
    assert.deepEqual(await c.run('NOOP'), ['* 2 FETCH (UID 2 FLAGS (\\Answered))', 't5 OK NOOP completed']);
    // EXPUNGE by the other session: not reported after FETCH (RFC 3501 §7.4.1), then after NOOP.
    await other.run('STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.run('EXPUNGE');
    const f = await c.run('FETCH 2 (FLAGS)');
    // (the other session's flag change comes after the FETCH's own response, before the OK)
    assert.deepEqual(f, [
      '* 2 FETCH (FLAGS (\\Answered))',
      '* 1 FETCH (UID 1 FLAGS (\\Deleted \\Flagged))',
      't6 OK FETCH completed',
    ]);
    assert.deepEqual(await c.run('NOOP'), ['* 1 EXPUNGE', 't7 OK NOOP completed']);
  });
});

describe('IMAP APPEND of large messages', () => {
  test('a 3 MB synchronizing literal and a 2 MB LITERAL+ are stored whole, then fetched in parts', async () => {
    const { store, c } = await setup(0);
    const line = `${'x'.repeat(98)}\r\n`;
    const big = Buffer.from(`Subject: big\r\n\r\n${line.repeat(30_000)}`);
    c.conn.cmd(`a1 APPEND INBOX {${big.length}}`);
    assert.equal(await c.conn.line(), '+ Ready for literal data');
    c.conn.send(Buffer.concat([big, Buffer.from('\r\n')]));
    assert.match(await c.conn.line(), /^a1 OK \[APPENDUID \d+ 1\] APPEND completed$/);
    const plus = big.subarray(0, 2_000_016);
    c.conn.send(Buffer.concat([Buffer.from(`a2 APPEND INBOX {${plus.length}+}\r\n`), plus, Buffer.from('\r\n')]));
    assert.match(await c.conn.line(), /^a2 OK \[APPENDUID \d+ 2\] APPEND completed$/);
    assert.deepEqual(
      store.select('INBOX').messages.map((m) => m.size),
      [big.length, plus.length],
    );
    await c.run('SELECT INBOX');
    const r = await c.run('FETCH 1 (BODY.PEEK[]<2999990.100>)');
    assert.equal(r[0], '* 1 FETCH (BODY[]<2999990> {26}');
  });
});

describe('IMAP SEARCH on decoded text', () => {
  test('RFC 2047 subjects, base64 bodies, addresses and sent dates', async () => {
    const { store, c } = await setup(0);
    store.deliver(
      'INBOX',
      'From: =?utf-8?q?Z=C3=BCrich_Team?= <team@example.test>\r\nDate: Tue, 5 Mar 2024 23:30:00 -0800\r\n' +
        'Subject: =?utf-8?b?R3LDvGV6aQ==?=\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        'Content-Transfer-Encoding: base64\r\n\r\nU2Now7ZuZW4gR3LDvMOfZQ==\r\n',
    );
    store.deliver('INBOX', 'Subject: plain\r\n\r\nnothing here\r\n');
    await c.run('SELECT INBOX');
    assert.equal((await c.run('SEARCH CHARSET UTF-8 SUBJECT {6+}\r\ngrüez'))[0], '* SEARCH 1');
    assert.equal((await c.run('SEARCH BODY "schönen"'))[0], '* SEARCH 1');
    assert.equal((await c.run('SEARCH FROM "zürich team"'))[0], '* SEARCH 1');
    assert.equal((await c.run('SEARCH TEXT "nothing"'))[0], '* SEARCH 2');
    assert.equal((await c.run('SEARCH SENTON 5-Mar-2024'))[0], '* SEARCH 1');
    assert.equal((await c.run('SEARCH SENTBEFORE 1-Jan-2000'))[0], '* SEARCH 2');
  });
});

describe('IMAP FETCH backpressure', () => {
  test('a client that stops reading stops the file reads; all arrive once it reads again', async () => {
    const { store, c } = await setup(0);
    const body = `Subject: big\r\n\r\n${`${'y'.repeat(1022)}\r\n`.repeat(512)}`; // 512 KiB
    for (let i = 0; i < 64; i++) store.deliver('INBOX', body);
    await c.run('SELECT INBOX');
    const reads = store.reads;
    c.conn.socket.pause();
    c.conn.cmd('f1 FETCH 1:* BODY.PEEK[]');
    await new Promise((r) => setTimeout(r, 400));
    // Socket buffers hold a few MiB at most: far from the 32 MiB asked for.
    assert.ok(store.reads - reads < 32, `read ${store.reads - reads} files while the client was not reading`);
    c.conn.socket.resume();
    let line = '';
    while (!line.startsWith('f1 ')) line = await c.conn.line();
    assert.equal(line, 'f1 OK FETCH completed');
    assert.equal(store.reads - reads, 64);
  });
});
