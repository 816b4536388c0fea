/**
 * localpost installed as a user would install it: `npm pack` on a copy of this tree (its
 * `prepack` builds dist/), `npm install -g` of that tarball into a temporary prefix, and then
 * that prefix's `localpost`, never this checkout: `--version`, `demo` (poplib reads the sample
 * mail, SIGTERM stops it), `init` from flags and `check` against the testbed's Dovecot,
 * `service install --dry-run` for the system and the user service (the units run that
 * installation's command, pass `systemd-analyze verify`, and score an exposure of at most 2.0
 * and 4.0), `service status` and `service uninstall` dry runs; and `npm install -g .` of the
 * checkout copy, which links it, so that a system service refuses it (it lies under /tmp).
 *
 * Speed: npm's cache is warm from `npm ci` (`--prefer-offline`), and better-sqlite3's install
 * script (prebuild-install) is handed the addon this checkout already built, as a local prebuild
 * (`npm_config_better_sqlite3_local_prebuilds`), instead of compiling SQLite for two minutes.
 * The prefix is not under /tmp, which a system service cannot see (the plan would refuse it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, waitFor } from '../support/localpost.js';
import { poplibFetchAll } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { exposure, sh, verifyUnit, writtenFile } from '../support/systemd.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

/** Under /tmp itself (not $TMPDIR): the linked checkout below must lie where a system service cannot see. */
const tmp = mkdtempSync('/tmp/lp-install-');
const underTmp = (p: string) => /^\/(var\/)?tmp(\/|$)/.test(p);
/** Where the prefix goes: a cache directory that is not under /tmp. */
const prefixBase = [path.join(os.homedir(), '.cache'), '/var/cache'].find((d) => !underTmp(d)) ?? '/var/cache';
mkdirSync(prefixBase, { recursive: true });
const prefix = mkdtempSync(path.join(prefixBase, 'localpost-install-test-'));
const tree = path.join(tmp, 'tree');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** npm's own variables from a surrounding `npm test` are left out, so the npm we run sees only ours. */
function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_(lifecycle_|package_|command$|config_(local_|global_)?prefix$)|^INIT_CWD$/i.test(k)) env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

/** Runs npm; resolves with its result, failing the test with its output when it fails. */
async function npm(args: string[], cwd: string, extra: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('npm', args, { cwd, env: npmEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    p.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    p.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0, `npm ${args.join(' ')} failed:\n${r.out.slice(-4000)}`);
  return r.out;
}

/** A copy of the files git knows here (committed, and new ones not ignored), like a fresh clone. */
async function copyTree(dest: string): Promise<void> {
  const r = await sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {}, ROOT);
  assert.equal(r.code, 0, r.stderr);
  for (const file of r.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the work tree, not yet in the index
    mkdirSync(path.dirname(path.join(dest, file)), { recursive: true });
    cpSync(from, path.join(dest, file));
  }
  // The dependencies, for `prepack` (tsc) and for the linked checkout below.
  symlinkSync(realpathSync(path.join(ROOT, 'node_modules')), path.join(dest, 'node_modules'));
}

