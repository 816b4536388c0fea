/**
 * A data directory whose `<dataDir>/control.sock` is too long for a Unix socket (over 120
 * bytes; Linux allows 107, macOS 103, and Node truncates silently): the real daemon starts, its
 * socket is in the private runtime directory (`$XDG_RUNTIME_DIR/localpost`, 0700) under the name
 * every CLI process computes, nothing is bound at a truncated path, `status` and `outbox` reach
 * the daemon through it, and SIGTERM removes it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  makeConfig,
  runCli,
  socketsUnder,
  spawnDaemon,
  statusJson as statusOf,
  waitFor,
} from '../support/localpost.js';
import { freePort } from '../support/smtp.js';

const cfg = makeConfig([{ protocol: 'pop3', port: await freePort() }]); // nothing listens: pulls fail, the daemon runs
after(() => cfg.cleanup());

describe('a data directory too long for a Unix socket', () => {
  test('start → status and outbox through the socket in $XDG_RUNTIME_DIR/localpost → SIGTERM', async () => {
    const dataDir = path.join(cfg.dir, 'd'.repeat(60), 'e'.repeat(60));
    assert.ok(Buffer.byteLength(path.join(dataDir, 'control.sock')) > 120);
    writeFileSync(
      cfg.configFile,
      readFileSync(cfg.configFile, 'utf8').replace(/^dataDir: .*$/m, `dataDir: ${dataDir}`),
    );
    const xdg = path.join(cfg.dir, 'run');
    mkdirSync(xdg, { mode: 0o700 });
    const env = { XDG_RUNTIME_DIR: xdg };
    const socket = path.join(
      xdg,
      'localpost',
      `${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}.sock`,
    );

    const statusJson = () => statusOf(cfg.configFile, env);

    const { proc, out, exited } = spawnDaemon(cfg.configFile, env);
    try {
      await waitFor(() => out().includes('localpost started') || proc.exitCode !== null, 30_000, 'the daemon start');
      assert.equal(proc.exitCode, null, out());

      // the socket where every process computes it, the directory private, nothing truncated
      assert.ok(statSync(socket).isSocket(), out());
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      assert.equal(lstatSync(path.dirname(socket)).mode & 0o777, 0o700);
      assert.equal(existsSync(path.join(dataDir, 'control.sock')), false);
      assert.deepEqual(socketsUnder(cfg.dir), [socket], 'no socket bound at a truncated path');
      assert.ok(out().includes(socket), 'the log names the real socket path');

      // status: live, from the daemon
      const s = await statusJson();
      assert.equal(s.source, 'daemon');
      assert.deepEqual(s.daemon, { running: true, pid: proc.pid });
      assert.equal(s.dataDir, dataDir);
      const human = await runCli(['--config', cfg.configFile, 'status'], env);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, new RegExp(`^localpost: daemon running \\(pid ${proc.pid}\\)$`, 'm'));
      assert.doesNotMatch(human.stdout, /control socket not answering/);

      // outbox through the daemon: its 404, not "the control socket does not answer"
      const drop = await runCli(['--config', cfg.configFile, 'outbox', 'drop', 'nope'], env);
      assert.notEqual(drop.code, 0);
      assert.match(drop.stderr, /no queued or failed outbox entry nope/);
      assert.doesNotMatch(drop.stderr, /does not answer/);

      // SIGTERM: a clean stop, the socket gone
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out());
      assert.equal(existsSync(socket), false);
      const stopped = await statusJson();
      assert.equal(stopped.source, 'state.db');
      assert.deepEqual(stopped.daemon, { running: false });
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });
});
