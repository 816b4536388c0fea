/**
 * The local SMTP listener refuses a sender that is not the account's own (email or alias): 553 at
 * MAIL FROM for the envelope (`<>` included), 553 after DATA for a From: header, with nothing
 * queued; an alias or `allowAnyFrom` (no `senders` list) is accepted.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { fromAddresses } from '../../src/listeners/smtp/sender-address.js';
import type { SubmissionAccount } from '../../src/listeners/smtp/submission.js';
import { names, outboxFiles } from '../support/outbox.js';
import { ACCOUNTS, authenticated, type SmtpFixture, startData, startSmtp } from '../support/smtp.js';

const open: SmtpFixture[] = [];
after(async () => {
  for (const s of open) await s.close();
});

/** alice owns alice@example.test and the alias Alice@Alias.Example; bob allows any sender. */
async function smtp(): Promise<SmtpFixture> {
  const accounts = new Map<string, SubmissionAccount>(ACCOUNTS.map((a) => [a.id, a]));
  accounts.set('alice', { ...accounts.get('alice')!, senders: ['alice@example.test', 'alice@alias.example'] });
  const s = await startSmtp({ accounts: () => accounts });
  open.push(s);
  return s;
}

const body = (from: string) => `From: Alice <${from}>\r\nTo: b@c\r\nSubject: hi\r\n\r\nhello\r\n.\r\n`;

test('a foreign MAIL FROM gets 553 at once, naming the allowed addresses', async () => {
  const s = await smtp();
  const d = await authenticated(s.port, 'alice', 'alicepw-local');
  const r = await d.cmd('MAIL FROM:<other@example.org>');
  assert.match(r[0]!, /^553 /);
  assert.match(r[0]!, /other@example\.org.*alice@example\.test/);
  assert.match((await d.cmd('MAIL FROM:<>'))[0]!, /^553 /, 'an empty sender is no bounce here');
  assert.match((await d.cmd('MAIL FROM:<ALICE@Example.TEST>'))[0]!, /^250 /, 'case-insensitive');
  d.close();
  assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
});

test('a foreign From: header gets 553 after DATA and nothing is queued or left in tmp/', async () => {
  const s = await smtp();
  const d = await authenticated(s.port, 'alice', 'alicepw-local');
  await startData(d, 'alice@example.test');
  const r = await d.send(body('other@example.org'));
  assert.match(r[0]!, /^553 /);
  assert.match(r[0]!, /From: header.*other@example\.org/);
  assert.deepEqual(await outboxFiles(s.fx.dataDir), []);
  assert.deepEqual(await names(path.join(s.fx.dataDir, 'outbox', 'tmp')), []);
  // the session goes on: the same message from an own address is queued
  await startData(d, 'alice@example.test');
  assert.match((await d.send(body('alice@example.test')))[0]!, /^250 /);
  assert.equal((await outboxFiles(s.fx.dataDir)).length, 2);
  d.close();
});

test('an alias is accepted in MAIL FROM and From:', async () => {
  const s = await smtp();
  const d = await authenticated(s.port, 'alice', 'alicepw-local');
  await startData(d, 'alice@alias.example');
  assert.match((await d.send(body('Alice@ALIAS.example')))[0]!, /^250 /);
  d.close();
  assert.equal((await outboxFiles(s.fx.dataDir)).length, 2);
});

test('an account without a senders list (allowAnyFrom) accepts any sender', async () => {
  const s = await smtp();
  const d = await authenticated(s.port, 'bob', 'bobpw-local');
  await startData(d, 'other@example.org');
  assert.match((await d.send(body('someone@else.example')))[0]!, /^250 /);
  d.close();
  assert.equal((await outboxFiles(s.fx.dataDir)).length, 2);
});

test('fromAddresses: display names, comments, several addresses, folding', () => {
  const h = (v: string) => `Subject: x\r\nFrom: ${v}\r\nTo: y\r\n`;
  assert.deepEqual(fromAddresses(h('"Doe, <John> x@y" <a@b.c>')), ['a@b.c']);
  assert.deepEqual(fromAddresses(h('a@b.c (Alice, at home)')), ['a@b.c']);
  assert.deepEqual(fromAddresses(h('A <a@b.c>,\r\n B <d@e.f>')), ['a@b.c', 'd@e.f']);
  assert.deepEqual(fromAddresses('Subject: none\r\n'), []);
});
