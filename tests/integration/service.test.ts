/**
 * Running localpost as a service: the systemd units pass `systemd-analyze verify` with this
 * machine's real node path (also through awkward paths that need quoting), the system unit's
 * `systemd-analyze security` exposure is at most 2.0 and the user unit's at most 4.0, the
 * sysusers file creates the user, the plist parses with python3's plistlib and a config error
 * under launchd exits 0, the install plans (and their refusals), `service uninstall` and
 * `service status` show what they would do and change nothing; and end to end, `localpost start`
 * under a stand-in NOTIFY_SOCKET sends READY, WATCHDOG and STOPPING, and SIGHUP rejects a broken
 * config (keeping the old one) and applies a valid one. tests/integration/install.test.ts runs
 * the same commands from an installed copy.
 */
import assert from 'node:assert/strict';
import {
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
import { after, describe, test } from 'node:test';
import { planInstall } from '../../src/cli/service-install.js';
import { describeStatus, planUninstall } from '../../src/cli/service-manage.js';
import { describePlan, type Installation, locateInstallation, serviceLocation } from '../../src/cli/service-plan.js';
import { EXAMPLE_PLIST_PATHS, renderPlist, renderSystemdUnit } from '../../src/cli/service-units.js';
import { makeConfig, ROOT, runCli, spawnCli, waitFor } from '../support/localpost.js';
import { startNotifyReceiver } from '../support/notify-socket.js';
import { PYTHON } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { exposure as exposureOf, sh, verifyUnit, writtenFile } from '../support/systemd.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-service-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
/** This checkout's command, as the running code finds itself (symbolic links resolved). */
const BIN = path.join(realpathSync(ROOT), 'bin', 'localpost');
const template = (name: string) => readFileSync(path.join(ROOT, 'systemd', name), 'utf8');

/** Writes a unit to its own directory under its real name and runs `systemd-analyze verify` on it. */
const verify = (unit: string, user: boolean) => verifyUnit(tmp, unit, user);

/** The overall exposure `systemd-analyze security --offline=yes` gives a unit (`user`: `--user`). */
const exposure = (unit: string, user = false) => exposureOf(tmp, unit, user);

const exec = { node: process.execPath, bin: BIN, config: '/etc/localpost/config.yaml' };

describe('systemd units', () => {
  test('the system unit has what the issue asks for, and no MemoryDenyWriteExecute (Node JIT)', () => {
    const t = template('localpost.service');
    for (const line of [
      'Type=notify',
      'Restart=on-failure',
      'RestartPreventExitStatus=78',
      'StateDirectory=localpost',
      'ConfigurationDirectory=localpost',
      'User=localpost',
      'Environment=XDG_DATA_HOME=%S',
      'NotifyAccess=all',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'NoNewPrivileges=yes',
      'CapabilityBoundingSet=',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'SystemCallFilter=@system-service',
    ]) {
      assert.match(t, new RegExp(`^${line.replace(/[$.*+?^()|[\]\\]/g, '\\$&')}$`, 'm'), line);
    }
    assert.doesNotMatch(t, /^MemoryDenyWriteExecute=/m);
    assert.match(t, /^ExecStart=\S+ \S+\/bin\/localpost --config \/etc\/localpost\/config\.yaml start$/m);
    const u = template('localpost-user.service');
    for (const line of ['Type=notify', 'Restart=on-failure', 'RestartPreventExitStatus=78', 'WantedBy=default.target'])
      assert.match(u, new RegExp(`^${line}$`, 'm'));
    assert.doesNotMatch(u, /^MemoryDenyWriteExecute=/m);
  });

  test("systemd-analyze verify passes on both units with this machine's paths", async () => {
    const system = await verify(renderSystemdUnit(template('localpost.service'), exec, true), false);
    assert.deepEqual(system, { code: 0, stderr: '' });
    const user = await verify(
      renderSystemdUnit(template('localpost-user.service'), { ...exec, config: path.join(tmp, 'c.yaml') }, false),
      true,
    );
    assert.deepEqual(user, { code: 0, stderr: '' });
  });

  test('verify catches a broken unit (so the check above means something)', async () => {
    const typo = await verify(
      renderSystemdUnit(template('localpost.service'), exec, true).replace('NoNewPrivileges=', 'NoNewPriviliges='),
      false,
    );
    assert.match(typo.stderr, /Unknown key 'NoNewPriviliges'/);
    const missing = await verify(
      renderSystemdUnit(template('localpost.service'), { ...exec, node: '/nonexistent/node' }, true),
      false,
    );
    assert.notEqual(missing.code, 0);
  });

  test('paths with spaces, % and $ are quoted so that verify still finds node', async () => {
    const odd = path.join(tmp, 'odd dir %i $HOME');
    mkdirSync(odd, { recursive: true });
    symlinkSync(process.execPath, path.join(odd, 'node'));
    const unit = renderSystemdUnit(
      template('localpost.service'),
      { node: path.join(odd, 'node'), bin: BIN, config: path.join(odd, 'c.yaml') },
      true,
    );
    assert.match(
      unit,
      /^ExecStart="[^"]*odd dir %%i \$HOME\/node" \S+ --config "[^"]*odd dir %%i \$\$HOME\/c\.yaml" start$/m,
    );
    assert.deepEqual(await verify(unit, false), { code: 0, stderr: '' });
  });

  test('systemd-analyze security: exposure of the system unit is at most 2.0', async () => {
    const score = await exposure(renderSystemdUnit(template('localpost.service'), exec, true));
    assert.ok(score <= 2.0, `exposure ${score}`);
    // An installation under /root or /home gets ProtectHome=tmpfs plus read-only binds: still ≤ 2.0.
    const home = renderSystemdUnit(
      template('localpost.service'),
      { node: process.execPath, bin: '/home/me/localpost/bin/localpost', config: exec.config },
      true,
    );
    assert.match(home, /^ProtectHome=tmpfs\nBindReadOnlyPaths=\/home\/me\/localpost$/m);
    assert.ok((await exposure(home)) <= 2.0);
  });

  test('the user unit: exposure at most 4.0 with a user namespace; without one, the block that needs it goes', async () => {
    const config = path.join(tmp, 'c.yaml');
    const withNs = renderSystemdUnit(template('localpost-user.service'), { ...exec, config }, false);
    for (const line of ['PrivateUsers=yes', 'CapabilityBoundingSet=', 'ProtectSystem=full', 'RestrictNamespaces=yes'])
      assert.match(withNs, new RegExp(`^${line}$`, 'm'), line);
    assert.doesNotMatch(withNs, /^# [><]{3} /m, 'the markers are removed');
    const score = await exposure(withNs, true);
    assert.ok(score <= 4.0, `exposure ${score}`);
    const withoutNs = renderSystemdUnit(template('localpost-user.service'), { ...exec, config }, false, {
      userNamespaces: false,
    });
    for (const setting of ['PrivateUsers', 'CapabilityBoundingSet', 'PrivateDevices', 'ProtectSystem', 'ProtectClock'])
      assert.doesNotMatch(withoutNs, new RegExp(`^${setting}=`, 'm'), setting);
    for (const line of ['NoNewPrivileges=yes', 'RestrictNamespaces=yes', 'SystemCallFilter=@system-service'])
      assert.match(withoutNs, new RegExp(`^${line}$`, 'm'), line);
    assert.match(withoutNs, /Left out: this machine does not let users create user namespaces/);
    assert.deepEqual(await verify(withoutNs, true), { code: 0, stderr: '' });
  });

  test('the sysusers file creates the localpost user and group', async () => {
    const root = path.join(tmp, 'sysroot');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    const r = await sh('systemd-sysusers', [`--root=${root}`, path.join(ROOT, 'systemd', 'localpost.sysusers')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      readFileSync(path.join(root, 'etc', 'passwd'), 'utf8'),
      /^localpost:x:\d+:\d+:localpost mail proxy:\/var\/lib\/localpost:/m,
    );
    assert.match(readFileSync(path.join(root, 'etc', 'group'), 'utf8'), /^localpost:x:\d+:/m);
  });
});

/** A property list parsed by python3's plistlib, as JSON. */
async function plistlib(xml: string): Promise<Record<string, unknown>> {
  const file = path.join(mkdtempSync(path.join(tmp, 'plist-')), 'com.localpost.plist');
  writeFileSync(file, xml);
  const r = await sh(PYTHON, [
    '-c',
    'import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))',
    file,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('launchd plist', () => {
  test("the shipped plist is renderPlist's output and parses as a property list", async () => {
    const shipped = readFileSync(path.join(ROOT, 'launchd', 'com.localpost.plist'), 'utf8');
    assert.equal(shipped, renderPlist(EXAMPLE_PLIST_PATHS), 'regenerate launchd/com.localpost.plist from renderPlist');
    const p = await plistlib(shipped);
    assert.equal(p.Label, 'com.localpost');
    assert.deepEqual((p.ProgramArguments as string[]).slice(-3), ['--config', EXAMPLE_PLIST_PATHS.config, 'start']);
    assert.equal(p.RunAtLoad, true);
    assert.deepEqual(p.KeepAlive, { SuccessfulExit: false });
    assert.deepEqual(p.EnvironmentVariables, { PATH: EXAMPLE_PLIST_PATHS.pathEnv, LOCALPOST_LAUNCHD: '1' });
    assert.equal(p.StandardOutPath, EXAMPLE_PLIST_PATHS.log);
  });

  test('under launchd a configuration error exits 0 (KeepAlive restarts any failure), elsewhere 78', async () => {
    const broken = path.join(tmp, 'broken.yaml');
    writeFileSync(broken, 'accounts: []\n');
    const plain = await runCli(['--config', broken, 'start']);
    assert.equal(plain.code, 78, plain.stderr);
    const launchd = await runCli(['--config', broken, 'start'], { LOCALPOST_LAUNCHD: '1' });
    assert.equal(launchd.code, 0, launchd.stderr);
    assert.match(launchd.stderr, /accounts: needs at least one account/, 'the error is still logged');
    assert.match(launchd.stderr, /exiting 0 so that launchd does not restart it/);
    const missing = await runCli(['--config', path.join(tmp, 'absent.yaml'), 'start'], { LOCALPOST_LAUNCHD: '1' });
    assert.equal(missing.code, 0, missing.stderr);
  });

  test("the macOS install plan writes a LaunchAgent with this installation's paths, escaped", async () => {
    const home = '/Users/a&b <c>';
    const plan = planInstall({ platform: 'darwin', user: false, env: { HOME: home }, home });
    const write = plan.actions.find((a) => a.kind === 'write');
    assert.ok(write && write.kind === 'write');
    assert.equal(write.path, `${home}/Library/LaunchAgents/com.localpost.plist`);
    const p = await plistlib(write.content);
    assert.deepEqual(p.ProgramArguments, [
      process.execPath,
      BIN,
      '--config',
      `${home}/.config/localpost/config.yaml`,
      'start',
    ]);
    assert.equal(p.StandardErrorPath, `${home}/Library/Logs/localpost.log`);
    assert.ok(plan.actions.some((a) => a.kind === 'run' && a.argv.join(' ') === `launchctl unload ${write.path}`));
    assert.match(plan.notes.join('\n'), /No config at .* yet/, 'no load without a config');
  });
});

/** An installed copy where npm puts one (whatever folder this checkout is in). */
const INSTALLED: Installation = {
  root: '/usr/lib/node_modules/localpost',
  bin: '/usr/bin/localpost',
  onPath: true,
  node: process.execPath,
  checkout: false,
};

describe('service install plans', () => {
  test('system: the user, the unit running the installed command, permissions, enable and restart', async () => {
    const cfg = path.join(tmp, 'system-config.yaml');
    writeFileSync(cfg, '# placeholder\n');
    const out = describePlan(planInstall({ platform: 'linux', user: false, configFlag: cfg, installation: INSTALLED }));
    assert.match(out, /^write \/etc\/sysusers\.d\/localpost\.conf \(mode 0644\):$/m);
    assert.match(out, /^run {3}systemd-sysusers \/etc\/sysusers\.d\/localpost\.conf$/m);
    assert.match(out, /^write \/etc\/systemd\/system\/localpost\.service \(mode 0644\):$/m);
    assert.ok(out.includes(`ExecStart=${process.execPath} /usr/bin/localpost --config ${cfg} start`), out);
    assert.match(out, new RegExp(`^run {3}chgrp localpost ${cfg}\\nrun {3}chmod 0640 ${cfg}$`, 'm'));
    assert.match(
      out,
      /^run {3}systemctl daemon-reload\nrun {3}systemctl enable localpost\.service\nrun {3}systemctl restart localpost\.service$/m,
    );
    // The unit it would write passes verify as it is.
    assert.deepEqual(await verify(writtenFile(out, '/etc/systemd/system/localpost.service'), false), {
      code: 0,
      stderr: '',
    });
  });

  test('system without a config: enabled, not started, and told what to run', () => {
    const none = path.join(tmp, 'none.yaml');
    const plan = planInstall({ platform: 'linux', user: false, configFlag: none, installation: INSTALLED });
    assert.doesNotMatch(describePlan(plan), /^run +(systemctl restart|chgrp)/m);
    assert.match(
      plan.notes.join('\n'),
      /No config at .*none\.yaml yet: run `sudo localpost --config .*none\.yaml init`/,
    );
  });

  test("--user (CLI): a user unit under $XDG_CONFIG_HOME with the user's config; nothing changes", async () => {
    const xdg = path.join(tmp, 'xdg');
    const r = await runCli(['service', 'install', '--user', '--dry-run'], {
      XDG_CONFIG_HOME: xdg,
      LOCALPOST_CONFIG: '',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing is written or run/);
    assert.match(r.stdout, new RegExp(`^write ${xdg}/systemd/user/localpost\\.service \\(mode 0644\\):$`, 'm'));
    assert.ok(r.stdout.includes(`ExecStart=${process.execPath} ${BIN} --config ${xdg}/localpost/config.yaml start`));
    assert.match(
      r.stdout,
      /^run {3}systemctl --user daemon-reload\nrun {3}systemctl --user enable localpost\.service$/m,
    );
    assert.match(r.stdout, /loginctl enable-linger/);
    assert.match(r.stdout, new RegExp(`This service runs the checkout ${realpathSync(ROOT)}`));
    assert.equal(existsSync(xdg), false, 'dry run wrote nothing');
    const unit = writtenFile(r.stdout, `${xdg}/systemd/user/localpost.service`);
    assert.deepEqual(await verify(unit, true), { code: 0, stderr: '' });
  });

  test('a system service refuses a checkout in a home directory and anything under /tmp, saying what to do', () => {
    const plan = (installation: Installation, user = false) =>
      planInstall({ platform: 'linux', user, configFlag: '/etc/localpost/config.yaml', installation });
    const homeCheckout = {
      root: '/home/me/src/localpost',
      bin: '/home/me/src/localpost/bin/localpost',
      onPath: false,
      node: process.execPath,
      checkout: true,
    };
    assert.throws(
      () => plan(homeCheckout),
      /\/home\/me\/src\/localpost is a source checkout in a home directory: .*ProtectHome=yes.*npm ci && sudo npm install -g --install-links \./,
    );
    const tmpInstall = { ...INSTALLED, root: '/tmp/p/lib/node_modules/localpost', bin: '/tmp/p/bin/localpost' };
    assert.throws(
      () => plan(tmpInstall),
      /localpost is under \/tmp\/p\/lib\/node_modules\/localpost, .*PrivateTmp=yes/,
    );
    assert.throws(
      () => plan({ ...INSTALLED, node: '/var/tmp/node/bin/node' }),
      /node is under \/var\/tmp\/node\/bin\/node/,
    );
    // A user service can run a checkout (with a note), and a system service a checkout elsewhere.
    assert.match(
      plan(homeCheckout, true).notes.join('\n'),
      /This service runs the checkout \/home\/me\/src\/localpost/,
    );
    const srv = { ...homeCheckout, root: '/srv/localpost', bin: '/srv/localpost/bin/localpost' };
    assert.match(describePlan(plan(srv)), /^ExecStart=\S+ \/srv\/localpost\/bin\/localpost --config/m);
  });

  test('an installed copy under a home directory (nvm) is bound read-only into the system service', () => {
    const nvm = '/home/me/.nvm/versions/node/v20.19.0';
    const inst = {
      root: `${nvm}/lib/node_modules/localpost`,
      bin: `${nvm}/bin/localpost`,
      onPath: true,
      node: `${nvm}/bin/node`,
      checkout: false,
    };
    const out = describePlan(
      planInstall({ platform: 'linux', user: false, configFlag: '/etc/localpost/config.yaml', installation: inst }),
    );
    assert.match(
      out,
      new RegExp(`^ProtectHome=tmpfs\\nBindReadOnlyPaths=${nvm}/lib/node_modules/localpost ${nvm}/bin$`, 'm'),
    );
    assert.ok(out.includes(`ExecStart=${nvm}/bin/node ${nvm}/bin/localpost --config`), out);
  });

  test('the command a service runs: `localpost` on PATH when it is this installation, else its own bin/localpost', () => {
    const dir = mkdtempSync(path.join(tmp, 'path-'));
    const ours = path.join(dir, 'ours');
    const other = path.join(dir, 'other');
    mkdirSync(ours);
    mkdirSync(other);
    symlinkSync(BIN, path.join(ours, 'localpost'));
    writeFileSync(path.join(other, 'localpost'), '#!/bin/sh\n', { mode: 0o755 });
    const onPath = locateInstallation({ env: { PATH: `${ours}:/usr/bin` } });
    assert.deepEqual(
      { bin: onPath.bin, onPath: onPath.onPath, checkout: onPath.checkout, root: onPath.root },
      { bin: path.join(ours, 'localpost'), onPath: true, checkout: true, root: realpathSync(ROOT) },
    );
    const elsewhere = locateInstallation({ env: { PATH: `${other}:${ours}` } });
    assert.deepEqual({ bin: elsewhere.bin, onPath: elsewhere.onPath }, { bin: BIN, onPath: false });
  });

  test('another platform is refused with a clear message', () => {
    assert.throws(() => planInstall({ platform: 'win32', user: false }), /no service manager support for win32/);
  });
});

describe('service uninstall and status', () => {
  /** A user-service location under its own XDG_CONFIG_HOME, with the unit installed when `unit` is given. */
  function userPlace(unit?: string): { xdg: string; file: string } {
    const xdg = mkdtempSync(path.join(tmp, 'xdg-'));
    const file = path.join(xdg, 'systemd', 'user', 'localpost.service');
    if (unit !== undefined) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, unit);
    }
    return { xdg, file };
  }
  const userUnit = (bin: string) =>
    renderSystemdUnit(template('localpost-user.service'), { node: process.execPath, bin, config: '/c.yaml' }, false);

  test('uninstall --user --dry-run (CLI): stop and disable, remove the unit, reload; nothing changes', async () => {
    const { xdg, file } = userPlace(userUnit(BIN));
    const r = await runCli(['service', 'uninstall', '--user', '--dry-run'], { XDG_CONFIG_HOME: xdg });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nothing is removed or run/);
    assert.ok(
      r.stdout.includes(
        `run   systemctl --user disable --now localpost.service\nremove ${file}\nrun   systemctl --user daemon-reload\nrun   systemctl --user reset-failed localpost.service   (a failure is ignored)\n`,
      ),
      r.stdout,
    );
    assert.match(r.stdout, /Left in place: your config and your mail/);
    assert.ok(existsSync(file), 'dry run removed nothing');
  });

  test('uninstall with nothing installed: nothing to do, exit 0 (idempotent)', async () => {
    const { xdg, file } = userPlace();
    const r = await runCli(['service', 'uninstall', '--user'], { XDG_CONFIG_HOME: xdg });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`No systemd user service is installed (no ${file}); nothing to do.`), r.stdout);
  });

  test('uninstall plans for the system service and launchd', () => {
    const unit = path.join(tmp, 'system-localpost.service');
    writeFileSync(unit, userUnit(BIN));
    const system = planUninstall({ manager: 'systemd-system', file: unit, systemctl: ['systemctl'], title: 'x' });
    assert.equal(
      describePlan(system),
      `run   systemctl disable --now localpost.service\nremove ${unit}\nrun   systemctl daemon-reload\nrun   systemctl reset-failed localpost.service   (a failure is ignored)\n`,
    );
    assert.match(system.notes.join('\n'), /the localpost user/);
    const home = mkdtempSync(path.join(tmp, 'mac-'));
    const where = serviceLocation('darwin', false, { HOME: home }, home);
    assert.deepEqual(planUninstall(where).actions, [], 'no plist: nothing to do');
    mkdirSync(path.dirname(where.file), { recursive: true });
    writeFileSync(where.file, renderPlist({ ...EXAMPLE_PLIST_PATHS, bin: BIN }));
    assert.equal(
      describePlan(planUninstall(where)),
      `run   launchctl unload ${where.file}   (a failure is ignored)\nremove ${where.file}\n`,
    );
  });

  test('status --user (CLI): the unit file, the command it runs, and the systemctl questions (dry run)', async () => {
    const { xdg, file } = userPlace(userUnit(BIN));
    const r = await runCli(['service', 'status', '--user', '--dry-run'], { XDG_CONFIG_HOME: xdg });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'systemd user service: installed',
        `  file:    ${file}`,
        `  runs:    ${process.execPath} ${BIN} --config /c.yaml start (this installation)`,
        '  enabled: would run: systemctl --user is-enabled localpost.service',
        '  active:  would run: systemctl --user is-active localpost.service',
        '',
      ].join('\n'),
    );
    const none = userPlace();
    const n = await runCli(['service', 'status', '--user'], { XDG_CONFIG_HOME: none.xdg });
    assert.equal(n.code, 3);
    assert.equal(n.stdout, `systemd user service: not installed (no ${none.file})\n`);
  });

  test("status reads the manager's answers, and names another installation's command", async () => {
    const { file } = userPlace(userUnit('/opt/other/bin/localpost'));
    const where = { manager: 'systemd-user' as const, file, systemctl: ['systemctl', '--user'], title: 'user service' };
    const inst = locateInstallation();
    const answers: Record<string, { code: number; stdout: string; stderr: string }> = {
      'is-enabled': { code: 0, stdout: 'enabled\n', stderr: '' },
      'is-active': { code: 3, stdout: 'inactive\n', stderr: '' },
    };
    const s = await describeStatus(
      where,
      inst,
      async (argv) => answers[argv[2] ?? ''] ?? { code: 1, stdout: '', stderr: 'no' },
    );
    assert.match(s.text, new RegExp(`runs: {4}.* \\(not this installation, which is ${realpathSync(ROOT)}\\)`));
    assert.match(s.text, /^ {2}enabled: enabled$/m);
    assert.match(s.text, /^ {2}active: {2}inactive$/m);
    const missing = await describeStatus(where, inst, async () => ({
      code: null,
      stdout: '',
      stderr: '',
      error: Object.assign(new Error('spawn systemctl ENOENT'), { code: 'ENOENT' }),
    }));
    assert.match(missing.text, /^ {2}enabled: unknown \(systemctl: ENOENT\)$/m);

    const home = mkdtempSync(path.join(tmp, 'mac-'));
    const agent = serviceLocation('darwin', false, { HOME: home }, home);
    mkdirSync(path.dirname(agent.file), { recursive: true });
    writeFileSync(agent.file, renderPlist({ ...EXAMPLE_PLIST_PATHS, node: process.execPath, bin: BIN }));
    const mac = await describeStatus(agent, inst, async () => ({
      code: 0,
      stdout: '{\n\t"PID" = 4242;\n};\n',
      stderr: '',
    }));
    assert.match(mac.text, /\(this installation\)/);
    assert.match(mac.text, /^ {2}loaded: {2}yes, running \(pid 4242\)$/m);
  });
});

