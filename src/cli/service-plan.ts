/**
 * What the `service` commands share: where this installation is and which command a service
 * should run, where each service manager keeps localpost's unit, and plans (files to write or
 * remove, commands to run) that `--dry-run` prints and a real run carries out in order.
 *
 * Invariants:
 * - a service runs an installed command with an absolute node: `command -v localpost` when that
 *   is this installation, else this installation's own bin/localpost (node is pinned because the
 *   service's PATH may find another node, or none, and better-sqlite3 is built for this one);
 * - a system service never points at what it cannot see or should not run: anything under /tmp
 *   or /var/tmp (PrivateTmp=yes, and emptied at boot) or a checkout in a home directory
 *   (ProtectHome=yes, and the service would run whatever the working tree holds);
 * - planning changes nothing; only `runPlan` writes, removes or runs.
 */
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProgram } from '../shared/exec.js';
import { underHome } from './service-units.js';

/** The root of the running installation (holds bin/, dist/, systemd/, launchd/). */
export const INSTALL_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One step of a plan. */
export type PlanAction =
  | { kind: 'write'; path: string; content: string; mode: number }
  | { kind: 'remove'; path: string }
  | { kind: 'run'; argv: string[]; mayFail?: boolean };

/** Everything a command does, in order, and what to tell the user afterwards. */
export interface Plan {
  actions: PlanAction[];
  notes: string[];
}

/** The command cannot do this here; exit 1 with the message. */
export class ServiceError extends Error {}

/** The installation a service would run. */
export interface Installation {
  /** Its folder (real path): bin/, dist/, node_modules/. */
  root: string;
  /** The command the service runs (see the module comment). */
  bin: string;
  /** Whether `bin` is the `localpost` found on PATH. */
  onPath: boolean;
  /** Absolute path of node. */
  node: string;
  /** A source checkout (src/ or .git beside bin/) rather than an installed package. */
  checkout: boolean;
}

