/**
 * Failing pulls against the real Dovecot:
 *
 * - a daemon whose upstream password is wrong, with pull on login and a schedule every 2 s, is
 *   hammered by neither: over ~10 s and 5 local poplib logins Dovecot sees 1 or 2 failed logins,
 *   not 10+; each local login is answered from the cache at once; `localpost status` shows the
 *   backoff; `localpost sync` tries at once; after the password is fixed (config rewritten,
 *   SIGHUP) the next `localpost sync` succeeds and the schedule pulls again;
 * - a throttling server (the fake POP3: `Server Unavailable. 21`): the pull is recorded as
 *   `throttled`; a daemon restarted during the backoff logs in neither at start nor on its
 *   schedule, `localpost sync` still tries at once and the count keeps growing;
 * - an OAuth access token revoked by the provider while localpost still caches it (POP3 XOAUTH2
 *   and IMAP): the next pull forces one refresh and succeeds in the same run; when that refresh
 *   answers invalid_grant, the "sign in again" path applies (the notice in the INBOX), with no
 *   backoff.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { authorize } from '../../src/cli/auth.js';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { SyncService } from '../../src/daemon/sync.js';
import { AuthError } from '../../src/shared/errors.js';
import { createImapClient } from '../../src/upstream/imap/connect.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';
import { inboxDir, makeConfig, readCached, runCli, spawnDaemon, waitFor } from '../support/localpost.js';
import { capturedLog } from '../support/log.js';
import { type FakeOAuth, oauthHomeConfig, startFakeOAuth } from '../support/oauth-server.js';
import { poplibFetchAll } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

process.env.LOCALPOST_KEYRING = 'none'; // the key file; no desktop keyring in tests

let tb: Testbed;
let oauth: FakeOAuth;
const cleanups: Array<() => unknown> = [];
before(async () => {
  oauth = await startFakeOAuth();
  tb = await startTestbed({
    postfix: false,
    env: { OAUTH2_INTROSPECTION_URL: `${oauth.base}/introspect`, EXTRA_USERS: 'wendy:wendypw' },
  });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tb?.stop();
  await oauth?.close();
});

/** Failed logins of `user` in Dovecot's log (auth_verbose: one "Password mismatch" line each). */
function mismatches(user: string): number {
  const log = readFileSync(path.join(tb.dir, 'log/dovecot.log'), 'utf8');
  return log.split('\n').filter((l) => l.includes(`passwd-file(${user}@`) && l.includes('Password mismatch')).length;
}

