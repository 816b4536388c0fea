/**
 * IDLE for an OAuth account that signs in while the daemon runs: the real daemon starts with an
 * IMAP account (`idle: true`, an `{oauth2}` password, no sign-in yet, a yearly schedule) against
 * Dovecot with an oauth2 passdb. Its IDLE watcher waits, saying so once in the log and in
 * `status`; `localpost auth` (device flow against the local token server) then tells the daemon,
 * which pulls the mail already upstream at once (the auth command prints how many) and starts
 * IDLE without a reload: a message delivered afterwards is cached within seconds. When the
 * provider then revokes the access token, the watcher's next login is refused and the one after
 * refreshes the token first.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  inboxDir,
  LOOPBACK_LISTEN,
  readCached,
  runCli,
  spawnDaemon,
  statusJson,
  type TempConfig,
  tempConfig,
  waitFor,
} from '../support/localpost.js';
import { type FakeOAuth, oauth2Yaml, startFakeOAuth } from '../support/oauth-server.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const env = { LOCALPOST_KEYRING: 'none' }; // the key file; no desktop keyring in tests
const WAITING = 'IDLE waits for sign-in: run `localpost auth home`';
let oauth: FakeOAuth;
let tb: Testbed;
let cfg: TempConfig | undefined;
let configFile: string;
let dataDir: string;

before(async () => {
  oauth = await startFakeOAuth();
  tb = await startTestbed({ postfix: false, env: { OAUTH2_INTROSPECTION_URL: `${oauth.base}/introspect` } });
  await tb.seed('alice', 3, 1000, { archiveN: 0 });
  cfg = tempConfig(
    'lp-idle-signin-',
    (data) => `
dataDir: ${data}
log: { level: debug }
${LOOPBACK_LISTEN}accounts:
  - id: home
    email: alice@example.test
    login: { password: localpw }
    incoming: { protocol: imap, host: 127.0.0.1, port: ${tb.imapPort}, tls: none, username: alice@example.test, idle: true, folders: [INBOX], schedule: "0 0 1 1 *", password: { oauth2: ${oauth2Yaml(oauth)} } }
`,
  );
  ({ configFile, dataDir } = cfg);
});
after(async () => {
  await tb?.stop();
  await oauth?.close();
  cfg?.cleanup();
});

/** `status --json`'s entry of the account. */
async function accountStatus(): Promise<{ idle?: string; auth?: { state: string }; messages: number }> {
  const report = await statusJson(configFile, env);
  assert.equal(report.source, 'daemon');
  return report.accounts.find((a) => a.id === 'home')!;
}

const count = (text: string, what: string) => text.split(what).length - 1;

test('a daemon started before `localpost auth` begins IDLE at the sign-in, without a reload', async () => {
  const run = spawnDaemon(configFile, env);
  const daemon: ChildProcess = run.proc;
  try {
    await waitFor(() => run.out().includes(WAITING), 15_000, 'the waiting-for-sign-in line');
    // the watcher retries (1 s, then 2 s) without repeating the line
    await waitFor(() => run.out().includes('IDLE still waits for sign-in'), 10_000, 'a quiet retry');
    await waitFor(() => run.out().includes('localpost started'), 10_000, 'the daemon to start');
    const waiting = await accountStatus();
    assert.equal(waiting.idle, 'waiting-for-sign-in');
    assert.equal(waiting.auth?.state, 'not-signed-in');
    const human = await runCli(['--config', configFile, 'status'], env);
    assert.match(human.stdout, /IDLE/);
    assert.match(human.stdout, /home .*waits for sign-in/);
    assert.equal(readCached(inboxDir(dataDir, 'home')).length, 0);

    oauth.pendingPolls = 1;
    const auth = await runCli(['--config', configFile, 'auth', 'home'], env);
    assert.equal(auth.code, 0, auth.stderr + auth.stdout);
    assert.match(auth.stdout, /signed in: account home; tokens saved in /);
    assert.match(auth.stdout, /the running daemon pulled 3 new messages for home; IDLE watches its INBOX/);
    assert.doesNotMatch(auth.stdout, /next pull/);
    assert.equal(readCached(inboxDir(dataDir, 'home')).length, 3, 'pulled before the auth command returned');
    assert.match(run.out(), /IDLE watching INBOX: the account is signed in now/);
    assert.equal((await accountStatus()).idle, 'connected');

    // new mail upstream: IDLE announces it and the daemon pulls (the schedule is yearly)
    await tb.seed('alice', 1, 1000, { archiveN: 0 });
    await waitFor(() => readCached(inboxDir(dataDir, 'home')).length === 4, 10_000, 'the IDLE-triggered pull');

    // the provider revokes the access token and the server drops the connection: the watcher's
    // login with the token in hand is refused, so the next attempt refreshes it and IDLE resumes
    oauth.access.clear();
    const refreshes = () => oauth.requests.filter((q) => q.form.grant_type === 'refresh_token').length;
    const refreshed = refreshes();
    const watching = count(run.out(), 'IDLE watching INBOX');
    execFileSync('doveadm', ['-c', path.join(tb.dir, 'etc/dovecot.conf'), 'kick', 'alice@example.test']);
    await waitFor(
      () => count(run.out(), 'IDLE watching INBOX') > watching,
      15_000,
      'IDLE to reconnect with a new token',
    );
    assert.ok(refreshes() > refreshed, 'the refused token was refreshed');
    await tb.seed('alice', 1, 1000, { archiveN: 0 });
    await waitFor(
      () => readCached(inboxDir(dataDir, 'home')).length === 5,
      10_000,
      'the IDLE-triggered pull after the refresh',
    );

    assert.equal(count(run.out(), WAITING), 1, 'the waiting line is logged once');
    assert.doesNotMatch(run.out(), /IDLE not started/);
  } finally {
    daemon.kill('SIGTERM');
  }
  const code = await new Promise((r) => daemon.once('close', (c) => r(c)));
  assert.equal(code, 0, run.out().slice(-2000));
});

test('`localpost auth` with no daemon running keeps the hint; it never fails for the daemon', async () => {
  const r = await runCli(['--config', configFile, 'auth', 'home'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /signed in: account home; .*A running daemon uses them at its next pull\./);
});
