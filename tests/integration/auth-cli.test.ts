/**
 * `localpost auth ACCOUNT` run as the CLI (src/cli/bin.ts through tsx) against the local OAuth
 * server of tests/support/oauth-server.ts: the device flow prints the verification URL and the
 * user code, waits while the server answers `authorization_pending`, then saves the tokens
 * sealed (mode 0600, no token in clear), and `status --json` turns from "not signed in" to
 * "signed in". An unknown account and an account without OAuth are refused with a message.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LOOPBACK_LISTEN, runCli, statusJson, type TempConfig, tempConfig } from '../support/localpost.js';
import { type FakeOAuth, oauth2Yaml, startFakeOAuth } from '../support/oauth-server.js';

const env = { LOCALPOST_KEYRING: 'none' }; // the key file; no desktop keyring in tests
let oauth: FakeOAuth;
let cfg: TempConfig | undefined;
let configFile: string;
let dataDir: string;

before(async () => {
  oauth = await startFakeOAuth();
  const oauth2 = oauth2Yaml(oauth);
  cfg = tempConfig(
    'lp-auth-cli-',
    (data) => `
dataDir: ${data}
${LOOPBACK_LISTEN}accounts:
  - id: home
    email: alice@example.test
    login: { password: localpw }
    incoming: { protocol: pop3, host: 127.0.0.1, port: 1, tls: none, username: alice@example.test, schedule: "0 0 1 1 *", password: { oauth2: ${oauth2} } }
    outgoing: { host: 127.0.0.1, port: 1, tls: none, username: alice@example.test, password: { oauth2: ${oauth2} } }
  - id: plain
    email: bob@example.test
    login: { password: localpw2 }
    incoming: { protocol: pop3, host: 127.0.0.1, port: 1, tls: none, username: bob, password: bobpw, schedule: "0 0 1 1 *" }
`,
  );
  ({ configFile, dataDir } = cfg);
});
after(async () => {
  await oauth?.close();
  cfg?.cleanup();
});

/** `status --json`'s auth entry of an account. */
async function authState(id: string): Promise<unknown> {
  const report = await statusJson(configFile, env);
  return report.accounts.find((a) => a.id === id)?.auth?.state;
}

describe('localpost auth ACCOUNT (CLI)', () => {
  test('device flow: prints URL and code, saves the tokens sealed and 0600; status says signed in', async () => {
    assert.equal(await authState('home'), 'not-signed-in');
    const plain = await runCli(['--config', configFile, 'status'], env);
    assert.match(plain.stdout, /home: localpost needs you to sign in: run `localpost auth home`/);

    oauth.pendingPolls = 2;
    const before = oauth.requests.length;
    const r = await runCli(['--config', configFile, 'auth', 'home'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`open ${oauth.base.replace(/\./g, '\\.')}/verify`));
    assert.match(r.stdout, /enter the code ABCD-EFGH/);
    assert.match(r.stdout, /signed in: account home; tokens saved in .*home\.json \(key: key file beside it\)/);
    const polls = oauth.requests.slice(before).filter((q) => q.form.grant_type?.endsWith('device_code'));
    assert.equal(polls.length, 3, 'two authorization_pending answers, then tokens');

    const file = path.join(dataDir, 'oauth', 'home.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dataDir, 'oauth', 'key')).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    const issued = [...oauth.refresh.keys(), ...oauth.access.keys()];
    assert.ok(issued.length >= 2);
    for (const token of issued) {
      assert.ok(!text.includes(token), 'no token in clear in the file');
      assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'no token printed');
    }

    assert.equal(await authState('home'), 'signed-in');
    assert.equal(await authState('plain'), undefined, 'an account without OAuth has no auth entry');
    const after = await runCli(['--config', configFile, 'status'], env);
    assert.doesNotMatch(after.stdout, /sign in/);
  });

  test('an unknown account is refused, naming the configured ones', async () => {
    const r = await runCli(['--config', configFile, 'auth', 'nope'], env);
    assert.equal(r.code, 78, 'a configuration problem, as for an account without OAuth');
    assert.match(r.stderr, /no such account: nope \(configured: home, plain\)/);
  });

  test('an account without OAuth is refused, saying what to configure', async () => {
    const before = oauth.requests.length;
    const r = await runCli(['--config', configFile, 'auth', 'plain'], env);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /account "plain" does not use OAuth: set incoming\.password to \{ oauth2: /);
    assert.equal(oauth.requests.length, before, 'no request to the provider');
  });
});