/** better-sqlite3's addon as built here, packed the way prebuild-install looks for a local prebuild. */
async function localPrebuilds(): Promise<NodeJS.ProcessEnv> {
  const mod = path.join(ROOT, 'node_modules', 'better-sqlite3');
  if (!existsSync(path.join(mod, 'build', 'Release', 'better_sqlite3.node'))) return {};
  const { version } = JSON.parse(readFileSync(path.join(mod, 'package.json'), 'utf8')) as { version: string };
  const dir = path.join(tmp, 'prebuilds');
  mkdirSync(dir);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const r = await sh('tar', ['czf', path.join(dir, name), '-C', mod, 'build/Release/better_sqlite3.node']);
  assert.equal(r.code, 0, r.stderr);
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

let tarball = '';
let installRoot = '';
let command = '';
/** The environment every installed `localpost` runs with: the prefix's bin/ first on PATH. */
let env: NodeJS.ProcessEnv = {};

before(async () => {
  await copyTree(tree);
  const packed = await npm(['pack', '--pack-destination', tmp], tree);
  tarball = path.join(tmp, packed.trim().split('\n').pop() ?? '');
  await npm(
    ['install', '-g', tarball, '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund'],
    tmp,
    await localPrebuilds(),
  );
  installRoot = path.join(prefix, 'lib', 'node_modules', 'localpost');
  command = path.join(prefix, 'bin', 'localpost');
  env = { PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`, LOCALPOST_CONFIG: '' };
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
  rmSync(prefix, { recursive: true, force: true });
});

/** Runs the installed `localpost` (found on PATH, as a user types it). */
function localpost(
  args: string[],
  extra: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh('localpost', args, { ...env, ...extra });
}

describe('npm pack and npm install -g', () => {
  test('the tarball holds the built program and its service files, not the sources or tests', async () => {
    const r = await sh('tar', ['tzf', tarball]);
    const files = r.stdout.split('\n').filter(Boolean);
    for (const f of [
      'package/bin/localpost',
      'package/dist/cli/bin.js',
      'package/config/localpost.example.yaml',
      'package/systemd/localpost.service',
      'package/systemd/localpost-user.service',
      'package/systemd/localpost.sysusers',
      'package/launchd/com.localpost.plist',
      'package/README.md',
      'package/docs/commands.md',
      'package/package.json',
    ])
      assert.ok(files.includes(f), `${f} in the tarball`);
    for (const dir of ['src/', 'tests/', 'scripts/', 'bench/', 'node_modules/'])
      assert.ok(!files.some((f) => f.startsWith(`package/${dir}`)), `no ${dir} in the tarball`);
  });

  test('the installed copy: `localpost` on PATH, its own dependencies, no TypeScript', async () => {
    assert.equal(realpathSync(command), realpathSync(path.join(installRoot, 'bin', 'localpost')));
    assert.ok(existsSync(path.join(installRoot, 'node_modules', 'better-sqlite3')), 'dependencies installed');
    assert.ok(!existsSync(path.join(installRoot, 'node_modules', 'typescript')), 'no devDependencies');
    assert.ok(!existsSync(path.join(installRoot, 'src')));
    const v = await localpost(['--version']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), pkg.version);
  });

  test('demo: starts, poplib reads the sample mail, SIGTERM stops it', async () => {
    const pop3Port = await freePort();
    const smtpPort = await freePort();
    const proc: ChildProcess = spawn(
      'localpost',
      ['demo', '--pop3-port', String(pop3Port), '--smtp-port', String(smtpPort)],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      let msgs: Buffer[] = [];
      await waitFor(
        async () => {
          if (proc.exitCode !== null) return true;
          msgs = await poplibFetchAll(pop3Port, 'demo', 'demo').catch(() => []);
          return msgs.length > 0;
        },
        60_000,
        'the demo serving its sample mail',
      );
      assert.equal(proc.exitCode, null, out);
      assert.equal(msgs.length, 3, out);
      assert.match(msgs[0]?.toString() ?? '', /Subject: Welcome to localpost/);
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  describe('init and check against the testbed', () => {
    let tb: Testbed;
    before(async () => {
      tb = await startTestbed({ postfix: false });
      await tb.seed('alice', 2);
    });
    after(async () => {
      await tb?.stop();
    });

    test('init from flags writes a config that check accepts', async () => {
      const configFile = path.join(tmp, 'config', 'config.yaml');
      const flags = ['--non-interactive', '--provider', 'generic', '--email', 'alice@example.test'];
      const upstream = ['--protocol', 'pop3', '--host', '127.0.0.1', '--port', String(tb.pop3Port), '--tls', 'none'];
      const login = ['--username', 'alice', '--password-env', 'LP_INSTALL_PW', '--no-smtp'];
      const local = ['--id', 'alice', '--local-password', 'localpw', '--data-dir', path.join(tmp, 'data')];
      const init = await localpost(['--config', configFile, 'init', ...flags, ...upstream, ...login, ...local]);
      assert.equal(init.code, 0, init.stdout + init.stderr);
      assert.ok(existsSync(configFile));
      const check = await localpost(['--config', configFile, 'check'], { LP_INSTALL_PW: 'alicepw' });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /config .*: ok \(1 account\)/);
    });
  });
});

describe('services from the installed copy', () => {
  const unitPath = '/etc/systemd/system/localpost.service';

  test('system --dry-run: the unit runs the installed command; verify clean; exposure at most 2.0', async () => {
    const existed = existsSync(unitPath);
    const cfg = path.join(tmp, 'system-config.yaml');
    writeFileSync(cfg, '# placeholder\n');
    const r = await localpost(['--config', cfg, 'service', 'install', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing is written or run/);
    assert.ok(r.stdout.includes(`\nExecStart=${process.execPath} ${command} --config ${cfg} start\n`), r.stdout);
    assert.doesNotMatch(r.stdout, /dist is missing|runs the checkout/);
    assert.equal(existsSync(unitPath), existed, 'dry run wrote nothing');
    const unit = writtenFile(r.stdout, unitPath);
    assert.deepEqual(await verifyUnit(tmp, unit, false), { code: 0, stderr: '' });
    const score = await exposure(tmp, unit);
    assert.ok(score <= 2.0, `system unit exposure ${score}`);
  });

  test('--user --dry-run: the user unit runs the installed command; verify clean; exposure at most 4.0', async () => {
    const xdg = path.join(tmp, 'xdg');
    const r = await localpost(['service', 'install', '--user', '--dry-run'], { XDG_CONFIG_HOME: xdg });
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(xdg, 'systemd', 'user', 'localpost.service');
    const unit = writtenFile(r.stdout, file);
    assert.ok(
      unit.includes(`\nExecStart=${process.execPath} ${command} --config ${xdg}/localpost/config.yaml start\n`),
    );
    assert.equal(existsSync(xdg), false, 'dry run wrote nothing');
    assert.deepEqual(await verifyUnit(tmp, unit, true), { code: 0, stderr: '' });
    const score = await exposure(tmp, unit, true);
    assert.ok(score <= 4.0, `user unit exposure ${score}`);

    // status and uninstall of that unit, once it is in place: dry runs only.
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, unit);
    const status = await localpost(['service', 'status', '--user', '--dry-run'], { XDG_CONFIG_HOME: xdg });
    assert.equal(status.code, 0, status.stderr);
    assert.ok(status.stdout.includes(`  runs:    ${process.execPath} ${command} --config`), status.stdout);
    assert.match(status.stdout, /start \(this installation\)\n/);
    const uninstall = await localpost(['service', 'uninstall', '--user', '--dry-run'], { XDG_CONFIG_HOME: xdg });
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.ok(uninstall.stdout.includes(`remove ${file}\n`), uninstall.stdout);
    assert.ok(existsSync(file), 'dry run removed nothing');
  });

  test('system status and uninstall with no system service installed', async () => {
    if (existsSync(unitPath)) return; // a real one on this machine: not ours to describe
    const status = await localpost(['service', 'status', '--dry-run'], { XDG_CONFIG_HOME: path.join(tmp, 'none') });
    assert.equal(status.code, 3, status.stdout + status.stderr);
    assert.match(status.stdout, /^systemd system service: not installed/m);
    const uninstall = await localpost(['service', 'uninstall', '--dry-run']);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.match(uninstall.stdout, /No systemd system service is installed .*; nothing to do\./);
  });

  test('`npm install -g .` links the checkout; a system service refuses it (under /tmp) and says how to install', async () => {
    const linked = mkdtempSync(path.join(tmp, 'linked-'));
    await npm(['install', '-g', '.', '--prefix', linked, '--ignore-scripts', '--prefer-offline'], tree);
    const bin = path.join(linked, 'bin');
    assert.equal(realpathSync(path.join(bin, 'localpost')), realpathSync(path.join(tree, 'bin', 'localpost')));
    const r = await sh('localpost', ['service', 'install', '--dry-run'], { PATH: `${bin}:${process.env.PATH ?? ''}` });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /localpost is under \/tmp\/.*PrivateTmp=yes/);
    assert.match(r.stderr, /npm ci && sudo npm install -g --install-links \./);
    assert.equal(r.stdout, '');
  });
});
