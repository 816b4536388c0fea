/**
 * One-shot commands load only what they need: `--help`, `--version`, `status` (with and without a
 * running daemon) and `outbox list` never load the daemon's packages (listeners, IMAP, SMTP delivery, logging). Counted by
 * the modules the CLI resolves (tests/support/module-trace.mjs), not by time; the time and memory
 * figures are in docs/benchmarks.md (bench/cli-startup.ts).
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { makeConfig, ROOT, runCli, spawnDaemon, statusJson, waitFor } from '../support/localpost.js';

const TRACE_HOOK = path.join(ROOT, 'tests/support/module-trace.mjs');
/** Packages only the daemon, `sync`, `outbox`, `check` or `auth` use. */
const DAEMON_PACKAGES = ['imapflow', 'nodemailer', 'smtp-server', 'pino', 'pino-pretty'];

const cfg = makeConfig([{ protocol: 'pop3', port: 9 }]);
after(() => cfg.cleanup());

/** The node_modules packages `localpost ...args` resolves, and its output. */
async function packagesLoaded(args: string[]): Promise<{ packages: Set<string>; stdout: string; code: number | null }> {
  const trace = path.join(cfg.dir, 'modules.txt');
  rmSync(trace, { force: true });
  const r = await runCli(args, { NODE_OPTIONS: `--import ${TRACE_HOOK}`, LOCALPOST_MODULE_TRACE: trace });
  const packages = new Set<string>();
  for (const url of readFileSync(trace, 'utf8').split('\n')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m?.[1]) packages.add(m[1]);
  }
  return { packages, stdout: r.stdout, code: r.code };
}

function assertLean(packages: Set<string>, also: string[] = []): void {
  const loaded = [...DAEMON_PACKAGES, ...also].filter((p) => packages.has(p));
  assert.deepEqual(loaded, [], `loaded: ${[...packages].sort().join(', ')}`);
}

describe('CLI start-up', () => {
  test('--help and --version load commander and nothing of the config, cache or daemon', async () => {
    for (const args of [['--help'], ['--version'], ['init', '--help']]) {
      const r = await packagesLoaded(args);
      assert.equal(r.code, 0, args.join(' '));
      assertLean(r.packages, ['zod', 'yaml', 'better-sqlite3']);
      assert.ok(r.packages.has('commander'), 'the trace sees the packages');
    }
  });

  test('status without a daemon reads state.db, and loads none of the daemon', async () => {
    const r = await packagesLoaded(['--config', cfg.configFile, 'status', '--json']);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.stdout).source, 'state.db');
    assertLean(r.packages);
  });

  test('outbox list without a daemon reads state.db, and loads none of the daemon', async () => {
    const r = await packagesLoaded(['--config', cfg.configFile, 'outbox', 'list']);
    assert.equal(r.code, 0);
    assertLean(r.packages);
    assert.ok(r.packages.has('better-sqlite3'), 'the trace sees the packages');
  });

  test('status with a running daemon asks it, and loads none of the daemon', async () => {
    const daemon = spawnDaemon(cfg.configFile);
    try {
      await waitFor(async () => (await statusJson(cfg.configFile)).source === 'daemon', 60_000, 'the daemon answers');
      const r = await packagesLoaded(['--config', cfg.configFile, 'status', '--json']);
      assert.equal(r.code, 0);
      assert.equal(JSON.parse(r.stdout).source, 'daemon');
      assertLean(r.packages);
    } finally {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
  });

  test('an idle daemon with an outgoing server holds neither nodemailer nor imapflow until a send or a pull needs them', async () => {
    const out = makeConfig([{ protocol: 'pop3', port: 9 }]);
    after(() => out.cleanup());
    appendFileSync(
      out.configFile,
      '    outgoing: { host: 127.0.0.1, port: 9, tls: none, username: alice, password: alicepw }\n',
    );
    const trace = path.join(out.dir, 'daemon-modules.txt');
    const daemon = spawnDaemon(out.configFile, {
      NODE_OPTIONS: `--import ${TRACE_HOOK}`,
      LOCALPOST_MODULE_TRACE: trace,
    });
    try {
      await waitFor(async () => (await statusJson(out.configFile)).source === 'daemon', 60_000, 'the daemon answers');
      // smtp-server (the listener) carries its own copy of nodemailer's shared helpers: not the sender
      const loaded = readFileSync(trace, 'utf8')
        .split('\n')
        .filter((url) => !url.includes('/smtp-server/node_modules/'));
      assert.ok(
        loaded.some((url) => url.includes('/node_modules/smtp-server/')),
        'the trace sees the listener packages',
      );
      for (const pkg of ['nodemailer', 'imapflow'])
        assert.ok(!loaded.some((url) => url.includes(`/node_modules/${pkg}/`)), `${pkg} loaded`);
    } finally {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
  });
});
