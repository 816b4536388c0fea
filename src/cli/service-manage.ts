/**
 * `localpost service uninstall [--user] [--dry-run]` and `localpost service status [--user]
 * [--dry-run]`, for systemd (system and user services) and launchd.
 *
 * uninstall stops and disables the service and removes its unit or plist; the config, the mail
 * and the `localpost` system user stay. It is idempotent: with no unit or plist there is nothing
 * to do, and it says so (exit 0).
 *
 * status reads the unit or plist (which command it runs, and whether that is this installation)
 * and asks the service manager whether it is enabled and active; exit 0 when a service is
 * installed, 3 when none is. On Linux without --user it reports the system and the user service.
 * `--dry-run` changes nothing (uninstall) or runs no service manager command (status): both
 * print what they would run.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { runProgram } from '../shared/exec.js';
import {
  type Installation,
  locateInstallation,
  type Plan,
  type PlanAction,
  requireRootForSystem,
  runPlan,
  ServiceError,
  type ServiceLocation,
  serviceLocation,
} from './service-plan.js';
import { plistProgram, unitExecStart } from './service-units.js';

/** Everything `service uninstall` does for one service (nothing is changed). */
export function planUninstall(where: ServiceLocation): Plan {
  if (!existsSync(where.file))
    return { actions: [], notes: [`No ${where.title} is installed (no ${where.file}); nothing to do.`] };
  const actions: PlanAction[] =
    where.manager === 'launchd'
      ? [
          { kind: 'run', argv: ['launchctl', 'unload', where.file], mayFail: true },
          { kind: 'remove', path: where.file },
        ]
      : [
          { kind: 'run', argv: [...where.systemctl, 'disable', '--now', 'localpost.service'] },
          { kind: 'remove', path: where.file },
          { kind: 'run', argv: [...where.systemctl, 'daemon-reload'] },
          { kind: 'run', argv: [...where.systemctl, 'reset-failed', 'localpost.service'], mayFail: true },
        ];
  const kept = {
    'systemd-system':
      'Left in place: the config (/etc/localpost), the mail and state (/var/lib/localpost) and the localpost user (/etc/sysusers.d/localpost.conf).',
    'systemd-user': 'Left in place: your config and your mail (dataDir).',
    launchd: 'Left in place: your config, your mail (dataDir) and the log (~/Library/Logs/localpost.log).',
  }[where.manager];
  return { actions, notes: [kept] };
}

/** Runs `localpost service uninstall`; resolves with the exit code. */
export async function runServiceUninstall(
  flags: { user?: boolean; dryRun?: boolean },
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let plan: Plan;
  try {
    const where = serviceLocation(process.platform, Boolean(flags.user));
    if (existsSync(where.file)) requireRootForSystem(process.platform, Boolean(flags.user), Boolean(flags.dryRun));
    plan = planUninstall(where);
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    err.write(`localpost service uninstall: ${e.message}\n`);
    return 1;
  }
  return runPlan('localpost service uninstall', plan, Boolean(flags.dryRun), out, err);
}

/** The words of a unit's command line, unquoted (systemd's "..." and %% / $$ escapes). */
function unitWords(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) =>
    (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? '')).replace(/%%/g, '%').replace(/\$\$/g, '$'),
  );
}

const sameFile = (a: string, b: string) => {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
};

/** Asks the service manager one thing; undefined in a dry run. */
export type Query = (
  argv: string[],
) => Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }>;

/** One service's status as lines of text, and whether it is installed. */
export async function describeStatus(
  where: ServiceLocation,
  inst: Installation,
  query: Query | undefined,
): Promise<{ installed: boolean; text: string }> {
  if (!existsSync(where.file)) return { installed: false, text: `${where.title}: not installed (no ${where.file})\n` };
  const content = readFileSync(where.file, 'utf8');
  const launchd = where.manager === 'launchd';
  const command = launchd ? plistProgram(content) : unitExecStart(content);
  const words = launchd ? (command ?? '').split(' ') : unitWords(command ?? '');
  const bin = words[1];
  const whose =
    bin === undefined
      ? ''
      : sameFile(bin, path.join(inst.root, 'bin', 'localpost'))
        ? ' (this installation)'
        : ` (not this installation, which is ${inst.root})`;
  const lines = [`${where.title}: installed`, `  file:    ${where.file}`, `  runs:    ${command ?? '?'}${whose}`];
  const ask = async (label: string, argv: string[], read: (stdout: string, code: number | null) => string) => {
    if (!query) return lines.push(`  ${label} would run: ${argv.join(' ')}`);
    const r = await query(argv);
    const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';
    const why = r.error ? `${argv[0]}: ${r.error.code ?? r.error.message}` : firstLine(r.stderr) || `exit ${r.code}`;
    const answer = (r.error ? '' : read(r.stdout, r.code)) || `unknown (${why})`;
    return lines.push(`  ${label} ${answer}`);
  };
  if (launchd) {
    await ask('loaded: ', ['launchctl', 'list', 'com.localpost'], (stdout, code) => {
      if (code !== 0) return 'no';
      const pid = /"PID" = (\d+);/.exec(stdout)?.[1];
      const last = /"LastExitStatus" = (-?\d+);/.exec(stdout)?.[1];
      return pid ? `yes, running (pid ${pid})` : `yes, not running (last exit status ${last ?? '?'})`;
    });
  } else {
    await ask('enabled:', [...where.systemctl, 'is-enabled', 'localpost.service'], (s) => s.trim());
    await ask('active: ', [...where.systemctl, 'is-active', 'localpost.service'], (s) => s.trim());
  }
  return { installed: true, text: `${lines.join('\n')}\n` };
}

/** Runs `localpost service status`; resolves with 0 when a service is installed, else 3. */
export async function runServiceStatus(
  flags: { user?: boolean; dryRun?: boolean },
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  let places: ServiceLocation[];
  try {
    places =
      process.platform === 'linux' && !flags.user
        ? [serviceLocation('linux', false), serviceLocation('linux', true)]
        : [serviceLocation(process.platform, Boolean(flags.user))];
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e;
    err.write(`localpost service status: ${e.message}\n`);
    return 1;
  }
  const query: Query | undefined = flags.dryRun
    ? undefined
    : ([cmd = '', ...args]) => runProgram(cmd, args, { timeoutMs: 10_000 });
  const inst = locateInstallation();
  let any = false;
  for (const where of places) {
    const s = await describeStatus(where, inst, query);
    any ||= s.installed;
    out.write(s.text);
  }
  return any ? 0 : 3;
}
