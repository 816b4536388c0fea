/**
 * The local IMAP server over the real cache, driven by Python's imaplib (a client we did not
 * write): every command a typical client issues, answers parsed by imaplib itself, and the
 * bytes of every message compared with what was stored.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type ImapFixture, startImap } from '../support/imap-server.js';
import { sampleMessage } from '../support/pop3-server.js';
import { imaplibFetchAll, runPython } from '../support/python.js';

const fixtures: ImapFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

const SESSION = String.raw`
import imaplib, sys, json, re
host, port = sys.argv[1], int(sys.argv[2])
out = {}
m = imaplib.IMAP4(host, port, timeout=30)
out['caps'] = sorted(m.capabilities)
m.login('alice', 'localpw')
out['list'] = [x.decode() for x in m.list()[1]]
typ, data = m.select('INBOX')
out['exists'] = int(data[0])
out['search_all'] = m.search(None, 'ALL')[1][0].decode()
out['search_subject'] = m.search(None, 'SUBJECT', '"test 2"')[1][0].decode()
typ, data = m.fetch('2', '(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
out['fetch2'] = [d.decode() if isinstance(d, bytes) else [x.decode() for x in d] for d in data]
out['store'] = [x.decode() for x in m.store('1', '+FLAGS', '(\\Deleted \\Seen)')[1]]
out['copy'] = [m.copy('2:3', 'Trash')[0], m.untagged_responses.get('COPYUID')]
typ, data = m.append('Drafts', '(\\Draft)', imaplib.Time2Internaldate(1700000000), b'Subject: draft\r\n\r\nhello\r\n')
out['append'] = [typ, data[0].decode()]
out['expunge'] = [x.decode() for x in m.expunge()[1] if x]
out['status'] = m.status('Trash', '(MESSAGES UIDNEXT UNSEEN)')[1][0].decode()
out['create'] = m.create('Archive/2024')[0]
out['rename'] = m.rename('Archive/2024', 'Archive/Old')[0]
out['list_archive'] = [x.decode() for x in m.list('Archive')[1]]
out['delete'] = m.delete('Archive/Old')[0]
out['uid_search'] = m.uid('SEARCH', None, 'ALL')[1][0].decode()
out['close'] = m.close()[0]
out['logout'] = m.logout()[0]
print(json.dumps(out, default=lambda b: b.decode() if isinstance(b, bytes) else repr(b)))
`;

describe('IMAP server with Python imaplib (real cache)', () => {
  test('a typical client session', async () => {
    const messages = [1, 2, 3].map((n) => sampleMessage(n));
    const fx = await startImap({ messages, realCache: true });
    fixtures.push(fx);
    const out = JSON.parse(await runPython(SESSION, ['127.0.0.1', String(fx.port)])) as Record<string, unknown>;
    assert.ok((out.caps as string[]).includes('UIDPLUS'));
    assert.deepEqual(out.list, [
      '(\\HasNoChildren) "/" INBOX',
      '(\\HasNoChildren \\Drafts) "/" Drafts',
      '(\\HasNoChildren \\Sent) "/" Sent',
      '(\\HasNoChildren \\Trash) "/" Trash',
    ]);
    assert.equal(out.exists, 3);
    assert.equal(out.search_all, '1 2 3');
    assert.equal(out.search_subject, '2');
    assert.deepEqual(out.fetch2, [
      ['2 (FLAGS () RFC822.SIZE 77 BODY[HEADER.FIELDS (SUBJECT)] {19}', 'Subject: test 2\r\n\r\n'],
      ')',
    ]);
    assert.deepEqual(out.store, ['1 (FLAGS (\\Deleted \\Seen))']);
    assert.equal((out.copy as unknown[])[0], 'OK');
    assert.match(String((out.append as string[])[1]), /^\[APPENDUID \d+ \d+\] APPEND completed$/);
    assert.deepEqual(out.expunge, ['1']);
    assert.match(String(out.status), /^Trash \(MESSAGES 2 UIDNEXT \d+ UNSEEN 2\)$/);
    assert.deepEqual([out.create, out.rename, out.delete, out.close, out.logout], ['OK', 'OK', 'OK', 'OK', 'BYE']);
    assert.deepEqual(out.list_archive, ['(\\HasNoChildren) "/" Archive/Old']);
    assert.equal(out.uid_search, '2 3');
    const bodies = await imaplibFetchAll(fx.port, 'alice', 'localpw', 'Trash');
    assert.deepEqual(
      bodies.map((b) => b.body.toString('latin1')),
      [sampleMessage(2), sampleMessage(3)],
    );
  });
});

/** LIST-EXTENDED and LIST-STATUS as imaplib sends them (`_simple_command`, its untagged responses). */
const LIST_EXTENDED = `
import imaplib, sys, json
host, port = sys.argv[1], int(sys.argv[2])
imaplib.Commands['LIST'] = ('AUTH', 'SELECTED')
m = imaplib.IMAP4(host, port, timeout=30)
out = {'caps': sorted(m.capabilities)}
m.login('alice', 'localpw')
m.create('Work/Projects')
m.unsubscribe('Work')
def run(*args):
    typ, data = m._simple_command('LIST', *args)
    lists = [x.decode() for x in m._untagged_response(typ, data, 'LIST')[1] if x]
    status = [x.decode() for x in m.untagged_responses.pop('STATUS', []) if x]
    return {'typ': typ, 'list': lists, 'status': status}
out['special'] = run('(SPECIAL-USE)', '""', '"*"')
out['subscribed'] = run('(SUBSCRIBED RECURSIVEMATCH)', '""', '"%"', 'RETURN', '(CHILDREN)')
out['patterns'] = run('""', '("INBOX" "Work/*")', 'RETURN', '(STATUS (MESSAGES UNSEEN UIDNEXT))')
try:
    m._simple_command('LIST', '(RECURSIVEMATCH)', '""', '"*"')
    out['bad'] = 'accepted'
except imaplib.IMAP4.error as e:
    out['bad'] = str(e)
out['plain'] = [x.decode() for x in m.list()[1]]
m.logout()
print(json.dumps(out))
`;

