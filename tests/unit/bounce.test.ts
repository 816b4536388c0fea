/**
 * Bounces (src/cache/bounce.ts): an RFC 3464 multipart/report with the original headers,
 * written once into the sender's local INBOX (a POP3-only client has no other way to see it).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Cache } from '../../src/cache/cache.js';
import {
  bounceKey,
  buildBounce,
  deliverBounce,
  readHeaderBlock,
  rfc5322Date,
  statusOf,
} from '../../src/cache/outbox/bounce.js';
import type { OutboxEntry } from '../../src/cache/outbox/entry.js';
import { inboxMessages, silentLog } from '../support/outbox.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const entry: OutboxEntry = {
  v: 1,
  id: 'mf3k2x1a-9f2c41aa',
  account: 'alice',
  from: 'alice@example.test',
  recipients: [
    { address: 'bob@example.test', state: 'sent', code: 250 },
    {
      address: 'nobody@example.test',
      state: 'failed',
      code: 550,
      response: '550 5.1.1 <nobody@example.test>: Recipient address rejected',
    },
  ],
  createdAt: Date.UTC(2026, 0, 2, 3, 4, 5),
  queuedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
  size: 100,
  sha256: 'a'.repeat(64),
  messageId: 'orig@example.test',
  eightBit: false,
  tries: 1,
  nextAttempt: 0,
  lastAttempt: Date.UTC(2026, 0, 2, 3, 5, 0),
};
const header = Buffer.from(
  'From: alice@example.test\r\nTo: nobody@example.test\r\nSubject: Caf\xe9 plans\r\nMessage-ID: <orig@example.test>\r\n',
  'latin1',
);

test('the report: multipart/report, delivery-status per failed recipient, original headers', () => {
  const failed = [entry.recipients[1]!];
  const b = buildBounce({
    entry,
    failed,
    reason: 'rejected',
    originalHeader: header,
    now: Date.UTC(2026, 0, 2, 4, 0, 0),
  }).toString('latin1');
  const [head, ...rest] = b.split('\r\n\r\n');
  assert.match(head!, /^From: Mail Delivery System <MAILER-DAEMON@localpost>\r\nTo: <alice@example.test>\r\n/);
  assert.match(head!, /\r\nDate: Fri, 02 Jan 2026 04:00:00 \+0000\r\n/);
  assert.match(head!, /\r\nAuto-Submitted: auto-replied\r\n/);
  const boundary = /boundary="([^"]+)"/.exec(head!)![1]!;
  const parts = b.split(`--${boundary}`);
  assert.equal(parts.length, 5, 'preamble, three parts, epilogue');
  assert.match(parts[1]!, /Content-Type: text\/plain/);
  assert.match(parts[1]!, /nobody@example.test>: 550 5\.1\.1/);
  assert.match(parts[2]!, /Content-Type: message\/delivery-status\r\n/);
  assert.match(parts[2]!, /\r\n\r\nReporting-MTA: dns; localpost\r\n/);
  assert.match(
    parts[2]!,
    /Final-Recipient: rfc822; nobody@example.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nDiagnostic-Code: smtp; 550 5\.1\.1 <nobody@example.test>: Recipient address rejected\r\nLast-Attempt-Date: Fri, 02 Jan 2026 03:05:00 \+0000/,
  );
  assert.doesNotMatch(parts[2]!, /bob@example/);
  assert.match(parts[3]!, /Content-Type: text\/rfc822-headers\r\n/);
  assert.ok(Buffer.from(parts[3]!, 'latin1').includes(header), 'original header bytes, 8-bit kept');
  assert.equal(parts[4], '--\r\n');
  assert.ok(!/[^\r]\n/.test(b), 'CRLF only');
  assert.ok(rest.length > 0);
});

test('status codes: the enhanced code of a 5xx reply, 5.0.0 without one, 4.4.7 for expiry', () => {
  assert.equal(statusOf({ address: 'a', state: 'failed', response: '550 5.7.1 relay denied' }, 'rejected'), '5.7.1');
  assert.equal(statusOf({ address: 'a', state: 'failed', response: '554 Transaction failed' }, 'rejected'), '5.0.0');
  assert.equal(statusOf({ address: 'a', state: 'failed' }, 'expired'), '4.4.7');
  assert.equal(rfc5322Date(0), 'Thu, 01 Jan 1970 00:00:00 +0000');
});

test('readHeaderBlock stops at the empty line and uses CRLF', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'lp-bounce-'));
  dirs.push(d);
  await writeFile(path.join(d, 'm.eml'), 'A: 1\nB: 2\n\nbody\n');
  assert.equal((await readHeaderBlock(path.join(d, 'm.eml'))).toString(), 'A: 1\r\nB: 2\r\n');
});

test('delivered once into the INBOX; the same failure does not bounce twice', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'lp-bounce-'));
  dirs.push(d);
  const cache = await Cache.open({ dataDir: d, accounts: ['alice'], log: silentLog });
  try {
    const input = {
      entry,
      failed: [entry.recipients[1]!],
      reason: 'rejected' as const,
      originalHeader: header,
      now: Date.now(),
    };
    assert.equal(await deliverBounce(cache.account('alice'), input), true);
    assert.equal(await deliverBounce(cache.account('alice'), input), false);
    const inbox = await inboxMessages(d, 'alice');
    assert.equal(inbox.length, 1);
    assert.equal(cache.account('alice').list('INBOX')[0]!.key, bounceKey(entry.id, input.failed));
    assert.match(bounceKey(entry.id, input.failed), /^b[0-9a-f]{24}$/);
  } finally {
    cache.close();
  }
});
