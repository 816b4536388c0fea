/**
 * The config keys of the sending side (schema.ts): `listen.smtp` (loopback unless allowRemote,
 * optional STARTTLS certificate), `outgoing.maxMessageSize`, `outgoing.saveSent` (IMAP only),
 * the account's `aliases` and `outgoing.allowAnyFrom`,
 * `connectivity`, and what the daemon derives from them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { retryPolicy, submissionAccounts } from '../../src/daemon/outgoing.js';
import { ConfigError } from '../../src/shared/errors.js';

const config = (listen: string, outgoing: string, protocol = 'imap') => `
dataDir: /tmp/lp-config-test
${listen}
accounts:
  - id: home
    email: me@example.com
    login: { password: pw }
    incoming: { protocol: ${protocol}, host: mail.example.com, username: me, password: x }
${outgoing}
`;
const OUT = '    outgoing: { host: smtp.example.com, username: me, password: x }';

function problems(text: string): string[] {
  try {
    parseConfigText(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('defaults: SMTP on 1025 (loopback, tls auto: plaintext without a local certificate), 25 MB per account, probes every 30 s, retry 1m..1h, maxAge 5d', () => {
  const c = parseConfigText(config('', OUT));
  const { port, hosts, tls } = c.listen.smtp; // the limits' defaults are in config.test.ts
  assert.deepEqual({ port, hosts, tls }, { port: 1025, hosts: ['127.0.0.1', '::1'], tls: 'auto' });
  assert.equal(c.accounts[0]!.outgoing!.maxMessageSize, 25 * 1024 * 1024);
  assert.equal(c.accounts[0]!.outgoing!.port, 587);
  assert.deepEqual(c.connectivity, { probeInterval: 30_000, probeTimeout: 5_000 });
  assert.deepEqual(retryPolicy(c), { initial: 60_000, max: 3_600_000, maxAge: 5 * 86_400_000 });
  assert.deepEqual(
    [...submissionAccounts(c).values()],
    [{ id: 'home', maxMessageSize: 25 * 1024 * 1024, canSend: true, senders: ['me@example.com'] }],
  );
  assert.deepEqual(
    [...submissionAccounts(parseConfigText(config('', ''))).values()],
    [{ id: 'home', maxMessageSize: 0, canSend: false, senders: ['me@example.com'] }],
  );
});

test('listen.smtp: a remote host needs allowRemote; tls takes a certificate and a key', () => {
  assert.match(
    problems(config('listen:\n  smtp: { hosts: ["0.0.0.0"] }', OUT))[0]!,
    /^listen\.smtp\.hosts\[0\]: 0\.0\.0\.0 is not a loopback address/,
  );
  assert.deepEqual(
    parseConfigText(config('listen:\n  smtp: { hosts: ["0.0.0.0"], allowRemote: true }', OUT)).listen.smtp.hosts,
    ['0.0.0.0'],
  );
  const c = parseConfigText(config('listen:\n  smtp: { port: 2525, tls: { cert: /etc/c.pem, key: /etc/k.pem } }', OUT));
  assert.deepEqual(c.listen.smtp.tls, { cert: '/etc/c.pem', key: '/etc/k.pem', legacy: false });
  assert.match(
    problems(config('listen:\n  smtp: { tls: { cert: /etc/c.pem } }', OUT))[0]!,
    /^listen\.smtp\.tls\.key: required/,
  );
});

test('outgoing: maxMessageSize takes sizes; saveSent needs an IMAP incoming server', () => {
  const c = parseConfigText(
    config('', '    outgoing: { host: s, username: me, password: x, maxMessageSize: 10MB, saveSent: Sent }'),
  );
  assert.equal(c.accounts[0]!.outgoing!.maxMessageSize, 10 * 1024 * 1024);
  assert.equal(c.accounts[0]!.outgoing!.saveSent, 'Sent');
  assert.match(
    problems(config('', '    outgoing: { host: s, username: me, password: x, saveSent: Sent }', 'pop3'))[0]!,
    /^accounts\[0\]\.outgoing\.saveSent: needs an IMAP incoming server/,
  );
  assert.match(
    problems(config('connectivity: { probeInterval: often }', OUT))[0]!,
    /^connectivity\.probeInterval: expected a duration/,
  );
});

test('aliases join email as allowed senders (lower-cased); allowAnyFrom drops the list', () => {
  const withAliases = config('', OUT).replace(
    '    email: me@example.com',
    '    email: Me@Example.com\n    aliases: [Other@Example.org]',
  );
  assert.deepEqual([...submissionAccounts(parseConfigText(withAliases)).values()][0]!.senders, [
    'me@example.com',
    'other@example.org',
  ]);
  const any = parseConfigText(config('', '    outgoing: { host: s, username: me, password: x, allowAnyFrom: true }'));
  assert.equal([...submissionAccounts(any).values()][0]!.senders, undefined);
  assert.match(
    problems(
      config('', OUT).replace('    email: me@example.com', '    email: me@example.com\n    aliases: [nope]'),
    )[0]!,
    /^accounts\[0\]\.aliases\[0\]: expected an email address/,
  );
});