const real = (p: string) => {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/** The first executable `name` on PATH, as `command -v` finds it. */
function commandOnPath(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

/** Where the running localpost is installed and which command a service should run. */
export function locateInstallation(o: { root?: string; node?: string; env?: NodeJS.ProcessEnv } = {}): Installation {
  const root = real(o.root ?? INSTALL_ROOT);
  const own = path.join(root, 'bin', 'localpost');
  const found = commandOnPath('localpost', (o.env ?? process.env).PATH);
  const onPath = found !== undefined && real(found) === real(own);
  return {
    root,
    bin: onPath && found ? found : own,
    onPath,
    node: o.node ?? process.execPath,
    checkout: existsSync(path.join(root, 'src')) || existsSync(path.join(root, '.git')),
  };
}

const underTmp = (p: string) => /^\/(var\/)?tmp(\/|$)/.test(p);

/** Why a system service cannot run this installation, with what to do instead; undefined when it can. */
export function systemServiceProblem(inst: Installation): string | undefined {
  const howToInstall =
    'Install localpost first: in a checkout, `npm ci && sudo npm install -g --install-links .` ' +
    '(a copy; plain `npm install -g .` only links the checkout), or `npm pack` there and ' +
    '`sudo npm install -g ./localpost-<version>.tgz`; then run `sudo localpost service install`.';
  for (const [what, p] of [
    ['localpost', inst.root],
    ['node', real(inst.node)],
  ] as const) {
    if (underTmp(p))
      return `${what} is under ${p}, which a system service cannot see (PrivateTmp=yes gives it an empty /tmp) and which is emptied at boot. ${howToInstall}`;
  }
  if (inst.checkout && underHome(inst.root))
    return `${inst.root} is a source checkout in a home directory: the service runs as the user localpost, which cannot see it (ProtectHome=yes), and it would run whatever the working tree holds. ${howToInstall}`;
  return undefined;
}

/** Notes about the installation itself, for any service. */
export function installationNotes(inst: Installation): string[] {
  const notes: string[] = [];
  if (!existsSync(path.join(inst.root, 'dist', 'cli', 'bin.js')))
    notes.push(`${inst.root}/dist is missing: run \`npm run build\` there, or the service cannot start.`);
  if (inst.checkout)
    notes.push(
      `This service runs the checkout ${inst.root}; \`npm install -g --install-links .\` there installs a copy that a \`git pull\` does not change under it.`,
    );
  return notes;
}

/** Where a service manager keeps localpost's service, for this user. */
export interface ServiceLocation {
  manager: 'systemd-system' | 'systemd-user' | 'launchd';
  /** The unit or plist file. */
  file: string;
  /** `systemctl` or `systemctl --user` (systemd only). */
  systemctl: string[];
  /** How a person names this service in a sentence. */
  title: string;
}

/** The service file for `platform` and `user`, or a ServiceError on a platform without support. */
export function serviceLocation(
  platform: NodeJS.Platform,
  user: boolean,
  env: NodeJS.ProcessEnv = process.env,
  home = env.HOME ?? os.homedir(),
): ServiceLocation {
  if (platform === 'darwin')
    return {
      manager: 'launchd',
      file: path.join(home, 'Library', 'LaunchAgents', 'com.localpost.plist'),
      systemctl: [],
      title: 'launchd agent',
    };
  if (platform !== 'linux')
    throw new ServiceError(
      `no service manager support for ${platform}; run \`localpost start\` from your own start-up script`,
    );
  if (!user)
    return {
      manager: 'systemd-system',
      file: '/etc/systemd/system/localpost.service',
      systemctl: ['systemctl'],
      title: 'systemd system service',
    };
  const xdg =
    env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, '.config');
  return {
    manager: 'systemd-user',
    file: path.join(xdg, 'systemd', 'user', 'localpost.service'),
    systemctl: ['systemctl', '--user'],
    title: 'systemd user service',
  };
}

/** Refuses a real (not dry) change of a system service without root. */
export function requireRootForSystem(platform: NodeJS.Platform, user: boolean, dryRun: boolean): void {
  if (platform === 'linux' && !user && !dryRun && process.getuid?.() !== 0)
    throw new ServiceError('a system service needs root: run it with sudo, or use --user for your own user');
}

/** The plan as text: each file in full, each command on a line. */
export function describePlan(plan: Plan): string {
  const out: string[] = [];
  for (const a of plan.actions) {
    if (a.kind === 'write') {
      out.push(`write ${a.path} (mode ${a.mode.toString(8).padStart(4, '0')}):`, '-----', a.content.trimEnd(), '-----');
    } else if (a.kind === 'remove') {
      out.push(`remove ${a.path}`);
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

/**
 * Prints the plan (`dryRun`) or carries it out, stopping at the first step that fails and may
 * not; then the notes. Resolves with the exit code.
 */
export async function runPlan(
  name: string,
  plan: Plan,
  dryRun: boolean,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  if (dryRun) {
    const changes = plan.actions.some((a) => a.kind === 'remove') ? 'removed' : 'written';
    out.write(`${name} --dry-run: nothing is ${changes} or run.\n\n${describePlan(plan)}`);
  } else {
    for (const a of plan.actions) {
      if (a.kind === 'write') {
        await mkdir(path.dirname(a.path), { recursive: true, mode: 0o755 });
        await writeFile(a.path, a.content, { mode: a.mode });
        await chmod(a.path, a.mode);
        out.write(`wrote ${a.path}\n`);
      } else if (a.kind === 'remove') {
        await rm(a.path, { force: true });
        out.write(`removed ${a.path}\n`);
      } else {
        out.write(`$ ${a.argv.join(' ')}\n`);
        const code = await runCommand(a.argv);
        if (code !== 0 && !a.mayFail) {
          err.write(`${name}: \`${a.argv.join(' ')}\` failed (exit ${code}); stopped there\n`);
          return 1;
        }
      }
    }
  }
  if (plan.notes.length) out.write(`\n${plan.notes.join('\n')}\n`);
  return 0;
}
