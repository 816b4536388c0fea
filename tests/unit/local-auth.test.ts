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
    const auth = new LocalAuth([
      { accountId: 'home', username: 'me', password: 'localpw' },
      { accountId: 'work', username: 'boss', passwordHash: hash },
    ], { baseDelayMs: 0 });
    assert.equal(await auth.verify('me', 'localpw'), 'home');
    assert.equal(await auth.verify('boss', 's3cret pass'), 'work');
    assert.equal(await auth.verify('boss', 's3cret'), undefined);
    assert.equal(await auth.verify('me', 'localpw2'), undefined);
    assert.equal(await auth.verify('nobody', 'localpw'), undefined);
    assert.equal(await auth.verify('', ''), undefined);
  });

  test('a malformed hash never matches', async () => {
    assert.equal(parsePasswordHash('scrypt$abc'), undefined);
    assert.equal(parsePasswordHash('scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA=='), undefined, 'N not a power of 2');
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', passwordHash: 'scrypt$broken' }], { baseDelayMs: 0 });
    assert.equal(await auth.verify('u', 'scrypt$broken'), undefined);
  });

  test('failures double the delay up to the maximum; a success resets it', async () => {
    const slept: number[] = [];
    const auth = new LocalAuth([{ accountId: 'a', username: 'u', password: 'p' }], {
      baseDelayMs: 100, maxDelayMs: 500, sleep: async (ms) => { slept.push(ms); },
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
