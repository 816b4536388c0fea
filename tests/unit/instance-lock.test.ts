import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { acquireLock, LockedError } from '../../src/daemon/instance-lock.js';

test('the lock holds the pid, refuses a second holder while alive, and is released', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-lock-'));
  const lock = await acquireLock(dir);
  assert.equal(readFileSync(path.join(dir, 'localpost.lock'), 'utf8').trim(), String(process.pid));
  // a live foreign pid: a sleeping child
  const child = spawn('sleep', ['30']);
  await lock.release();
  assert.equal(existsSync(path.join(dir, 'localpost.lock')), false);
  writeFileSync(path.join(dir, 'localpost.lock'), `${child.pid}\n`);
  await assert.rejects(acquireLock(dir), (err: unknown) => err instanceof LockedError && err.pid === child.pid && /already using/.test(err.message));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
  // now stale: taken over
  const again = await acquireLock(dir);
  await again.release();
});
