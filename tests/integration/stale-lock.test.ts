/**
 * What a dead daemon leaves never blocks `localpost start` (after a crash or a power cut, the
 * pid it names often belongs to another process once the machine is back): a lock file of an
 * older localpost naming pid 1 (its bare-pid format), and the lock and pid files of a daemon
 * killed with SIGKILL, its pid file then naming a `sleep` that has its pid, or pid 1. Each time
 * the daemon comes up, `status` shows it running with its own pid, poplib reads the mail through
 * it, a second `start` is still refused with the running pid, and SIGTERM removes the pid file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CollectedCli, makeConfig, runCli, spawnDaemon, statusJson, waitFor } from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
const cleanups: Array<() => void> = [];
before(async () => {
  tb = await startTestbed({ postfix: false });
  await tb.seed('alice', 3);
});
after(async () => {
  for (const c of cleanups) c();
  await tb?.stop();
});

function config() {
  const c = makeConfig([{ protocol: 'pop3', port: tb.pop3Port }]);
  cleanups.push(c.cleanup);
  mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
  return c;
}

const lockOf = (dataDir: string) => path.join(dataDir, 'localpost.lock');
const pidOf = (dataDir: string) => path.join(dataDir, 'localpost.pid');

/** `localpost start`, waited for until it has started (or failed). */
async function start(configFile: string): Promise<CollectedCli> {
  const d = spawnDaemon(configFile);
  await waitFor(() => d.out().includes('localpost started') || d.proc.exitCode !== null, 30_000, 'the daemon start');
  assert.equal(d.proc.exitCode, null, `the daemon came up despite the stale lock:\n${d.out()}`);
  return d;
}

/** The running daemon serves: status names it, poplib reads the 3 messages; a second start is refused; SIGTERM. */
async function checkServesThenStop(
  configFile: string,
  dataDir: string,
  d: Awaited<ReturnType<typeof start>>,
): Promise<void> {
  const pid = d.proc.pid!;
  assert.equal(readFileSync(pidOf(dataDir), 'utf8'), `${pid}\n`, 'the pid file now names the new daemon');
  await waitFor(
    async () => (await statusJson(configFile)).accounts[0]?.lastPull !== undefined,
    20_000,
    'the first pull',
  );
  const s = await statusJson(configFile);
  assert.equal(s.source, 'daemon');
  assert.deepEqual(s.daemon, { running: true, pid });
  assert.equal(s.accounts[0]!.messages, 3);
  const pop3Port = Number(/:(\d+)$/.exec(s.listeners.pop3[0]!)![1]);
  assert.equal((await poplibFetchAll(pop3Port, 'alice', 'localpw')).length, 3);
  const second = await runCli(['--config', configFile, 'start']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`another localpost \\(pid ${pid}\\) is already using`));
  d.proc.kill('SIGTERM');
  assert.equal(await d.exited, 0, d.out().slice(-2000));
  assert.equal(existsSync(pidOf(dataDir)), false);
  assert.deepEqual((await statusJson(configFile)).daemon, { running: false });
}

describe('a stale instance lock does not block start', () => {
  test('a lock naming pid 1 (alive, not a localpost; the old bare-pid format)', async () => {
    const { configFile, dataDir } = config();
    writeFileSync(lockOf(dataDir), '1\n');
    assert.deepEqual(
      (await statusJson(configFile)).daemon,
      { running: false },
      'status does not take pid 1 for a daemon',
    );
    const d = await start(configFile);
    try {
      await checkServesThenStop(configFile, dataDir, d);
    } finally {
      if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    }
  });

  test('the files of a daemon killed with SIGKILL, its pid since taken by another process or pid 1 after a reboot', async () => {
    const { configFile, dataDir } = config();
    const first = await start(configFile);
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(existsSync(lockOf(dataDir)), 'a crash leaves the lock file behind');
    assert.equal(readFileSync(pidOf(dataDir), 'utf8'), `${first.proc.pid}\n`, 'and the pid file');
    assert.deepEqual((await statusJson(configFile)).daemon, { running: false }, 'status: just killed');
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await new Promise((r) => sleeper.once('spawn', r));
      const variants: Array<[string, number]> = [
        ['its pid now a sleep', sleeper.pid!],
        ['after a reboot, its pid now pid 1', 1],
      ];
      for (const [what, pid] of variants) {
        writeFileSync(pidOf(dataDir), `${pid}\n`);
        assert.deepEqual((await statusJson(configFile)).daemon, { running: false }, `status: ${what}`);
        const d = await start(configFile);
        try {
          await checkServesThenStop(configFile, dataDir, d);
        } finally {
          if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
        }
      }
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
