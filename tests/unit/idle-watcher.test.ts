/**
 * The IdleWatcher's endpoint resolver, in process (the IDLE connection itself is tested against
 * Dovecot in tests/integration/pull-imap.test.ts and idle-signin.test.ts): a resolver that says
 * "sign in first" is retried with a doubling backoff and logged once, not at every retry, and
 * again only when the situation changed; `wake()` tries at once and restarts the backoff; a
 * configuration error is an error line, once per message; `stop()` ends the retries.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { AuthError, ConfigError } from '../../src/shared/errors.js';
import { IdleWatcher } from '../../src/upstream/imap/idle.js';
import type { UpstreamEndpoint } from '../../src/upstream/types.js';
import { waitFor } from '../support/localpost.js';

interface Line {
  level: number;
  msg: string;
  err?: string;
}

/** A debug logger whose lines are collected. */
function captureLog(): { log: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(JSON.parse(chunk.toString()) as Line);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const signIn = () =>
  new AuthError('localpost needs you to sign in again: run `localpost auth home` (not signed in yet)', {
    code: 'EOAUTH_SIGNIN',
  });
const needsSignIn = (err: unknown) => err instanceof AuthError && err.code === 'EOAUTH_SIGNIN';
const WAITING = 'IDLE waits for sign-in: run `localpost auth home`';
const count = (lines: Line[], msg: string, level?: number) =>
  lines.filter((l) => l.msg === msg && (level === undefined || l.level === level)).length;

/** A local port where nothing listens (connections are refused at once). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('waiting for sign-in: retried with backoff, logged once; wake() retries at once; a change is logged again', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] }); // the backoff runs on a clock the test moves, until reset below
  const { log, lines } = captureLog();
  let calls = 0;
  /** Moves the clock by `ms`, lets the attempts it started finish, and returns how many there were. */
  const advance = async (ms: number) => {
    const n = calls;
    t.mock.timers.tick(ms);
    await new Promise((r) => setImmediate(r));
    return calls - n;
  };
  let answer: () => Promise<UpstreamEndpoint> = async () => {
    throw signIn();
  };
  const w = new IdleWatcher({
    endpoint: () => {
      calls++;
      return answer();
    },
    needsSignIn,
    signInHint: 'run `localpost auth home`',
    log,
    onNewMail: () => undefined,
    minBackoffMs: 50,
    maxBackoffMs: 60_000,
  });
  await w.start();
  try {
    // attempts at 0, 50, 150, 350, 750 ms: the next one would come 800 ms later
    assert.equal(await advance(0), 0);
    assert.equal(calls, 1, 'the first attempt at start');
    for (const delay of [50, 100, 200, 400]) {
      assert.equal(await advance(delay - 1), 0, `no retry before ${delay} ms`);
      assert.equal(await advance(1), 1, `a retry after ${delay} ms`);
    }
    assert.equal(w.state, 'waiting-for-sign-in');
    assert.equal(w.connected, false);
    assert.equal(count(lines, WAITING, 40), 1, 'one warn line');
    assert.ok(count(lines, 'IDLE still waits for sign-in') >= 4, 'the retries are at debug');

    const before = calls;
    assert.equal(await w.wake(), 'waiting-for-sign-in', 'wake resolves with the state after its attempt');
    assert.equal(calls, before + 1, 'wake tried at once');
    // the backoff started again from 50 ms, instead of the 800 ms that were due
    assert.equal(await advance(49), 0, 'no retry before 50 ms');
    assert.equal(await advance(1), 1, 'a retry 50 ms after wake');
    assert.equal(count(lines, WAITING), 1, 'still one line');
    t.mock.timers.reset(); // real timers for the connection attempts below

    // signed in, but the server cannot be reached: reconnecting, quietly (offline is normal)
    const port = await closedPort();
    answer = async () => ({ host: '127.0.0.1', port, tls: 'none', username: 'alice', accessToken: 'token-not-logged' });
    assert.equal(await w.wake(), 'reconnecting');
    assert.ok(lines.some((l) => l.msg === 'IDLE connection failed' && l.level === 20));
    // and the sign-in is revoked: that is news, logged once more
    answer = async () => {
      throw signIn();
    };
    await waitFor(() => count(lines, WAITING) === 2, 5000, 'the second waiting line');
    assert.equal(w.state, 'waiting-for-sign-in');
    assert.ok(!JSON.stringify(lines).includes('token-not-logged'), 'no token in the log');
  } finally {
    await w.stop();
  }
  const n = calls;
  assert.equal(w.state, 'stopped');
  assert.equal(await w.wake(), 'stopped', 'wake after stop does nothing');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(calls, n, 'no attempt after stop');
});

test('a configuration error: an error line once per message, retried; other failures are not "waiting for sign-in"', async () => {
  const { log, lines } = captureLog();
  let message = 'accounts.home.incoming.tlsCa: cannot read /nope/ca.pem: ENOENT';
  let calls = 0;
  const w = new IdleWatcher({
    endpoint: async () => {
      calls++;
      throw new ConfigError(message);
    },
    needsSignIn,
    signInHint: 'run `localpost auth home`',
    log,
    onNewMail: () => undefined,
    minBackoffMs: 20,
    maxBackoffMs: 40,
  });
  await w.start();
  try {
    await waitFor(() => calls >= 4, 5000, 'four attempts');
    const settings = 'IDLE cannot resolve the account settings: retrying with backoff (fix them, or reload)';
    assert.equal(count(lines, settings, 50), 1, 'one error line');
    assert.equal(w.state, 'reconnecting');
    assert.equal(count(lines, WAITING), 0);
    message = 'accounts.home.incoming.tlsCa: cannot read /other/ca.pem: EACCES';
    await waitFor(() => count(lines, settings, 50) === 2, 5000, 'a new message logged');
  } finally {
    await w.stop();
  }
});
