/**
 * `localpost hash-password`: the printed hash is a valid `login.passwordHash` (LocalAuth accepts
 * the password and refuses another); on a terminal the password is asked twice and never
 * echoed; piped, the first line of stdin is the password; empty or mismatched input prints
 * nothing and exits 1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { cliArgs, ROOT } from '../support/localpost.js';
import { runInPty } from '../support/pty.js';

/** Runs `localpost hash-password` with `input` on a pipe as stdin. */
function piped(input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(['hash-password']), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function accepts(hash: string, password: string): Promise<boolean> {
  const auth = new LocalAuth([{ accountId: 'home', username: 'me', passwordHash: hash }], { baseDelayMs: 1 });
  const result = await auth.verify('me', password);
  return result.ok && result.accountId === 'home';
}

describe('localpost hash-password', () => {
  test('piped: the first line is the password; the hash logs it in and nothing else', async () => {
    const r = await piped('correct horse battery\r\nsecond line\n');
    assert.equal(r.code, 0, r.stderr);
    const hash = r.stdout.trim();
    assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.ok(await accepts(hash, 'correct horse battery'));
    assert.ok(!(await accepts(hash, 'correct horse battery\r')));
    assert.ok(!(await accepts(hash, 'second line')));
    const again = (await piped('correct horse battery\n')).stdout.trim();
    assert.notEqual(again, hash, 'a fresh salt each time');
  });

  test('piped: an empty password prints nothing and exits 1', async () => {
    for (const input of ['', '\n']) {
      const r = await piped(input);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /empty password/);
    }
  });

  test('on a terminal: asked twice, never echoed; a mismatch prints nothing', async () => {
    const argv = [process.execPath, ...cliArgs(['hash-password'])];
    const ok = await runInPty(
      argv,
      [
        { expect: 'Local password', send: 's3cret-local' },
        { expect: 'The same again', send: 's3cret-local' },
      ],
      { cwd: ROOT },
    );
    assert.equal(ok.code, 0, ok.output);
    assert.ok(!ok.output.includes('s3cret-local'), 'the password is not echoed');
    const hash = /scrypt\$\S+/.exec(ok.output)?.[0];
    assert.ok(hash && (await accepts(hash, 's3cret-local')), ok.output);

    const bad = await runInPty(
      argv,
      [
        { expect: 'Local password', send: 'one' },
        { expect: 'The same again', send: 'two' },
      ],
      { cwd: ROOT },
    );
    assert.equal(bad.code, 1, bad.output);
    assert.match(bad.output, /the two passwords differ/);
    assert.doesNotMatch(bad.output, /scrypt\$/);
  });
});
