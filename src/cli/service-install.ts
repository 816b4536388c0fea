/**
 * `localpost service install [--user] [--dry-run]`: runs localpost at boot (or login) with the
 * platform's own service manager, running this installation (see service-plan.ts for which
 * command, and for what a system service refuses to run).
 *
 * - Linux, system (default, as root): the `localpost` user from systemd/localpost.sysusers, the
 *   unit systemd/localpost.service with its ExecStart= rewritten, the config (by default
 *   /etc/localpost/config.yaml) made readable by the service group, then enable and (re)start.
 * - Linux, `--user`: systemd/localpost-user.service into ~/.config/systemd/user/, enable, restart.
 *   Its sandboxing block that needs a user namespace is kept only where this user can create one
 *   (probed with unshare(1)), since PrivateUsers= fails the start where it cannot.
 * - macOS: a LaunchAgent plist into ~/Library/LaunchAgents/, then `launchctl load -w`.
 * Without a config file the service is enabled but not started (it would exit 78 at once).
 * `--dry-run` prints every file and command and changes nothing; tests use only that.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configPath } from '../config/load.js';
import { runProgram } from '../shared/exec.js';
import {
  INSTALL_ROOT,
  type Installation,
  installationNotes,
  locateInstallation,
  type Plan,
  type PlanAction,
  requireRootForSystem,
  runPlan,
  ServiceError,
  serviceLocation,
  systemServiceProblem,
} from './service-plan.js';
import { EXAMPLE_PLIST_PATHS, renderPlist, renderSystemdUnit } from './service-units.js';

/** Where and for whom to install. */
export interface InstallTarget {
  platform: NodeJS.Platform;
  user: boolean;
  /** `--config` as given, if any. */
  configFlag?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
  /** The installation to run; default: the running one. */
  installation?: Installation;
  /** Whether this user can create user namespaces (user units); default true. */
  userNamespaces?: boolean;
}

/** The system service's config file unless `--config` names another. */
const SYSTEM_CONFIG = '/etc/localpost/config.yaml';

/** A template shipped with this code (the same files in a checkout and an installed copy). */
const template = (name: string) => readFileSync(path.join(INSTALL_ROOT, 'systemd', name), 'utf8');

/** Works out every file and command of an installation (nothing is changed). */
export function planInstall(t: InstallTarget): Plan {
  const env = t.env ?? process.env;
  const home = t.home ?? env.HOME ?? os.homedir();
  const inst = t.installation ?? locateInstallation({ env });
  const where = serviceLocation(t.platform, t.user, env, home);
  const { node, bin, root } = inst;
  const notes = installationNotes(inst);
  const run = (...argv: string[]): PlanAction => ({ kind: 'run', argv });

  if (where.manager === 'launchd') {
    const config = path.resolve(configPath(t.configFlag, env));
    const log = path.join(home, 'Library', 'Logs', 'localpost.log');
    const actions: PlanAction[] = [
      {
        kind: 'write',
        path: where.file,
        mode: 0o644,
        content: renderPlist({ ...EXAMPLE_PLIST_PATHS, node, bin, config, log }),
      },
      { kind: 'run', argv: ['launchctl', 'unload', where.file], mayFail: true },
    ];
    if (existsSync(config)) actions.push(run('launchctl', 'load', '-w', where.file));
    else notes.push(`No config at ${config} yet: run \`localpost init\`, then \`launchctl load -w ${where.file}\`.`);
    notes.push(`Logs: ${log}. Status: localpost service status. Remove: localpost service uninstall.`);
    if (t.user === false)
      notes.push('On macOS localpost runs as a LaunchAgent of your user; there is no system-wide variant.');
    return { actions, notes };
  }

  if (where.manager === 'systemd-user') {
    const config = path.resolve(configPath(t.configFlag, env));
    const userNamespaces = t.userNamespaces ?? true;
    const content = renderSystemdUnit(template('localpost-user.service'), { node, bin, config, root }, false, {
      userNamespaces,
    });
    const actions: PlanAction[] = [
      { kind: 'write', path: where.file, mode: 0o644, content },
      run('systemctl', '--user', 'daemon-reload'),
      run('systemctl', '--user', 'enable', 'localpost.service'),
    ];
    if (existsSync(config)) actions.push(run('systemctl', '--user', 'restart', 'localpost.service'));
    else notes.push(`No config at ${config} yet: run \`localpost init\`, then \`systemctl --user start localpost\`.`);
    if (!userNamespaces)
      notes.push(
        'This machine does not let users create user namespaces (unshare --user failed), so the unit goes without PrivateUsers= and the sandboxing that needs it.',
      );
    notes.push(
      'It runs while you are logged in; `loginctl enable-linger` keeps it running after you log out and from boot.',
      'Status: localpost service status --user. Logs: journalctl --user -u localpost.',
    );
    return { actions, notes };
  }

  const problem = systemServiceProblem(inst);
  if (problem) throw new ServiceError(problem);
  const config = path.resolve(t.configFlag ?? SYSTEM_CONFIG);
  const actions: PlanAction[] = [
    {
      kind: 'write',
      path: '/etc/sysusers.d/localpost.conf',
      mode: 0o644,
      content: readFileSync(path.join(INSTALL_ROOT, 'systemd', 'localpost.sysusers'), 'utf8'),
    },
    run('systemd-sysusers', '/etc/sysusers.d/localpost.conf'),
    {
      kind: 'write',
      path: where.file,
      mode: 0o644,
      content: renderSystemdUnit(template('localpost.service'), { node, bin, config, root }, true),
    },
  ];
  if (existsSync(config)) {
    actions.push(run('chgrp', 'localpost', config), run('chmod', '0640', config));
    if (path.dirname(config) === '/etc/localpost') actions.push(run('chmod', '0755', '/etc/localpost'));
  }
  actions.push(run('systemctl', 'daemon-reload'), run('systemctl', 'enable', 'localpost.service'));
  if (existsSync(config)) actions.push(run('systemctl', 'restart', 'localpost.service'));
  else
    notes.push(
      `No config at ${config} yet: run \`sudo localpost --config ${config} init\`, then \`sudo systemctl start localpost\`.`,
    );
  notes.push(
    'Mail and state live in /var/lib/localpost (leave dataDir unset in the config).',
    'Status: localpost service status. Logs: journalctl -u localpost. Reload the config: systemctl reload localpost.',
  );
  return { actions, notes };
}

/**
 * Whether this user can create a user namespace with a mount namespace inside, as systemd's
 * PrivateUsers= needs (Ubuntu 24.04's AppArmor default and user.max_user_namespaces=0 forbid it).
 */
export async function userNamespacesWork(): Promise<boolean> {
  const r = await runProgram('unshare', ['--user', '--map-root-user', '--mount', 'true'], {
    output: 'ignore',
    timeoutMs: 5000,
  });
  return r.code === 0;
}

/** Runs `localpost service install`; resolves with the exit code. */
export async function runServiceInstall(
  flags: { user?: boolean; dryRun?: boolean; config?: string },
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let plan: Plan;
  try {
    requireRootForSystem(process.platform, Boolean(flags.user), Boolean(flags.dryRun));
    plan = planInstall({
      platform: process.platform,
      user: Boolean(flags.user),
      configFlag: flags.config,
      userNamespaces: process.platform === 'linux' && flags.user ? await userNamespacesWork() : undefined,
    });
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    err.write(`localpost service install: ${e.message}\n`);
    return 1;
  }
  return runPlan('localpost service install', plan, Boolean(flags.dryRun), out, err);
}
