/**
 * Local logins (src/listeners/local-auth.ts, login-throttle.ts, derivation-queue.ts): plain and
 * scrypt passwords, unknown users, the throttle (per name and per address, a window, the right
 * password delayed like a wrong one, one attempt at a time while throttled), the bounded key
 * derivations and the bounded scrypt cost. Work and delays are counted, never timed.
 */
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { DerivationQueue } from '../../src/listeners/derivation-queue.js';
import {
  hashPassword,
  LocalAuth,
  type LoginAttempt,
  type LoginResult,
  parsePasswordHash,
  passwordHashProblem,
} from '../../src/listeners/local-auth.js';

/** The account a login reached, or undefined. */
const who = (r: LoginResult): string | undefined => (r.ok ? r.accountId : undefined);

/** Lets pending promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

/** A cheap scrypt hash (N=1024) of `password`, for tests that run many derivations. */
function cheapHash(password: string): string {
  const salt = Buffer.from('0123456789abcdef');
  const key = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 });
  return `scrypt$1024$8$1$${salt.toString('base64')}$${key.toString('base64')}`;
}

describe('LocalAuth', () => {
  test('plain password and scrypt hash; unknown user and wrong password fail', async () => {
    const hash = await hashPassword('s3cret pass');
    assert.match(hash, /^scrypt\$16384\$8\$1\$/);
    assert.ok(parsePasswordHash(hash));
    const auth = new LocalAuth(
      [
        { accountId: 'home', username: 'me', password: 'localpw' },
        { accountId: 'work', username: 'boss', passwordHash: hash },
      ],
      { baseDelayMs: 0 },
    );
    assert.equal(who(await auth.verify('me', 'localpw')), 'home');
    assert.equal(who(await auth.verify('boss', 's3cret pass')), 'work');
    assert.deepEqual(await auth.verify('boss', 's3cret'), { ok: false, reason: 'bad-credentials' });
    assert.equal(who(await auth.verify('me', 'localpw2')), undefined);
    assert.equal(who(await auth.verify('nobody', 'localpw')), undefined);
    assert.equal(who(await auth.verify('', '')), undefined);
  });

  test('a malformed hash never matches', async () => {
    assert.equal(parsePasswordHash('scrypt$abc'), undefined);
    assert.equal(
      parsePasswordHash('scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA=='),
      undefined,
      'N not a power of 2',
    );
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', passwordHash: 'scrypt$broken' }], { baseDelayMs: 0 });
    assert.equal(who(await auth.verify('u', 'scrypt$broken')), undefined);
  });

  test('a hash costlier than the limits (memory, N×r×p) is refused with a reason, and never derived', async () => {
    const salt = Buffer.alloc(16).toString('base64');
    const key = Buffer.alloc(32).toString('base64');
    for (const [params, what] of [
      ['1048576$32$16', /too costly.*4096 MiB/],
      ['1048576$8$1', /too costly.*1024 MiB/],
      ['16384$8$64', /too costly.*N×r×p=8388608/],
      ['1000$8$1', /power of 2/],
    ] as const) {
      const hash = `scrypt$${params}$${salt}$${key}`;
      assert.match(passwordHashProblem(hash) ?? '', what, params);
      assert.equal(parsePasswordHash(hash), undefined, params);
      const steps: string[] = [];
      const auth = new LocalAuth([{ accountId: 'a', username: 'u', passwordHash: hash }], {
        baseDelayMs: 0,
        onWork: (s) => steps.push(s),
      });
      assert.equal(who(await auth.verify('u', 'x')), undefined);
      assert.ok(!steps.some((s) => s.startsWith('scrypt')), `${params}: no derivation`);
    }
    assert.equal(passwordHashProblem(await hashPassword('x')), undefined, 'the default parameters pass');
    assert.equal(passwordHashProblem('scrypt$131072$8$1$x$y'), undefined, 'N=2^17 r=8 (128 MiB) passes');
  });

  test('failures double the delay up to the maximum, for every answer; a success resets it', async () => {
    const slept: number[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], {
      baseDelayMs: 100,
      maxDelayMs: 500,
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    for (let i = 0; i < 5; i++) await auth.verify('u', 'x');
    assert.deepEqual(slept, [100, 200, 400, 500], 'the first failure is answered at once, then the delay doubles');
    assert.equal(who(await auth.verify('u', 'p')), 'a');
    assert.deepEqual(slept.at(-1), 500, 'the right password waits like a wrong one');
    await auth.verify('u', 'x');
    assert.equal(slept.length, 5, 'reset after success: the next failure is answered at once');
    await auth.verify('u', 'x');
    assert.equal(slept.at(-1), 100);
    await auth.verify('other', 'x');
    assert.equal(slept.length, 6, 'per user name');
  });
});

describe('LocalAuth against guessing', () => {
  /** A clock and a sleep the test controls. */
  function harness(opts: { baseDelayMs?: number; maxDelayMs?: number; forgetAfterMs?: number } = {}) {
    const clock = {
      t: 0,
      now() {
        return this.t;
      },
    };
    const slept: number[] = [];
    const steps: string[] = [];
    const auth = new LocalAuth(
      [
        { accountId: 'a', username: 'u', password: 'p' },
        { accountId: 'b', username: 'v', password: 'q' },
      ],
      {
        baseDelayMs: 100,
        maxDelayMs: 1600,
        ...opts,
        clock,
        onWork: (s) => steps.push(s),
        sleep: async (ms) => {
          slept.push(ms);
        },
      },
    );
    return { auth, clock, slept, steps };
  }

  test('the delay grows per remote address across user names, and per user name across addresses', async () => {
    const { auth, slept } = harness();
    for (const name of ['x1', 'x2', 'x3', 'x4']) await auth.verify(name, 'guess', { remote: '127.0.0.1' });
    assert.deepEqual(slept, [100, 200, 400], 'one address guessing many names');
    await auth.verify('y', 'guess', { remote: '::1' });
    assert.equal(slept.length, 3, 'another address and name start afresh');
    for (const remote of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) await auth.verify('u', 'guess', { remote });
    assert.deepEqual(slept.slice(-2), [100, 200], 'one name guessed from many addresses');
  });

  test('while throttled, a right password is answered exactly as late as a wrong one', async () => {
    for (const m of [1, 2, 3, 6]) {
      const answers: Record<string, number[]> = {};
      for (const last of ['p', 'wrong']) {
        const { auth, slept } = harness();
        for (let i = 0; i < m; i++) await auth.verify('u', `guess${i}`, { remote: '127.0.0.1' });
        const before = slept.length;
        await auth.verify('u', last, { remote: '127.0.0.1' });
        answers[last] = slept.slice(before);
      }
      assert.deepEqual(answers.p, answers.wrong, `after ${m} failures`);
      assert.deepEqual(answers.p, [Math.min(1600, 100 * 2 ** (m - 1))], `after ${m} failures: one delay`);
    }
  });

  test('while throttled, one attempt per name or address at a time: others are refused at once, unchecked', async () => {
    let release = (): void => undefined;
    const steps: string[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], {
      onWork: (s) => steps.push(s),
      sleep: (ms) => {
        steps.push(`sleep ${ms}`);
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    await auth.verify('u', 'bad', { remote: '127.0.0.1' });
    const first = auth.verify('u', 'p', { remote: '127.0.0.1' });
    await tick();
    assert.deepEqual(steps.splice(0), ['compare 32 bytes', 'compare 32 bytes', 'delay 500', 'sleep 500']);
    assert.deepEqual(await auth.verify('u', 'p', { remote: '::1' }), { ok: false, reason: 'throttled' }, 'same name');
    assert.deepEqual(
      await auth.verify('v', 'p', { remote: '127.0.0.1' }),
      { ok: false, reason: 'throttled' },
      'same address',
    );
    assert.deepEqual(steps, ['refused: throttled', 'refused: throttled'], 'nothing checked, no delay');
    assert.equal(who(await auth.verify('w', 'x', { remote: '10.0.0.9' })), undefined, 'others are not held up');
    release();
    assert.equal(who(await first), 'a');
  });

  test('a wrong password counts as soon as it is checked, even if the client has gone before the answer', async () => {
    let release = (): void => undefined;
    const slept: number[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], {
      sleep: (ms) => {
        slept.push(ms);
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    await auth.verify('u', 'bad1');
    let gone = false;
    const abandoned = auth.verify('u', 'bad2', { gone: () => gone });
    await tick();
    gone = true; // the client closes while its answer is delayed
    assert.deepEqual(await auth.verify('u', 'p'), { ok: false, reason: 'throttled' }, 'its delay still holds the name');
    release();
    await abandoned;
    void auth.verify('u', 'p');
    await tick();
    assert.deepEqual(slept, [500, 1000], 'two failures counted: the next answer waits 1 s');
    release();
  });

  test('failures are forgotten after forgetAfterMs (no lockout); memory stays bounded against random names', async () => {
    const { auth, clock, slept } = harness({ forgetAfterMs: 60_000 });
    for (let i = 0; i < 5; i++) await auth.verify('u', 'bad', { remote: '127.0.0.1' });
    assert.deepEqual(slept, [100, 200, 400, 800]);
    clock.t += 59_000;
    assert.equal(who(await auth.verify('u', 'p', { remote: '127.0.0.1' })), 'a');
    assert.equal(slept.at(-1), 1600, 'within the window: the right password waits too');
    clock.t += 61_000;
    assert.equal(who(await auth.verify('u', 'p', { remote: '127.0.0.1' })), 'a');
    assert.equal(slept.length, 5, 'the window has passed: answered at once');
    const quick = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], { baseDelayMs: 0 });
    for (let i = 0; i < 12_000; i++) {
      await quick.verify(`name${i}`, 'x', { remote: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` });
    }
    assert.ok((quick as unknown as { throttle: { size: number } }).throttle.size <= 10_000);
  });

  test('unknown user, wrong password, hashed or plain user: the same answer, the same work, the same delays', async () => {
    const hash = await hashPassword('right horse battery');
    let steps: string[] = [];
    const auth = new LocalAuth(
      [
        { accountId: 'home', username: 'me', password: 'plainpw' },
        { accountId: 'work', username: 'boss', passwordHash: hash },
      ],
      {
        onWork: (step) => steps.push(step),
        sleep: async (ms) => {
          steps.push(`sleep ${ms}`);
        },
      },
    );
    /** The key derivations, comparisons and delays of one failed attempt (order aside). */
    const work = async (user: string) => {
      steps = [];
      assert.equal(who(await auth.verify(user, 'wrong horse')), undefined);
      return steps.sort();
    };
    for (const [round, delay] of [0, 500, 1000].entries()) {
      const hashed = await work('boss');
      assert.deepEqual(
        hashed,
        [
          'compare 32 bytes',
          ...(delay ? [`delay ${delay}`] : []),
          'scrypt N=16384 r=8 p=1 length=32',
          ...(delay ? [`sleep ${delay}`] : []),
        ],
        `round ${round + 1}: one scrypt with the configured parameters, one comparison, the delay`,
      );
      assert.deepEqual(await work('nobody'), hashed, `round ${round + 1}: unknown user`);
      assert.deepEqual(await work('me'), hashed, `round ${round + 1}: plain user`);
    }
  });

  test('without a hashed user: unknown user and wrong password cost one comparison each, no scrypt', async () => {
    let steps: string[] = [];
    const auth = new LocalAuth([{ accountId: 'home', username: 'me', password: 'plainpw' }], {
      baseDelayMs: 0,
      onWork: (step) => steps.push(step),
    });
    for (const user of ['me', 'nobody']) {
      steps = [];
      assert.equal(who(await auth.verify(user, 'wrong')), undefined);
      assert.deepEqual(steps, ['compare 32 bytes'], user);
    }
  });
});

describe('key derivations under a flood', () => {
  test('N attempts at once: at most K derivations run at a time, Q wait, the rest are refused at once', async () => {
    const queue = new DerivationQueue(2, 3);
    let running = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    const task = () => {
      running++;
      most = Math.max(most, running);
      return new Promise<void>((r) => gates.push(r)).then(() => {
        running--;
      });
    };
    const results = Array.from({ length: 20 }, () => queue.run(task));
    const early = await Promise.all(results.slice(5));
    assert.deepEqual(new Set(early.map((r) => (r.ran ? 'ran' : r.reason))), new Set(['busy']), '15 refused at once');
    assert.deepEqual(queue.load, { running: 2, waiting: 3 });
    while (gates.length) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    const ran = await Promise.all(results.slice(0, 5));
    assert.ok(ran.every((r) => r.ran));
    assert.equal(most, 2, 'never more than two at once');
  });

  test('an attempt whose client has gone is dropped before its derivation; stop() drops the waiting ones', async () => {
    const hash = cheapHash('right');
    const steps: string[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', passwordHash: hash }], {
      baseDelayMs: 0,
      derivations: { concurrency: 1, maxQueued: 4 },
      onWork: (s) => steps.push(s),
    });
    const attempt = (gone: boolean, n: number): Promise<LoginResult> => {
      const a: LoginAttempt = { remote: `10.0.0.${n}`, gone: () => gone };
      return auth.verify(`name${n}`, 'wrong', a);
    };
    const results = await Promise.all([attempt(false, 1), attempt(true, 2), attempt(true, 3), attempt(false, 4)]);
    assert.deepEqual(results.map(who), [undefined, undefined, undefined, undefined]);
    assert.equal(steps.filter((s) => s.startsWith('scrypt')).length, 2, 'the two abandoned attempts never ran');
    assert.equal(steps.filter((s) => s === 'refused: gone').length, 2);

    steps.length = 0;
    const flood = Array.from({ length: 30 }, (_, i) => attempt(false, 100 + i));
    auth.stop();
    const out = await Promise.all(flood);
    const reasons = out.map((r) => (r.ok ? 'ok' : r.reason));
    assert.equal(reasons.filter((r) => r === 'busy').length, 25, 'beyond one running and four waiting: busy');
    assert.ok(steps.filter((s) => s.startsWith('scrypt')).length <= 1, 'after stop(), only the running one ran');
    assert.deepEqual(await auth.verify('u', 'right'), { ok: false, reason: 'stopping' });
  });
});