/** A POP3 USER/PASS login with poplib: 'ok' or the error. */
async function popLogin(port: number, user: string, pass: string): Promise<string> {
  const r = await sh(PYTHON, [
    '-c',
    [
      'import poplib, sys',
      'p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)',
      'try:',
      '    p.user(sys.argv[2]); p.pass_(sys.argv[3]); print("ok"); p.quit()',
      'except poplib.error_proto as e:',
      '    print(e)',
    ].join('\n'),
    String(port),
    user,
    pass,
  ]);
  return r.stdout.trim() || r.stderr;
}

describe('the daemon under a service manager', () => {
  test('sd_notify READY/WATCHDOG/STOPPING, and SIGHUP: broken configs rejected, a valid one applied', async () => {
    const rx = await startNotifyReceiver();
    const popPort = await freePort();
    const deadUpstream = await freePort();
    const listen = `listen:\n  pop3: { port: ${popPort}, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`;
    const c = makeConfig([{ id: 'alice', protocol: 'pop3', port: deadUpstream }], listen);
    const good = readFileSync(c.configFile, 'utf8');
    const proc = spawnCli(['--config', c.configFile, 'start'], { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '600000' });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const logLines = () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; err?: string; level: number });
    try {
      const ready = await rx.waitForLine('READY=1', 30_000);
      assert.match(out, /localpost started/);
      assert.equal(rx.messages()[0], ready, 'READY is the first message');
      assert.ok(ready.text.includes('STATUS=running: 1 account'));
      await rx.waitForLine('WATCHDOG=1', 5_000);
      assert.equal(await popLogin(popPort, 'alice', 'localpw'), 'ok');

      // 1. A config that fails validation: rejected with the reason, the daemon keeps running.
      writeFileSync(c.configFile, 'accounts: []\n');
      proc.kill('SIGHUP');
      await waitFor(
        () => logLines().some((l) => l.msg.includes('config reload rejected')),
        10_000,
        `the rejection:\n${out}`,
      );
      const rejected = logLines().find((l) => l.msg.includes('config reload rejected'))!;
      assert.match(rejected.err ?? '', /accounts: needs at least one account/);
      await rx.waitForLine('STATUS=config reload rejected (see the log): running with the previous configuration');

      // 2. Not even YAML: rejected too.
      writeFileSync(c.configFile, 'accounts: [\n');
      proc.kill('SIGHUP');
      await waitFor(
        () => logLines().filter((l) => l.msg.includes('config reload rejected')).length === 2,
        10_000,
        `the second rejection:\n${out}`,
      );
      assert.match(logLines().filter((l) => l.msg.includes('config reload rejected'))[1]!.err ?? '', /invalid YAML/);
      assert.equal(proc.exitCode, null, 'still running');
      assert.equal(await popLogin(popPort, 'alice', 'localpw'), 'ok', 'the old config still serves');

      // 3. A valid, changed config (a new local password): applied.
      writeFileSync(c.configFile, good.replace('      password: localpw\n', '      password: "new local pw"\n'));
      proc.kill('SIGHUP');
      await waitFor(() => logLines().some((l) => l.msg === 'configuration reloaded'), 10_000, `the reload:\n${out}`);
      await rx.waitForLine('STATUS=running: 1 account; configuration reloaded');
      assert.equal(await popLogin(popPort, 'alice', 'new local pw'), 'ok', 'the new password logs in');
      assert.match(await popLogin(popPort, 'alice', 'localpw'), /-ERR/, 'the old one no longer does');

      // 4. A reload that adds an account: its cache is opened and its local login works.
      const second = makeConfig([{ id: 'zed', protocol: 'pop3', port: deadUpstream }], 'listen: {}\n');
      const zed = readFileSync(second.configFile, 'utf8').split('accounts:\n')[1]!.replace('listen: {}\n', '');
      second.cleanup();
      writeFileSync(
        c.configFile,
        good
          .replace('      password: localpw\n', '      password: "new local pw"\n')
          .replace('listen:\n', `${zed}listen:\n`),
      );
      proc.kill('SIGHUP');
      await waitFor(
        () => logLines().filter((l) => l.msg === 'configuration reloaded').length === 2,
        10_000,
        `the second reload:\n${out}`,
      );
      assert.equal(await popLogin(popPort, 'zed', 'localpw'), 'ok', 'the added account logs in');

      // 5. A reload that changes listen.*: applied otherwise, with a warning that the port needs a restart.
      const reloadedConfig = readFileSync(c.configFile, 'utf8');
      writeFileSync(c.configFile, reloadedConfig.replace(`port: ${popPort}`, `port: ${await freePort()}`));
      proc.kill('SIGHUP');
      await waitFor(
        () => logLines().filter((l) => l.msg === 'configuration reloaded').length === 3,
        10_000,
        `the third reload:\n${out}`,
      );
      assert.ok(
        logLines().some((l) => /listen changed; that takes effect at the next restart/.test(l.msg)),
        out.slice(-2000),
      );
      assert.equal(
        await popLogin(popPort, 'alice', 'new local pw'),
        'ok',
        'the running listener keeps its port until a restart',
      );

      proc.kill('SIGTERM');
      const code = await new Promise((r) => proc.once('close', r));
      assert.equal(code, 0, out.slice(-3000));
      await rx.waitForLine('STOPPING=1');
      const texts = rx.messages().map((m) => m.text);
      assert.ok(texts.findIndex((t) => t.startsWith('STOPPING=1')) > texts.findIndex((t) => t.startsWith('READY=1')));
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await rx.close();
      c.cleanup();
    }
  });
});
