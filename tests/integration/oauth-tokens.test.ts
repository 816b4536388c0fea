/**
 * OAuth token life cycle against a local authorization server run by the test: sign-in by the
 * device flow and by the browser flow (PKCE, loopback redirect), the sealed token file (0600),
 * refresh before expiry, rotation of the refresh token, a 500 and a timeout (the token
 * survives both), and invalid_grant (the token is discarded; a log line, `status`, and one
 * message in the local INBOX). Ends with a real pull from Dovecot over POP3 XOAUTH2.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { authorize } from '../../src/cli/auth.js';
import { formatStatus } from '../../src/cli/status.js';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { readStatus } from '../../src/daemon/status-report.js';
import { SyncService } from '../../src/daemon/sync.js';
import { AuthError, TemporaryError } from '../../src/shared/errors.js';
import { readTokenFile, tokenFilePath } from '../../src/upstream/oauth/token-store.js';
import { OAuthTokens } from '../../src/upstream/oauth/tokens.js';
import { capturedLog } from '../support/log.js';
import { type FakeOAuth, oauthHomeConfig, startFakeOAuth } from '../support/oauth-server.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

process.env.LOCALPOST_KEYRING = 'none'; // the key file; no desktop keyring in tests

let oauth: FakeOAuth;
let tb: Testbed;
const dirs: string[] = [];
before(async () => {
  oauth = await startFakeOAuth();
  tb = await startTestbed({ postfix: false, env: { OAUTH2_INTROSPECTION_URL: `${oauth.base}/introspect` } });
});
after(async () => {
  await tb?.stop();
  await oauth?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function config(): Config {
  const dir = mkdtempSync(path.join(tmpdir(), 'lp-oauth-'));
  dirs.push(dir);
  return parseConfigText(oauthHomeConfig(oauth, { dataDir: `${dir}/data`, protocol: 'pop3', port: tb.pop3Port }));
}

const client = () => ({ clientId: 'localpost-test', tokenUrl: oauth.tokenUrl, scopes: ['mail'] });

async function signIn(cfg: Config): Promise<void> {
  const printed: string[] = [];
  await authorize(cfg.accounts[0]!, {
    dataDir: cfg.dataDir,
    method: 'device',
    print: (l) => printed.push(l),
    pollMs: 50,
  });
}

async function refreshTokenOf(cfg: Config, tokens: OAuthTokens): Promise<string> {
  const f = (await readTokenFile(cfg.dataDir, 'home'))!;
  const { unseal } = await import('../../src/upstream/oauth/token-store.js');
  return unseal(await tokens.keys.load(f.key!), 'home', f.sealed!).refreshToken;
}

describe('sign-in', () => {
  test('device flow: code, pending, tokens; the file is sealed and 0600, the key file too', async () => {
    const cfg = config();
    oauth.pendingPolls = 2;
    const printed: string[] = [];
    const before = oauth.requests.length;
    const r = await authorize(cfg.accounts[0]!, {
      dataDir: cfg.dataDir,
      method: 'device',
      print: (l) => printed.push(l),
      pollMs: 50,
    });
    assert.equal(r.keySource, 'file');
    assert.match(printed.join('\n'), /open http:\/\/127\.0\.0\.1:\d+\/verify/);
    assert.match(printed.join('\n'), /enter the code ABCD-EFGH/);
    const polls = oauth.requests.slice(before).filter((q) => q.form.grant_type?.endsWith('device_code'));
    assert.equal(polls.length, 3, 'two authorization_pending answers, then tokens');
    const file = tokenFilePath(cfg.dataDir, 'home');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(cfg.dataDir, 'oauth', 'key')).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /rt-|at-/, 'no token in clear');
    const t = await new OAuthTokens({ dataDir: cfg.dataDir }).accessToken('home', client());
    assert.equal(oauth.access.get(t.accessToken), 'alice@example.test');
  });

  test('browser flow: PKCE and a loopback redirect', async () => {
    const cfg = config();
    let url = '';
    const done = authorize(cfg.accounts[0]!, {
      dataDir: cfg.dataDir,
      method: 'browser',
      openBrowser: false,
      print: (l) => {
        if (l.startsWith('http')) url = l;
      },
    });
    while (!url) await new Promise((r) => setTimeout(r, 10));
    const u = new URL(url);
    assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
    assert.match(u.searchParams.get('redirect_uri')!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url); // the fake server redirects to the loopback listener at once
    assert.match(await page.text(), /signed in/);
    const r = await done;
    assert.equal(r.method, 'browser');
    assert.equal((await readTokenFile(cfg.dataDir, 'home'))!.state, 'ok');
  });
});

describe('refresh', () => {
  test('refreshes before expiry and saves a rotated refresh token; the old one is dead upstream', async () => {
    const cfg = config();
    oauth.pendingPolls = 0;
    oauth.expiresIn = 200; // less than the 5 minutes of margin: every call refreshes
    await signIn(cfg);
    const tokens = new OAuthTokens({ dataDir: cfg.dataDir });
    const rt0 = await refreshTokenOf(cfg, tokens);
    oauth.rotate = true;
    try {
      const a1 = await tokens.accessToken('home', client());
      const rt1 = await refreshTokenOf(cfg, tokens);
      assert.notEqual(rt1, rt0, 'rotated token saved');
      assert.equal(oauth.refresh.has(rt0), false);
      const a2 = await new OAuthTokens({ dataDir: cfg.dataDir }).accessToken('home', client());
      assert.notEqual(a2.accessToken, a1.accessToken, 'the saved (rotated) token still refreshes');
    } finally {
      oauth.rotate = false;
      oauth.expiresIn = 3600;
    }
    // a token with more than 5 minutes left is used as is
    const a3 = await tokens.accessToken('home', client());
    const n = oauth.requests.length;
    const a4 = await tokens.accessToken('home', client());
    assert.equal(a4.accessToken, a3.accessToken);
    assert.equal(oauth.requests.length, n);
  });

  for (const fault of ['500', 'timeout'] as const) {
    test(`a ${fault} keeps the refresh token`, async () => {
      const cfg = config();
      oauth.expiresIn = 1;
      await signIn(cfg);
      oauth.expiresIn = 3600;
      const tokens = new OAuthTokens({ dataDir: cfg.dataDir, timeoutMs: 300 });
      const rt = await refreshTokenOf(cfg, tokens);
      await new Promise((r) => setTimeout(r, 1100)); // the access token is now expired
      oauth.mode = fault;
      try {
        await assert.rejects(
          tokens.accessToken('home', client()),
          (err: Error) =>
            err instanceof TemporaryError &&
            !(err instanceof AuthError) &&
            (fault === '500' ? /500/.test(err.message) : (err as TemporaryError).code === 'ETIMEDOUT'),
        );
      } finally {
        oauth.mode = 'ok';
      }
      const f = (await readTokenFile(cfg.dataDir, 'home'))!;
      assert.equal(f.state, 'ok');
      assert.equal(await refreshTokenOf(cfg, tokens), rt);
      const t = await tokens.accessToken('home', client());
      assert.equal(oauth.access.get(t.accessToken), 'alice@example.test', 'works again once the server answers');
    });
  }
});

describe('invalid_grant, through a real pull from Dovecot', () => {
  test('a pull signs in with XOAUTH2; invalid_grant discards the token and tells the log, status and the INBOX once', async () => {
    const cfg = config();
    await tb.seed('alice', 2, undefined, { reset: true });
    await signIn(cfg);
    const { log, lines } = capturedLog();
    const cache = await Cache.open({ dataDir: cfg.dataDir, accounts: ['home'], log: pino({ level: 'silent' }) });
    try {
      const sync = new SyncService({ accounts: cfg.accounts, cache, log });
      const r1 = await sync.sync('home');
      assert.equal(r1.result, 'ok', r1.error);
      assert.equal(r1.newMessages, 2);
      assert.equal((await readStatus(cfg)).accounts[0]!.auth?.state, 'signed-in');

      // the provider revokes the sign-in; the next pull must refresh (force expiry)
      const f = (await readTokenFile(cfg.dataDir, 'home'))!;
      const tokens = new OAuthTokens({ dataDir: cfg.dataDir });
      const { seal, unseal, writeTokenFile } = await import('../../src/upstream/oauth/token-store.js');
      const key = await tokens.keys.load(f.key!);
      await writeTokenFile(cfg.dataDir, {
        ...f,
        sealed: seal(key, 'home', { ...unseal(key, 'home', f.sealed!), expiresAt: Date.now() }),
      });
      oauth.mode = 'invalid_grant';
      try {
        const r2 = await sync.sync('home');
        assert.equal(r2.result, 'auth');
        assert.match(r2.error!, /localpost needs you to sign in again: run `localpost auth home`/);
        const r3 = await sync.sync('home'); // a second tick: no second message, no second request
        assert.equal(r3.result, 'auth');
      } finally {
        oauth.mode = 'ok';
      }
      // 1. the log line, once
      const errors = lines().filter(
        (l) => l.level === 50 && /sign in again/.test(String(l.msg)) && l.component === 'oauth',
      );
      assert.equal(errors.length, 1, JSON.stringify(lines().filter((l) => Number(l.level) >= 40)));
      // the refresh token is gone from the file
      const g = (await readTokenFile(cfg.dataDir, 'home'))!;
      assert.equal(g.state, 'invalid');
      assert.equal(g.sealed, undefined);
      assert.match(g.reason!, /invalid_grant/);
      // 2. status
      const st = await readStatus(cfg);
      assert.equal(st.accounts[0]!.auth?.state, 'sign-in-required');
      assert.match(formatStatus(st), /home: localpost needs you to sign in again: run `localpost auth home`/);
      // 3. one message in the local INBOX
      const inbox = path.join(cfg.dataDir, 'accounts', 'home');
      const { readCached, inboxDir } = await import('../support/localpost.js');
      const msgs = readCached(inboxDir(cfg.dataDir, 'home')).map((b) => b.toString('latin1'));
      assert.ok(inbox);
      const notices = msgs.filter((m) => /^Subject: localpost needs you to sign in again/m.test(m));
      assert.equal(notices.length, 1, JSON.stringify(lines().filter((l) => Number(l.level) >= 40)) + msgs.length);
      assert.match(notices[0]!, /localpost needs you to sign in again: run `localpost auth home`/);
      assert.equal(msgs.length, 3);

      // signing in again makes the next pull work
      await signIn(cfg);
      const r4 = await sync.sync('home');
      assert.equal(r4.result, 'ok', r4.error);
      assert.equal((await readStatus(cfg)).accounts[0]!.auth?.state, 'signed-in');
    } finally {
      cache.close();
    }
  });
});