describe('backoff of a failing account', () => {
  test('wrong password: schedule and pull on login do not hammer Dovecot; status shows it; sync tries; fixed → works', async () => {
    await tb.seed('wendy', 2);
    const port = await freePort();
    const c = makeConfig(
      [
        {
          id: 'wendy',
          protocol: 'pop3',
          port: tb.pop3Port,
          username: 'wendy',
          password: 'wrong-horse',
          schedule: '*/2 * * * * *',
        },
      ],
      `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"], workarounds: [] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
    );
    cleanups.push(() => c.cleanup());
    writeFileSync(
      c.configFile,
      readFileSync(c.configFile, 'utf8').replace(/(\n {6}idle: .*\n)/, '$1      syncOnLogin: 5s\n'),
    );
    const cli = (...args: string[]) => runCli(['--config', c.configFile, ...args]);
    const { proc, out } = spawnDaemon(c.configFile);
    cleanups.push(async () => {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('close', r));
      }
    });
    const msgs = () =>
      out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
    const count = (re: RegExp) => msgs().filter((m) => re.test(m)).length;

    await waitFor(() => out().includes('POP3 listener ready'), 60_000, `POP3 listener:\n${out()}`);
    const t0 = Date.now();
    await waitFor(
      () => count(/^automatic pulls of this account pause until \d\d:\d\d after 1 failed pull in a row/) === 1,
      20_000,
      `the backoff:\n${out().slice(-3000)}`,
    );

    // 5 local logins in a row: each answered from the (empty) cache, none starting a pull (the
    // Dovecot count below: a pull on login would be one more failed upstream login each)
    for (let i = 0; i < 5; i++) assert.deepEqual(await poplibFetchAll(port, 'wendy', 'localpw'), []);
    // and ~10 s of a schedule firing every 2 s
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - t0))));
    const attempts = mismatches('wendy');
    assert.ok(attempts >= 1 && attempts <= 2, `Dovecot saw ${attempts} failed logins of wendy`);
    assert.equal(
      count(/^upstream refused the login: check the account password/),
      attempts,
      'one error line per failure',
    );
    assert.equal(
      count(/^automatic pulls of this account pause until/),
      attempts,
      'the backoff is logged once per failure',
    );

    // status shows the backoff (text and JSON)
    const st = await cli('status');
    assert.equal(st.code, 0, st.stderr);
    assert.match(
      st.stdout,
      /wendy: backing off until \d\d:\d\d \(login refused\); 1 failed pull in a row, `localpost sync` tries at once/,
    );
    const json = JSON.parse((await cli('status', '--json')).stdout) as {
      accounts: Array<{
        lastPull?: {
          result: string;
          finishedAt: number;
          backoff?: { reason: string; until: number; failures: number };
        };
      }>;
    };
    const lp = json.accounts[0]!.lastPull!;
    assert.equal(lp.result, 'auth');
    assert.equal(lp.backoff?.reason, 'auth');
    const pause = lp.backoff!.until - lp.finishedAt;
    assert.ok(pause >= 45_000 && pause < 75_000, `a minute (±25 % jitter) after the failed pull: ${pause} ms`);

    // an explicit sync tries at once
    const s1 = await cli('sync');
    assert.equal(s1.code, 1);
    assert.match(s1.stdout, /wendy auth: .*login refused/);
    await waitFor(() => mismatches('wendy') === attempts + 1, 5000, 'the explicit sync reached Dovecot');
    assert.match(
      (await cli('status')).stdout,
      /wendy: backing off until \d\d:\d\d \(login refused\); 2 failed pulls in a row/,
    );

    // fix the password and reload: the next explicit sync succeeds, the schedule resumes
    writeFileSync(c.configFile, readFileSync(c.configFile, 'utf8').replace('"wrong-horse"', '"wendypw"'));
    proc.kill('SIGHUP');
    await waitFor(() => msgs().includes('configuration reloaded'), 10_000, 'the reload');
    assert.ok(msgs().includes('incoming settings changed: automatic pulls resume'));
    const s2 = await cli('sync');
    assert.equal(s2.code, 0, s2.stdout + s2.stderr);
    // (the reload ended the backoff, so a scheduled pull may have fetched the 2 messages first)
    assert.match(s2.stdout, /wendy ok, \d new/);
    const after = await cli('status');
    assert.doesNotMatch(after.stdout, /backing off/);
    assert.match(after.stdout, /wendy +online .*: ok, \d+ new/); // the schedule may have pulled again meanwhile
    const done = count(/^pull done$/);
    await waitFor(() => count(/^pull done$/) > done, 6000, 'a scheduled pull after the fix');
    assert.equal(mismatches('wendy'), attempts + 1, 'no failed login since the fix');
    assert.equal(readCached(inboxDir(c.dataDir, 'wendy')).length, 2);
    assert.doesNotMatch(out(), /wrong-horse|wendypw/, 'no password in the log');

    proc.kill('SIGTERM');
    assert.equal(await new Promise((r) => proc.once('close', r)), 0);
  });
});

describe('backoff of a throttled account across a restart', () => {
  test('recorded as throttled; the restarted daemon keeps waiting; `localpost sync` tries at once', async () => {
    const f = await startFakePop3({ user: 'alice', pass: 'pw', loginReply: '-ERR Server Unavailable. 21' });
    cleanups.push(() => f.close());
    const c = makeConfig([{ id: 'th', protocol: 'pop3', port: f.port, password: 'pw', schedule: '*/2 * * * * *' }]);
    cleanups.push(() => c.cleanup());
    const cli = (...args: string[]) => runCli(['--config', c.configFile, ...args]);
    let d = spawnDaemon(c.configFile);
    const stop = async () => {
      d.proc.kill('SIGTERM');
      assert.equal(await d.exited, 0);
    };
    cleanups.push(async () => {
      if (d.proc.exitCode === null) await stop();
    });

    await waitFor(
      () => d.out().includes('automatic pulls of this account pause until'),
      60_000,
      `the backoff:\n${d.out().slice(-3000)}`,
    );
    assert.equal(f.logins, 1);
    const lastPull = async () =>
      (
        JSON.parse((await cli('status', '--json')).stdout) as {
          accounts: Array<{ lastPull?: { result: string; backoff?: { reason: string; failures: number } } }>;
        }
      ).accounts[0]!.lastPull!;
    const lp = await lastPull();
    assert.equal(lp.result, 'throttled');
    assert.equal(lp.backoff?.reason, 'throttled');
    assert.match((await cli('status')).stdout, /th: backing off until \d\d:\d\d \(throttled\); 1 failed pull in a row/);

    // restart during the backoff: no login at start nor on the schedule (every 2 s)
    await stop();
    d = spawnDaemon(c.configFile);
    await waitFor(() => d.out().includes('localpost started'), 60_000, `the restart:\n${d.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(f.logins, 1, 'the restarted daemon waits for the backoff to end');
    assert.equal((await lastPull()).backoff?.failures, 1, 'status shows the backoff kept in state.db');

    // an explicit sync tries at once, and the count keeps growing
    const s1 = await cli('sync');
    assert.equal(s1.code, 1);
    assert.match(s1.stdout, /th throttled: .*Server Unavailable\. 21/);
    assert.equal(f.logins, 2);
    assert.match(
      (await cli('status')).stdout,
      /th: backing off until \d\d:\d\d \(throttled\); 2 failed pulls in a row/,
    );
    await stop();
  });
});

// ---- OAuth: a token revoked before its expiry ------------------------------------------------

function oauthConfig(protocol: 'pop3' | 'imap'): Config {
  const dir = mkdtempSync(path.join(tmpdir(), 'lp-revoke-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return parseConfigText(
    oauthHomeConfig(oauth, { dataDir: `${dir}/data`, protocol, port: protocol === 'pop3' ? tb.pop3Port : tb.imapPort }),
  );
}

describe('OAuth token revoked upstream', () => {
  for (const protocol of ['pop3', 'imap'] as const) {
    test(`${protocol}: the pull forces one refresh and succeeds in the same run; invalid_grant then → sign in again, no backoff`, async () => {
      await tb.seed('alice', 3, undefined, { reset: true });
      const cfg = oauthConfig(protocol);
      oauth.pendingPolls = 0;
      await authorize(cfg.accounts[0]!, { dataDir: cfg.dataDir, method: 'device', print: () => undefined, pollMs: 20 });
      const cache = await Cache.open({ dataDir: cfg.dataDir, accounts: ['home'], log: pino({ level: 'silent' }) });
      try {
        const cap = capturedLog();
        const sync = new SyncService({ accounts: cfg.accounts, cache, log: cap.log });
        const r1 = await sync.sync('home');
        assert.equal(r1.result, 'ok', r1.error);
        assert.equal(r1.newMessages, 3);
        const refreshes = oauth.refreshes();

        // the provider revokes the token localpost holds (valid for another hour, as far as it knows)
        assert.ok(oauth.revoke() >= 1);
        await tb.appendMessage('alice', Buffer.from('Subject: after the revocation\r\n\r\nhello\r\n'));
        const r2 = await sync.sync('home');
        assert.equal(r2.result, 'ok', r2.error);
        assert.equal(r2.newMessages, 1);
        assert.equal(oauth.refreshes() - refreshes, 1, 'exactly one forced refresh');
        assert.ok(
          cap
            .msgs()
            .includes(
              'upstream refused the OAuth access token (revoked or rotated?): refreshing it and trying once more',
            ),
        );
        assert.equal(sync.backoff('home'), undefined);

        // revoked again, and the sign-in itself is gone: the usual "sign in again" path
        oauth.revoke();
        oauth.mode = 'invalid_grant';
        try {
          const r3 = await sync.sync('home');
          assert.equal(r3.result, 'auth');
          assert.match(r3.error!, /localpost needs you to sign in again: run `localpost auth home`/);
          assert.equal(oauth.refreshes() - refreshes, 2, 'one more refresh attempt, answered invalid_grant');
        } finally {
          oauth.mode = 'ok';
        }
        assert.equal(sync.backoff('home'), undefined, 'a missing sign-in reaches no server: nothing to back off from');
        const notices = readCached(inboxDir(cfg.dataDir, 'home'))
          .map((b) => b.toString('latin1'))
          .filter((m) => /^Subject: localpost needs you to sign in again/m.test(m));
        assert.equal(notices.length, 1);
      } finally {
        cache.close();
      }
    });
  }

  test('IMAP: Dovecot refusing a password is an AuthError (imapflow fields kept)', async () => {
    const c = createImapClient(
      { host: '127.0.0.1', port: tb.imapPort, tls: 'none', username: 'wendy', password: 'nope' },
      pino({ level: 'silent' }),
    );
    c.on('error', () => undefined);
    try {
      await assert.rejects(
        c.connect(),
        (err: Error & { authenticationFailed?: boolean }) =>
          err instanceof AuthError &&
          err.authenticationFailed === true &&
          /^IMAP login refused: NO \[AUTHENTICATIONFAILED\]/.test(err.message),
      );
    } finally {
      c.close();
    }
  });
});
