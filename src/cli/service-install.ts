/**
 * `localpost service install [--user] [--dry-run]`: runs localpost at boot (or login) with the
 * platform's own service manager, using this installation's absolute paths.
 *
 * - Linux, system (default, as root): the `localpost` user from systemd/localpost.sysusers, the
 *   unit systemd/localpost.service with its ExecStart= rewritten, the config (by default
 *   /etc/localpost/config.yaml) made readable by the service group, then enable and (re)start.
 * - Linux, `--user`: systemd/localpost-user.service into ~/.config/systemd/user/, enable, restart.
 * - macOS: a LaunchAgent plist into ~/Library/LaunchAgents/, then `launchctl load -w`.
 * Without a config file the service is enabled but not started (it would exit 78 at once).
 *
 * The shipped files in systemd/ are the templates; only the ExecStart= line changes (plus
 * ProtectHome=tmpfs with read-only binds when node or localpost live under a home directory,
 * which ProtectHome=yes would hide). The plist is rendered by `renderPlist`, and the shipped
 * launchd/com.localpost.plist is its output for example paths (a test keeps them equal).
 * `--dry-run` prints every file and command and changes nothing; tests use only that.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configPath } from '../config/load.js';
import { runProgram } from '../shared/exec.js';

/** The root of this installation (holds bin/, systemd/, launchd/). */
const INSTALL_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One step of an installation. */
export type InstallAction =
  | { kind: 'write'; path: string; content: string; mode: number }
  | { kind: 'run'; argv: string[]; mayFail?: boolean };

/** Everything an installation does, in order, and what to tell the user afterwards. */
export interface InstallPlan {
  actions: InstallAction[];
  notes: string[];
}

/** Where and for whom to install. */
export interface InstallTarget {
  platform: NodeJS.Platform;
  user: boolean;
  /** `--config` as given, if any. */
  configFlag?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
  node?: string;
  root?: string;
}

/** The installation cannot be done here; exit 1 with the message. */
class InstallError extends Error {}

/** The system service's config file unless `--config` names another. */
const SYSTEM_CONFIG = '/etc/localpost/config.yaml';

/**
 * Quotes one word of a unit file setting: `%` specifiers are escaped everywhere; `$` only where
 * systemd expands variables (ExecStart= arguments, not the command itself or paths settings).
 */
function systemdWord(arg: string, expandsVariables = false): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, expandsVariables ? '$$$$' : '$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)
    ? escaped
    : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A unit template with its ExecStart= replaced, and home-directory paths bound read-only. */