describe('LIST-EXTENDED / LIST-STATUS with Python imaplib (real cache)', () => {
  test('selection options, several patterns, STATUS after LIST, BAD for RECURSIVEMATCH alone', async () => {
    const fx = await startImap({ messages: [sampleMessage(1), sampleMessage(2)], realCache: true });
    fixtures.push(fx);
    const out = JSON.parse(await runPython(LIST_EXTENDED, ['127.0.0.1', String(fx.port)])) as Record<string, unknown>;
    assert.ok((out.caps as string[]).includes('LIST-EXTENDED'));
    assert.ok((out.caps as string[]).includes('LIST-STATUS'));
    assert.deepEqual(out.special, {
      typ: 'OK',
      list: ['(\\Drafts) "/" Drafts', '(\\Sent) "/" Sent', '(\\Trash) "/" Trash'],
      status: [],
    });
    assert.deepEqual(out.subscribed, {
      typ: 'OK',
      list: [
        '(\\Subscribed \\HasNoChildren) "/" INBOX',
        '(\\Subscribed \\HasNoChildren) "/" Drafts',
        '(\\Subscribed \\HasNoChildren) "/" Sent',
        '(\\Subscribed \\HasNoChildren) "/" Trash',
        '(\\HasChildren) "/" Work (CHILDINFO ("SUBSCRIBED"))',
      ],
      status: [],
    });
    const patterns = out.patterns as { list: string[]; status: string[] };
    assert.deepEqual(patterns.list, ['() "/" INBOX', '() "/" Work/Projects']);
    assert.equal(patterns.status.length, 2);
    assert.match(patterns.status[0] as string, /^INBOX \(MESSAGES 2 UNSEEN 2 UIDNEXT \d+\)$/);
    assert.match(patterns.status[1] as string, /^Work\/Projects \(MESSAGES 0 UNSEEN 0 UIDNEXT \d+\)$/);
    assert.match(String(out.bad), /RECURSIVEMATCH/);
    assert.deepEqual(out.plain, [
      '(\\HasNoChildren) "/" INBOX',
      '(\\HasNoChildren \\Drafts) "/" Drafts',
      '(\\HasNoChildren \\Sent) "/" Sent',
      '(\\HasNoChildren \\Trash) "/" Trash',
      '(\\HasChildren) "/" Work',
      '(\\HasNoChildren) "/" Work/Projects',
    ]);
  });
});

