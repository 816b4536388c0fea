/**
 * runProgram, the one way localpost starts a child process: it never rejects, reports a program
 * that cannot start, keeps at most maxBuffer bytes, and a timeout with `group` kills what the
 * program started too.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runProgram } from '../../src/shared/exec.js';

describe('runProgram', () => {
  test('stdin, stdout, stderr and the exit status', async () => {
    const r = await runProgram('/bin/sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'hello' });
    assert.deepEqual(
      { code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut, error: r.error },
      { code: 3, stdout: 'hello', stderr: 'oops\n', timedOut: false, error: undefined },
    );
  });

  test('a program that does not exist resolves with its error', async () => {
    const r = await runProgram('localpost-no-such-program', []);
    assert.equal(r.error?.code, 'ENOENT');
    assert.equal(r.code, null);
  });

  test('an argument spawn refuses resolves with its error', async () => {
    const r = await runProgram('/bin/echo', ['a\0b']);
    assert.ok(r.error);
  });

  test('output beyond maxBuffer is dropped and reported', async () => {
    const r = await runProgram('/bin/sh', ['-c', 'printf %0300d 0'], { maxBuffer: 100 });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 100);
    assert.equal(r.truncated, true);
  });

  test('a timeout with group kills the program and what it started', async () => {
    // the background sleep holds stdout open: the result comes only once it is dead too
    const r = await runProgram('/bin/sh', ['-c', 'sleep 60 & sleep 60'], { timeoutMs: 100, group: true });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
  });

  test('env replaces the environment', async () => {
    const r = await runProgram('/bin/sh', ['-c', 'echo "$ONLY_THIS"'], { env: { ONLY_THIS: 'yes' } });
    assert.equal(r.stdout, 'yes\n');
  });
});