export function renderSystemdUnit(
  template: string,
  exec: { node: string; bin: string; config: string },
  system: boolean,
): string {
  const line = `ExecStart=${[exec.node, exec.bin, '--config', exec.config, 'start'].map((w, i) => systemdWord(w, i > 0)).join(' ')}`;
  if ((template.match(/^ExecStart=.*$/gm) ?? []).length !== 1)
    throw new Error('unit template: expected exactly one ExecStart= line');
  let unit = template.replace(/^ExecStart=.*$/m, () => line);
  const underHome = (p: string) => /^\/(home|root|run\/user)(\/|$)/.test(p);
  // The installation root (bin/, dist/, node_modules/), node's directory and the config's directory
  // (a directory, so that an editor's rename is seen by a reload).
  const binds = [
    ...new Set([path.dirname(path.dirname(exec.bin)), path.dirname(exec.node), path.dirname(exec.config)]),
  ].filter(underHome);
  if (system && binds.length) {
    if (!/^ProtectHome=yes$/m.test(unit)) throw new Error('unit template: expected ProtectHome=yes');
    unit = unit.replace(
      /^ProtectHome=yes$/m,
      () =>
        `# node or localpost live under a home directory: hide the homes but bind these read-only.\nProtectHome=tmpfs\nBindReadOnlyPaths=${binds.map((b) => systemdWord(b)).join(' ')}`,
    );
  }
  return unit;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The paths a LaunchAgent plist names. */
export interface PlistPaths {
  node: string;
  bin: string;
  config: string;
  log: string;
  /** PATH for `{ command }` secrets (security, pass, gpg). */
  pathEnv: string;
}

/** Example paths of the shipped launchd/com.localpost.plist. */
export const EXAMPLE_PLIST_PATHS: PlistPaths = {
  node: '/usr/local/bin/node',
  bin: '/usr/local/lib/node_modules/localpost/bin/localpost',
  config: '/Users/me/.config/localpost/config.yaml',
  log: '/Users/me/Library/Logs/localpost.log',
  pathEnv: '/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
};

/** The launchd job: `localpost start`, at load, restarted after a failure, logs to one file. */
export function renderPlist(p: PlistPaths): string {
  const str = (s: string) => `<string>${xml(s)}</string>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!--
  localpost as a macOS LaunchAgent: runs \`localpost start\` when you log in.
  \`localpost service install\` writes this file to ~/Library/LaunchAgents/com.localpost.plist with
  this installation's paths and runs \`launchctl load -w\` on it. By hand: replace the paths below
  (launchd expands neither ~ nor $VARS). KeepAlive restarts localpost after a failure but not after
  a clean stop (\`launchctl stop com.localpost\`); launchd cannot skip restarts on exit status 78 (bad
  config) the way systemd does, so ThrottleInterval spaces those out. Logs are JSON lines.
  Secrets: launchd passes no shell environment, so prefer password: { command: "security
  find-generic-password -s localpost -w" } to { env: ... }, or add the variable below.
-->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>com.localpost</string>
  <key>ProgramArguments</key>
  <array>
    ${[p.node, p.bin, '--config', p.config, 'start'].map(str).join('\n    ')}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>30</integer>
  <key>ProcessType</key>
  <string>Background</string>
  <key>EnvironmentVariables</key>
  <dict>
    <key>PATH</key>
    ${str(p.pathEnv)}
  </dict>
  <key>StandardOutPath</key>
  ${str(p.log)}
  <key>StandardErrorPath</key>
  ${str(p.log)}
</dict>
</plist>
`;
}

const template = (root: string, name: string) => readFileSync(path.join(root, 'systemd', name), 'utf8');

/** Works out every file and command of an installation (nothing is changed). */
export function planInstall(t: InstallTarget): InstallPlan {
  const env = t.env ?? process.env;
  const home = t.home ?? env.HOME ?? os.homedir();
  const root = t.root ?? INSTALL_ROOT;
  const node = t.node ?? process.execPath;
  const bin = path.join(root, 'bin', 'localpost');
  const notes: string[] = [];
  if (!existsSync(path.join(root, 'dist', 'cli.js')))
    notes.push(`${root}/dist is missing: run \`npm run build\` there, or the service cannot start.`);
  const run = (...argv: string[]): InstallAction => ({ kind: 'run', argv });

  if (t.platform === 'darwin') {
    const config = path.resolve(configPath(t.configFlag, env));
    const plist = path.join(home, 'Library', 'LaunchAgents', 'com.localpost.plist');
    const log = path.join(home, 'Library', 'Logs', 'localpost.log');
    const actions: InstallAction[] = [
      {
        kind: 'write',
        path: plist,
        mode: 0o644,
        content: renderPlist({ ...EXAMPLE_PLIST_PATHS, node, bin, config, log }),
      },
      { kind: 'run', argv: ['launchctl', 'unload', plist], mayFail: true },
    ];
    if (existsSync(config)) actions.push(run('launchctl', 'load', '-w', plist));
    else notes.push(`No config at ${config} yet: run \`localpost init\`, then \`launchctl load -w ${plist}\`.`);
    notes.push(`Logs: ${log}. Stop: launchctl unload ${plist}.`);
    if (t.user === false)
      notes.push('On macOS localpost runs as a LaunchAgent of your user; there is no system-wide variant.');
    return { actions, notes };
  }
  if (t.platform !== 'linux')
    throw new InstallError(
      `no service manager support for ${t.platform}; run \`localpost start\` from your own start-up script`,
    );

  if (t.user) {
    const config = path.resolve(configPath(t.configFlag, env));
    const xdg =
      env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, '.config');
    const unit = path.join(xdg, 'systemd', 'user', 'localpost.service');
    const actions: InstallAction[] = [
      {
        kind: 'write',
        path: unit,
        mode: 0o644,
        content: renderSystemdUnit(template(root, 'localpost-user.service'), { node, bin, config }, false),
      },
      run('systemctl', '--user', 'daemon-reload'),
      run('systemctl', '--user', 'enable', 'localpost.service'),
    ];
    if (existsSync(config)) actions.push(run('systemctl', '--user', 'restart', 'localpost.service'));
    else notes.push(`No config at ${config} yet: run \`localpost init\`, then \`systemctl --user start localpost\`.`);
    notes.push(
      'It runs while you are logged in; `loginctl enable-linger` keeps it running after you log out and from boot.',
      'Status: systemctl --user status localpost. Logs: journalctl --user -u localpost.',
    );
    return { actions, notes };
  }

  const config = path.resolve(t.configFlag ?? SYSTEM_CONFIG);
  const actions: InstallAction[] = [
    {
      kind: 'write',
      path: '/etc/sysusers.d/localpost.conf',
      mode: 0o644,
      content: template(root, 'localpost.sysusers'),
    },
    run('systemd-sysusers', '/etc/sysusers.d/localpost.conf'),
    {
      kind: 'write',
      path: '/etc/systemd/system/localpost.service',
      mode: 0o644,
      content: renderSystemdUnit(template(root, 'localpost.service'), { node, bin, config }, true),
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
    'Status: systemctl status localpost. Logs: journalctl -u localpost. Reload the config: systemctl reload localpost.',
  );
  return { actions, notes };
}

/** The plan as text: each file in full, each command on a line. */
function describePlan(plan: InstallPlan): string {
  const out: string[] = [];
  for (const a of plan.actions) {
    if (a.kind === 'write') {
      out.push(`write ${a.path} (mode ${a.mode.toString(8).padStart(4, '0')}):`, '-----', a.content.trimEnd(), '-----');
    } else {
      out.push(`run   ${a.argv.join(' ')}${a.mayFail ? '   (a failure is ignored)' : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Runs one step with the user watching its output; the shell's 127 when it cannot start. */
async function runCommand([cmd, ...args]: string[]): Promise<number> {
  if (cmd === undefined) throw new Error('an empty command line');
  const r = await runProgram(cmd, args, { output: 'inherit' });
  return r.error ? 127 : (r.code ?? 1);
}

/** Runs `localpost service install`; resolves with the exit code. */
export async function runServiceInstall(
  flags: { user?: boolean; dryRun?: boolean; config?: string },
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let plan: InstallPlan;
  try {
    if (process.platform === 'linux' && !flags.user && process.getuid?.() !== 0 && !flags.dryRun) {
      throw new InstallError('a system service needs root: run it with sudo, or use --user for your own user');
    }
    plan = planInstall({ platform: process.platform, user: Boolean(flags.user), configFlag: flags.config });
  } catch (e) {
    if (!(e instanceof InstallError)) throw e;
    err.write(`localpost service install: ${e.message}\n`);
    return 1;
  }
  if (flags.dryRun) {
    out.write(`localpost service install --dry-run: nothing is written or run.\n\n${describePlan(plan)}`);
  } else {
    for (const a of plan.actions) {
      if (a.kind === 'write') {
        await mkdir(path.dirname(a.path), { recursive: true, mode: 0o755 });
        await writeFile(a.path, a.content, { mode: a.mode });
        await chmod(a.path, a.mode);
        out.write(`wrote ${a.path}\n`);
        continue;
      }
      out.write(`$ ${a.argv.join(' ')}\n`);
      const code = await runCommand(a.argv);
      if (code !== 0 && !a.mayFail) {
        err.write(`localpost service install: \`${a.argv.join(' ')}\` failed (exit ${code}); stopped there\n`);
        return 1;
      }
    }
  }
  if (plan.notes.length) out.write(`\n${plan.notes.join('\n')}\n`);
  return 0;
}