/**
 * A QRESYNC resync as a client that went offline does it (RFC 7162 §3.2.5): remember UIDVALIDITY
 * and HIGHESTMODSEQ, another client expunges and flags meanwhile, then one SELECT (QRESYNC ...)
 * brings the expunged UIDs and the changed flags; own expunges come as VANISHED.
 */
const QRESYNC = String.raw`
import imaplib, sys, json
host, port = sys.argv[1], int(sys.argv[2])
imaplib.Commands['ENABLE'] = ('AUTH', 'SELECTED')
out = {}
def login():
    m = imaplib.IMAP4(host, port, timeout=30)
    m.login('alice', 'localpw')
    return m
a = login()
out['caps'] = 'QRESYNC' in a.capabilities
a.enable('QRESYNC')
out['enable'] = [x.decode() for x in a.untagged_responses.pop('ENABLED', [])]
a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
modseq = a.untagged_responses['HIGHESTMODSEQ'][0].decode()
a.logout()
b = login()
b.select('INBOX')
b.uid('STORE', '2', '+FLAGS', '(\\Deleted)')
b.expunge()
b.uid('STORE', '3', '+FLAGS', '(\\Flagged)')
b.logout()
a = login()
a.enable('QRESYNC')
typ, data = a._simple_command('SELECT', 'INBOX', '(QRESYNC (%s %s 1:3))' % (uv, modseq))
a.state = 'SELECTED'
out['select'] = typ
out['vanished'] = [x.decode() for x in a.untagged_responses.pop('VANISHED', [])]
out['fetch'] = [x.decode() for x in a.untagged_responses.pop('FETCH', [])]
typ, data = a.uid('FETCH', '1:3', '(FLAGS)', '(CHANGEDSINCE %s VANISHED)' % modseq)
out['uid_fetch'] = [x.decode() for x in data if x]
out['uid_fetch_vanished'] = [x.decode() for x in a.untagged_responses.pop('VANISHED', [])]
a.uid('STORE', '1', '+FLAGS.SILENT', '(\\Deleted)')
a.untagged_responses.pop('FETCH', None)
typ, data = a.expunge()
out['expunge'] = [typ, [x.decode() for x in a.untagged_responses.pop('VANISHED', [])]]
out['expunge_code'] = 'HIGHESTMODSEQ' in a.untagged_responses
a.logout()
print(json.dumps(out))
`;

describe('QRESYNC with Python imaplib (real cache)', () => {
  test('an offline client resynchronises INBOX in one SELECT', async () => {
    const fx = await startImap({ messages: [1, 2, 3].map((n) => sampleMessage(n)), realCache: true });
    fixtures.push(fx);
    const out = JSON.parse(await runPython(QRESYNC, ['127.0.0.1', String(fx.port)])) as Record<string, unknown>;
    assert.equal(out.caps, true);
    assert.deepEqual(out.enable, ['QRESYNC']);
    assert.equal(out.select, 'OK');
    assert.deepEqual(out.vanished, ['(EARLIER) 2']);
    assert.equal((out.fetch as string[]).length, 1);
    assert.match((out.fetch as string[])[0] as string, /^2 \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/);
    assert.equal((out.uid_fetch as string[]).length, 1);
    assert.match((out.uid_fetch as string[])[0] as string, /^2 \(UID 3 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/);
    assert.deepEqual(out.uid_fetch_vanished, ['(EARLIER) 2']);
    assert.deepEqual(out.expunge, ['OK', ['1']]);
    assert.equal(out.expunge_code, true);
  });
});
