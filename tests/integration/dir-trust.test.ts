/**
 * The daemon does not trust a config or a data directory another user controls
 * (docs/security.md): `start` exits 78 naming the file, its owner and its mode for a config its
 * group can write, one owned by another user (uid 65534: needs root, as CI runs), and for a data
 * directory that is a symbolic link; `check` reports the same. Otherwise it starts, tightens a
 * data directory of ours to 0700 and creates state.db 0600.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { makeConfig, runCli, spawnDaemon, type TempConfig, waitFor } from '../support/localpost.js';

const temps: TempConfig[] = [];
after(() => {
  for (const t of temps) t.cleanup();
});

/** A config whose one account points at a closed port: the daemon starts, its pulls fail. */
function config(): TempConfig {
  const t = makeConfig([{ protocol: 'pop3', port: 1 }]);
  temps.push(t);
  return t;
}

const mode = (p: string) => statSync(p).mode & 0o7777;

/** `start`, expected to refuse: its exit code and output (a daemon that came up is stopped, and fails the test). */
async function refusedStart(configFile: string): Promise<{ code: number | null; out: string }> {
  const d = spawnDaemon(configFile);
  await waitFor(() => d.out().includes('localpost started') || d.proc.exitCode !== null, 30_000, 'start to end');
  if (d.proc.exitCode === null) {
    d.proc.kill('SIGTERM');
    await d.exited;
    assert.fail(`the daemon started:\n${d.out().slice(-1000)}`);
  }
  return { code: d.proc.exitCode, out: d.out() };
}
const uid = process.geteuid?.() ?? 0;

describe('start refuses what another user controls (exit 78)', () => {
  test('a config file its group can write', async () => {
    const t = config();
    chmodSync(t.configFile, 0o664);
    const r = await refusedStart(t.configFile);
    assert.equal(r.code, 78, r.out);
    assert.equal(
      r.out.split('\n')[0],
      `localpost: refusing the config file ${t.configFile}: it is writable by group (owner uid ${uid}, mode 0664); ` +
        'chown it to the user localpost runs as (or root) and chmod go-w (see docs/security.md)',
    );
    assert.equal(existsSync(t.dataDir), false, 'nothing was created');
    const check = await runCli(['--config', t.configFile, 'check']);
    assert.equal(check.code, 78);
    assert.match(check.stderr, /^localpost: refusing the config file .*: it is writable by group/);
  });

  test('a config file owned by another user', {
    skip: uid === 0 ? false : 'chown to uid 65534 needs root (CI runs as root)',
  }, async () => {
    const t = config();
    chownSync(t.configFile, 65534, 65534);
    const r = await refusedStart(t.configFile);
    assert.equal(r.code, 78, r.out);
    assert.match(
      r.out,
      new RegExp(
        `^localpost: refusing the config file ${t.configFile}: it is owned by uid 65534, neither the daemon's user \\(uid 0\\) nor root \\(owner uid 65534, mode 0644\\)`,
      ),
    );
    assert.equal(existsSync(t.dataDir), false);
  });

  test('a data directory that is a symbolic link', async () => {
    const t = config();
    const real = path.join(t.dir, 'elsewhere');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, t.dataDir);
    const r = await refusedStart(t.configFile);
    assert.equal(r.code, 78, r.out);
    assert.match(
      r.out,
      new RegExp(
        `^localpost: refusing the data directory ${t.dataDir}: it is a symbolic link \\(owner uid ${uid}, mode 0777\\)`,
        'm',
      ),
    );
    assert.deepEqual(readdirSync(real), [], 'nothing written through the link');
    const check = await runCli(['--config', t.configFile, 'check']);
    assert.equal(check.code, 78);
    assert.match(check.stdout, /^FAIL refusing the data directory .*: it is a symbolic link/m);
  });
});

test('start tightens our own data directory to 0700 and creates state.db 0600', async () => {
  const t = config();
  mkdirSync(t.dataDir, { mode: 0o755 });
  chmodSync(t.dataDir, 0o755);
  const d = spawnDaemon(t.configFile);
  try {
    await waitFor(() => d.out().includes('localpost started') || d.proc.exitCode !== null, 30_000, 'the start');
    assert.equal(d.proc.exitCode, null, d.out());
    assert.match(d.out(), /the data directory was mode 0755: now 0700/);
    assert.equal(mode(t.dataDir), 0o700);
    for (const f of ['state.db', 'localpost.lock', 'localpost.pid'])
      assert.equal(mode(path.join(t.dataDir, f)), 0o600, f);
    assert.equal(mode(path.join(t.dataDir, 'accounts')), 0o700);
  } finally {
    d.proc.kill('SIGTERM'); // maybe before its handlers are installed: the exit status is not the point here
    await d.exited;
  }
});
