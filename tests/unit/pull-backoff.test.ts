/**
 * Backing off after failed pulls and telling throttling from a wrong password:
 * the pure backoff policy; the classification of refused logins (POP3 response codes and texts,
 * imapflow errors); and the SyncService against the scriptable fake POP3 server — a throttled
 * or refused login backs automatic pulls off (schedule and pull on login start nothing, logged
 * once), an explicit sync tries at once, a success or a changed config ends it, `status`
 * shows it, and a restarted service with the same state.db keeps it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import {
  backoffAfter,
  clockTime,
  isBackingOff,
  nextBackoff,
  PULL_BACKOFF,
  type PullBackoff,
} from '../../src/cache/pull-backoff.js';
import { formatStatus } from '../../src/cli/status.js';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { StatusReport } from '../../src/control/protocol.js';
import { pullOnLogin } from '../../src/daemon/pop3-listener.js';
import { SyncService } from '../../src/daemon/sync.js';
import { AuthError, isOfflineError, isThrottleText, TemporaryError, ThrottledError } from '../../src/shared/errors.js';
import { classifyImapError } from '../../src/upstream/imap/connect.js';
import { classifyLoginRefusal, Pop3Client, Pop3ReplyError } from '../../src/upstream/pop3/client.js';
import { type FakePop3, type FakePop3Options, startFakePop3 } from '../fakes/fake-pop3.js';
import { fakePop3ConfigText, settlesAtOnce } from '../support/localpost.js';
import { capturedLog } from '../support/log.js';

const MIN = 60_000;
const half = () => 0.5; // jitter factor exactly 1

describe('backoff policy', () => {
  test('1 min doubling to 1 h; jitter within [initial, max]', () => {
    let b: PullBackoff | undefined;
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      b = nextBackoff(b, { now: 1_000, reason: 'auth' }, PULL_BACKOFF, half);
      delays.push((b.until - 1_000) / MIN);
    }
    assert.deepEqual(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert.equal(b!.failures, 9);
    for (const r of [0, 0.3, 0.999999, 1]) {
      for (let n = 1; n <= 12; n++) {
        let x: PullBackoff | undefined;
        for (let k = 0; k < n; k++) x = nextBackoff(x, { now: 0, reason: 'error' }, PULL_BACKOFF, () => r);
        assert.ok(x!.until >= MIN && x!.until <= 60 * MIN, `n=${n} r=${r}: ${x!.until}`);
      }
    }
    // jitter spreads accounts that failed together
    const third: PullBackoff = { failures: 2, until: 0, reason: 'error' };
    const spread = new Set(
      [0.1, 0.4, 0.7, 0.9].map((r) => nextBackoff(third, { now: 0, reason: 'error' }, PULL_BACKOFF, () => r).until),
    );
    assert.equal(spread.size, 4);
  });

  test('after a pull: ok resets, offline ends the window but keeps the count, a failure without reason changes nothing', () => {
    const first = backoffAfter(
      undefined,
      { result: 'auth', now: 0, reason: 'auth', error: 'refused' },
      PULL_BACKOFF,
      half,
    )!;
    assert.deepEqual(first, { failures: 1, until: MIN, reason: 'auth', error: 'refused' });
    assert.ok(isBackingOff(first, MIN - 1));
    assert.ok(!isBackingOff(first, MIN));
    assert.ok(!isBackingOff(undefined, 0));
    const second = backoffAfter(first, { result: 'error', now: 10, reason: 'throttled' }, PULL_BACKOFF, half)!;
    assert.equal(second.failures, 2);
    assert.equal(second.until, 10 + 2 * MIN);
    assert.equal(second.reason, 'throttled');
    assert.equal(backoffAfter(second, { result: 'ok', now: 20 }), undefined);
    assert.equal(backoffAfter(undefined, { result: 'offline', now: 20 }), undefined, 'offline starts nothing');
    assert.deepEqual(backoffAfter(second, { result: 'offline', now: 20 }), { ...second, until: 20 });
    assert.equal(
      backoffAfter(second, { result: 'error', now: 20 }),
      second,
      'a configuration problem reached no server',
    );
    assert.match(clockTime(new Date(2024, 0, 1, 7, 5).getTime()), /^07:05$/);
  });
});

describe('classification of refused logins', () => {
  const st = (text: string, code?: string) => ({ kind: 'err' as const, text, ...(code ? { code } : {}) });

  test('POP3: response codes first, then the words', () => {
    assert.equal(classifyLoginRefusal(st('Server Unavailable. 21')), 'throttled');
    assert.equal(classifyLoginRefusal(st('wait a bit', 'LOGIN-DELAY')), 'throttled');
    assert.equal(classifyLoginRefusal(st('try later', 'SYS/TEMP')), 'throttled');
    assert.equal(classifyLoginRefusal(st('mailbox locked, try again later', 'IN-USE')), 'temporary');
    assert.equal(classifyLoginRefusal(st('backend down', 'SYS/PERM')), 'temporary');
    assert.equal(
      classifyLoginRefusal(st('invalid login, try again later', 'AUTH')),
      'auth',
      '[AUTH] is the credentials whatever the words',
    );
    assert.equal(classifyLoginRefusal(st('Logon failure: unknown user name or bad password.')), 'auth');
    assert.equal(classifyLoginRefusal(st('Authentication failed.')), 'auth');
    assert.equal(classifyLoginRefusal(st('')), 'auth');
  });

  test('throttle words', () => {
    for (const t of [
      'Server Unavailable. 21',
      'Request is throttled',
      'temporarily unavailable',
      'please try again later',
      'Too many simultaneous connections',
      'too many login attempts',
    ]) {
      assert.ok(isThrottleText(t), t);
    }
    for (const t of ['Authentication failed', 'invalid credentials', 'unknown user', 'Web login required'])
      assert.ok(!isThrottleText(t), t);
    const e = new ThrottledError('POP3 x:1: login refused for now: -ERR Server Unavailable. 21');
    assert.ok(e instanceof TemporaryError && !(e instanceof AuthError));
    assert.equal(e.code, 'ETHROTTLED');
    assert.ok(!isOfflineError(e));
    assert.match(e.message, /Server Unavailable\. 21: the server asks us to slow down; localpost backs off$/);
  });

  test('IMAP (imapflow errors): throttling codes, INUSE, a refused login, anything else unchanged', () => {
    const imapErr = (props: Record<string, unknown>) => Object.assign(new Error('Command failed'), props);
    const refused = classifyImapError(
      imapErr({
        authenticationFailed: true,
        serverResponseCode: 'AUTHENTICATIONFAILED',
        responseStatus: 'NO',
        responseText: 'Authentication failed.',
        response: '2 NO [AUTHENTICATIONFAILED] Authentication failed.',
      }),
    );
    assert.ok(refused instanceof AuthError && refused.code === 'EAUTH', String(refused));
    assert.match(refused.message, /IMAP login refused: NO \[AUTHENTICATIONFAILED\] Authentication failed\./);
    assert.equal(
      (refused as Error & { authenticationFailed?: boolean }).authenticationFailed,
      true,
      'imapflow field kept',
    );
    for (const code of ['UNAVAILABLE', 'LIMIT', 'THROTTLED']) {
      const e = classifyImapError(
        imapErr({ authenticationFailed: true, serverResponseCode: code, response: `NO [${code}] busy` }),
      );
      assert.ok(e instanceof ThrottledError, `${code}: ${String(e)}`);
    }
    assert.ok(
      classifyImapError(
        imapErr({
          code: 'ETHROTTLE',
          responseText: 'Request is throttled. Suggested Backoff Time: 92415 milliseconds',
        }),
      ) instanceof ThrottledError,
    );
    assert.ok(
      classifyImapError(
        imapErr({ authenticationFailed: true, responseText: 'Too many simultaneous connections. (Failure)' }),
      ) instanceof ThrottledError,
    );
    const inuse = classifyImapError(imapErr({ serverResponseCode: 'INUSE', response: 'NO [INUSE] mailbox in use' }));
    assert.ok(inuse instanceof TemporaryError && !(inuse instanceof ThrottledError) && !(inuse instanceof AuthError));
    const net = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(classifyImapError(net), net);
    const already = new AuthError('x');
    assert.equal(classifyImapError(already), already);
  });
});

const fakes: FakePop3[] = [];
const dirs: string[] = [];
after(async () => {
  for (const f of fakes) await f.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function fake(opts: FakePop3Options): Promise<FakePop3> {
  const f = await startFakePop3({ user: 'alice', pass: 'pw', ...opts });
  fakes.push(f);
  return f;
}

describe('POP3 client: refused logins', () => {
  for (const capa of [undefined, ['USER', 'UIDL']]) {
    const how = capa ? 'USER/PASS' : 'AUTH PLAIN';
    test(`${how}: Server Unavailable and [LOGIN-DELAY] are throttling, [AUTH] a refused password, [IN-USE] temporary`, async () => {
      const cases: Array<[string, (e: unknown) => boolean]> = [
        [
          '-ERR Server Unavailable. 21',
          (e) =>
            e instanceof ThrottledError && /Server Unavailable\. 21/.test(e.message) && /slow down/.test(e.message),
        ],
        [
          '-ERR [LOGIN-DELAY] minimum time between logins is 900 s',
          (e) => e instanceof ThrottledError && /LOGIN-DELAY/.test(e.message),
        ],
        ['-ERR [SYS/TEMP] try later', (e) => e instanceof ThrottledError],
        [
          '-ERR [AUTH] invalid login',
          (e) => e instanceof AuthError && /login refused: -ERR \[AUTH\] invalid login/.test(e.message),
        ],
        [
          '-ERR [IN-USE] maildrop locked',
          (e) => e instanceof Pop3ReplyError && e.responseCode === 'IN-USE' && !(e instanceof ThrottledError),
        ],
      ];
      for (const [reply, ok] of cases) {
        const f = await fake({ capa, loginReply: reply });
        const c = await Pop3Client.connect({ host: '127.0.0.1', port: f.port, tls: 'none', timeoutMs: 5000 });
        const err = await c.login('alice', 'pw').catch((e: unknown) => e);
        c.close();
        assert.ok(ok(err), `${reply}: ${String(err)}`);
        assert.ok(!(err instanceof AuthError) || reply.includes('[AUTH]'), `${reply} is not a password problem`);
        assert.equal(f.logins, 1);
      }
    });
  }

  test('a greeting that says Server Unavailable is throttling', async () => {
    const f = await fake({ greeting: '-ERR Server Unavailable. 21' });
    await assert.rejects(
      Pop3Client.connect({ host: '127.0.0.1', port: f.port, tls: 'none', timeoutMs: 5000 }),
      ThrottledError,
    );
  });
});

// ---- the SyncService ------------------------------------------------------------------------

function configFor(port: number, dataDir: string, password = 'pw', extra = ''): Config {
  return parseConfigText(fakePop3ConfigText(port, dataDir, password, `, syncOnLogin: 5s${extra}`));
}

async function service(f: FakePop3, password = 'pw') {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-backoff-'));
  dirs.push(dataDir);
  const cache = await Cache.open({ dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
  const clock = {
    t: Date.now(),
    now() {
      return this.t;
    },
  };
  const cap = capturedLog('trace');
  let cfg = configFor(f.port, dataDir, password);
  const svc = new SyncService({ accounts: cfg.accounts, cache, log: cap.log, clock, random: half });
  const report = (): StatusReport => ({
    version: 1,
    source: 'daemon',
    dataDir,
    daemon: { running: true, pid: 1 },
    accounts: [
      {
        id: 'a',
        email: 'a@example.test',
        sends: false,
        messages: 0,
        bytes: 0,
        online: 'online',
        lastPull: svc.state('a')?.last,
      },
    ],
    outbox: { accounts: [], entries: [] },
    listeners: { pop3: [], pop3Tls: [], imap: [], imapTls: [], smtp: [] },
  });
  return {
    svc,
    cache,
    clock,
    cap,
    report,
    dataDir,
    config: () => cfg,
    setConfig: (c: Config) => {
      cfg = c;
      svc.setAccounts(c.accounts);
    },
    close: () => cache.close(),
  };
}

describe('SyncService backoff', () => {
  test('throttled (Server Unavailable. 21): classified as throttled, automatic pulls skipped and logged once, explicit sync tries, success resets', async () => {
    let throttle = true;
    const f = await fake({ loginReply: () => (throttle ? '-ERR Server Unavailable. 21' : undefined) });
    const s = await service(f);
    try {
      const r1 = await s.svc.sync('a');
      assert.equal(r1.result, 'throttled', 'its own outcome in the sync history');
      assert.match(r1.error!, /Server Unavailable\. 21: the server asks us to slow down; localpost backs off/);
      assert.doesNotMatch(r1.error!, /password/);
      const b = s.svc.backoff('a')!;
      assert.equal(b.reason, 'throttled');
      assert.equal(b.failures, 1);
      assert.equal(b.until, s.clock.t + MIN);
      assert.equal(s.svc.state('a')?.online, true, 'a throttling server is reachable');
      assert.equal(s.cache.lastSync('a')?.result, 'throttled');
      assert.equal(f.logins, 1);

      // the schedule and pull on login start nothing while backing off; logged once
      for (let i = 0; i < 5; i++) assert.equal(s.svc.autoSync('a', i % 2 ? 'schedule' : 'login'), undefined);
      const hook = pullOnLogin({
        config: s.config,
        cache: () => s.cache,
        sync: () => s.svc,
        log: pino({ level: 'silent' }),
        clock: s.clock,
      });
      assert.ok(await settlesAtOnce(hook('a')), 'the local login does not wait');
      assert.equal(f.logins, 1, 'no upstream login during the backoff');
      const pauses = s.cap.msgs().filter((m) => m.startsWith('automatic pulls of this account pause until'));
      assert.equal(pauses.length, 1);
      assert.equal(s.cap.msgs().filter((m) => /slow down \(throttled\)/.test(m)).length, 1);

      // status: "backing off until HH:MM (throttled)"
      const text = formatStatus(s.report(), s.clock.t);
      assert.match(
        text,
        new RegExp(
          `a: backing off until ${clockTime(b.until)} \\(throttled\\); 1 failed pull in a row, \`localpost sync\` tries at once`,
        ),
      );
      assert.match(text, /slow down/);
      assert.doesNotMatch(formatStatus(s.report(), b.until), /backing off/, 'not once the time has come');

      // an explicit sync tries at once (and grows the backoff)
      const r2 = await s.svc.sync('a');
      assert.equal(r2.result, 'throttled');
      assert.equal(f.logins, 2);
      assert.equal(s.svc.backoff('a')!.failures, 2);
      assert.equal(s.svc.backoff('a')!.until, s.clock.t + 2 * MIN);

      // once the time has come, the schedule pulls again; a success resets
      s.clock.t += 2 * MIN;
      throttle = false;
      const auto = s.svc.autoSync('a', 'schedule');
      assert.ok(auto);
      assert.equal((await auto).result, 'ok');
      assert.equal(s.svc.backoff('a'), undefined);
      assert.equal(s.svc.state('a')?.backoff, undefined);
      assert.equal(s.svc.state('a')?.last?.backoff, undefined);
      assert.doesNotMatch(formatStatus(s.report(), s.clock.t), /backing off/);
      assert.ok(s.cap.msgs().includes('pull works again: automatic pulls resume'));
      throttle = true;
      await s.svc.sync('a');
      assert.equal(s.svc.backoff('a')!.failures, 1, 'the count started again');
    } finally {
      s.close();
    }
  });

  test('[LOGIN-DELAY] is throttled; [AUTH] is a refused login that backs off as "auth"', async () => {
    const delay = await fake({ loginReply: '-ERR [LOGIN-DELAY] wait 15 minutes' });
    const s1 = await service(delay);
    try {
      const r = await s1.svc.sync('a');
      assert.equal(r.result, 'throttled');
      assert.equal(s1.svc.backoff('a')?.reason, 'throttled');
    } finally {
      s1.close();
    }
    const auth = await fake({ loginReply: '-ERR [AUTH] invalid login' });
    const s2 = await service(auth);
    try {
      const r = await s2.svc.sync('a');
      assert.equal(r.result, 'auth');
      assert.match(r.error!, /login refused: -ERR \[AUTH\] invalid login/);
      assert.equal(s2.svc.backoff('a')?.reason, 'auth');
      assert.match(formatStatus(s2.report(), s2.clock.t), /a: backing off until \d\d:\d\d \(login refused\)/);
      assert.ok(
        s2.cap
          .msgs()
          .includes('upstream refused the login: check the account password (queued and cached mail are kept)'),
      );
    } finally {
      s2.close();
    }
  });

  test('a restart during a backoff keeps it: no scheduled pull before `until`, explicit sync tries, the count keeps doubling', async () => {
    let throttle = true;
    const f = await fake({ loginReply: () => (throttle ? '-ERR Server Unavailable. 21' : undefined) });
    const s = await service(f);
    const restart = async () => {
      const cache = await Cache.open({ dataDir: s.dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
      const svc = new SyncService({
        accounts: s.config().accounts,
        cache,
        log: pino({ level: 'silent' }),
        clock: s.clock,
        random: half,
      });
      return { cache, svc };
    };
    assert.equal((await s.svc.sync('a')).result, 'throttled');
    assert.equal(s.svc.backoff('a')?.until, s.clock.t + MIN);
    s.close();

    let d = await restart();
    try {
      const b = d.svc.backoff('a');
      assert.deepEqual(
        { failures: b?.failures, until: b?.until, reason: b?.reason },
        { failures: 1, until: s.clock.t + MIN, reason: 'throttled' },
      );
      assert.equal(d.svc.state('a')?.last?.result, 'throttled');
      assert.equal(d.svc.state('a')?.last?.backoff?.until, s.clock.t + MIN, 'status shows the backoff after a restart');
      assert.equal(d.svc.autoSync('a', 'schedule'), undefined, 'no scheduled pull before `until`');
      assert.equal(await d.svc.autoSyncAll('reconnect').then((r) => r.length), 0);
      assert.equal(f.logins, 1);
      assert.equal((await d.svc.sync('a')).result, 'throttled', 'an explicit sync tries at once');
      assert.equal(f.logins, 2);
      assert.equal(d.svc.backoff('a')?.failures, 2, 'the count keeps doubling across the restart');
      assert.equal(d.svc.backoff('a')?.until, s.clock.t + 2 * MIN);
    } finally {
      d.cache.close();
    }

    d = await restart();
    try {
      assert.equal(d.svc.backoff('a')?.failures, 2);
      s.clock.t += 2 * MIN;
      throttle = false;
      const auto = d.svc.autoSync('a', 'schedule');
      assert.ok(auto, 'the schedule pulls once `until` has come');
      assert.equal((await auto).result, 'ok');
      assert.equal(d.cache.pullBackoff('a'), undefined, 'a success clears the stored backoff');
    } finally {
      d.cache.close();
    }
    d = await restart();
    try {
      assert.equal(d.svc.state('a')?.backoff, undefined);
    } finally {
      d.cache.close();
    }
  });

  test('a reload that changes the incoming settings ends the backoff; offline and config problems do not back off', async () => {
    const f = await fake({});
    const s = await service(f, 'wrong');
    try {
      assert.equal((await s.svc.sync('a')).result, 'auth');
      assert.ok(s.svc.backoff('a'));
      s.setConfig(configFor(f.port, s.dataDir, 'wrong')); // nothing changed
      assert.ok(s.svc.backoff('a'));
      s.setConfig(configFor(f.port, s.dataDir, 'pw'));
      assert.equal(s.svc.backoff('a'), undefined);
      assert.equal(s.cache.pullBackoff('a'), undefined, 'also in state.db');
      assert.ok(s.cap.msgs().includes('incoming settings changed: automatic pulls resume'));
      assert.equal((await s.svc.autoSync('a', 'schedule'))?.result, 'ok');

      s.setConfig(configFor(1, s.dataDir)); // nothing listens on port 1
      assert.equal((await s.svc.sync('a')).result, 'offline');
      assert.equal(s.svc.backoff('a'), undefined, 'offline: the connectivity probe handles it');
      assert.ok(s.svc.autoSync('a', 'schedule'), 'offline does not stop the schedule');
      await s.svc.sync('a');

      process.env.LP_BACKOFF_TEST_MISSING = '';
      s.setConfig(configFor(f.port, s.dataDir, '{ env: LP_BACKOFF_TEST_MISSING }'));
      assert.equal((await s.svc.sync('a')).result, 'error');
      assert.equal(s.svc.backoff('a'), undefined, 'a configuration problem reached no server');
    } finally {
      delete process.env.LP_BACKOFF_TEST_MISSING;
      s.close();
    }
  });
});
