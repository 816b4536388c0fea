/**
 * Local logins (src/listeners/local-auth.ts): plain and scrypt passwords, unknown users, the
 * growing delay after failures and its reset.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashPassword, LocalAuth, parsePasswordHash } from '../../src/listeners/local-auth.js';

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
    assert.equal(await auth.verify('me', 'localpw'), 'home');
    assert.equal(await auth.verify('boss', 's3cret pass'), 'work');
    assert.equal(await auth.verify('boss', 's3cret'), undefined);
    assert.equal(await auth.verify('me', 'localpw2'), undefined);
    assert.equal(await auth.verify('nobody', 'localpw'), undefined);
    assert.equal(await auth.verify('', ''), undefined);
  });

  test('a malformed hash never matches', async () => {
    assert.equal(parsePasswordHash('scrypt$abc'), undefined);
    assert.equal(
      parsePasswordHash('scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA=='),
      undefined,
      'N not a power of 2',
    );
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', passwordHash: 'scrypt$broken' }], { baseDelayMs: 0 });
    assert.equal(await auth.verify('u', 'scrypt$broken'), undefined);
  });

  test('failures double the delay up to the maximum; a success resets it', async () => {
    const slept: number[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], {
      baseDelayMs: 100,
      maxDelayMs: 500,
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    for (let i = 0; i < 5; i++) await auth.verify('u', 'x');
    assert.deepEqual(slept, [100, 200, 400, 500, 500]);
    assert.equal(await auth.verify('u', 'p'), 'a');
    await auth.verify('u', 'x');
    assert.equal(slept.at(-1), 100, 'reset after success');
    await auth.verify('other', 'x');
    assert.equal(slept.at(-1), 100, 'per user name');
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
        sleep: async (ms) => {
          slept.push(ms);
        },
      },
    );
    return { auth, clock, slept };
  }

  test('the delay grows per remote address across user names, and per user name across addresses', async () => {
    const { auth, slept } = harness();
    for (const name of ['x1', 'x2', 'x3', 'x4']) await auth.verify(name, 'guess', '127.0.0.1');
    assert.deepEqual(slept, [100, 200, 400, 800], 'one address guessing many names');
    await auth.verify('y', 'guess', '::1');
    assert.equal(slept.at(-1), 100, 'another address and name start afresh');
    for (const addr of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) await auth.verify('u', 'guess', addr);
    assert.deepEqual(slept.slice(-3), [100, 200, 400], 'one name guessed from many addresses');
  });

  test('a success is not delayed and clears its user name, not the address', async () => {
    const { auth, slept } = harness();
    await auth.verify('u', 'bad', '127.0.0.1');
    await auth.verify('u', 'bad', '127.0.0.1');
    assert.equal(await auth.verify('u', 'p', '127.0.0.1'), 'a');
    assert.deepEqual(slept, [100, 200], 'no delay on success');
    await auth.verify('u', 'bad', '::1');
    assert.equal(slept.at(-1), 100, 'user count cleared');
    await auth.verify('v', 'bad', '127.0.0.1');
    assert.equal(slept.at(-1), 400, 'the address keeps its count');
  });

  test('failures are forgotten after forgetAfterMs; memory stays bounded against random names', async () => {
    const { auth, clock, slept } = harness({ forgetAfterMs: 60_000 });
    await auth.verify('u', 'bad', '127.0.0.1');
    await auth.verify('u', 'bad', '127.0.0.1');
    clock.t += 61_000;
    await auth.verify('u', 'bad', '127.0.0.1');
    assert.equal(slept.at(-1), 100);
    const quick = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], { baseDelayMs: 0 });
    for (let i = 0; i < 12_000; i++) await quick.verify(`name${i}`, 'x', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    assert.ok((quick as unknown as { failures: Map<string, unknown> }).failures.size <= 10_000);
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
      assert.equal(await auth.verify(user, 'wrong horse'), undefined);
      return steps.sort();
    };
    for (const [round, delay] of [500, 1000, 2000].entries()) {
      const hashed = await work('boss');
      assert.deepEqual(
        hashed,
        ['compare 32 bytes', 'scrypt N=16384 r=8 p=1 length=32', `sleep ${delay}`],
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
      assert.equal(await auth.verify(user, 'wrong'), undefined);
      assert.deepEqual(steps, ['compare 32 bytes'], user);
    }
  });
});
