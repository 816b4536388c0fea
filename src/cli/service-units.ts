/**
 * The service definitions `localpost service install` writes: the systemd units (from the
 * templates in systemd/, with ExecStart= and a few sandboxing lines rewritten) and the launchd
 * plist (rendered here; the shipped launchd/com.localpost.plist is its output for example paths,
 * and a test keeps them equal). Pure functions: no file is read or written here.
 *
 * Invariants:
 * - a template has exactly one ExecStart= line, and only the lines named below change;
 * - every word written into a unit or plist is quoted for it (systemd specifiers and variables,
 *   XML entities), so any path works;
 * - the plist sets LOCALPOST_LAUNCHD=1, which makes a configuration error (EX_CONFIG, 78) exit 0
 *   under launchd (bin.ts): KeepAlive cannot skip one exit status, and a bad config needs a person.
 */
import path from 'node:path';

/** The status localpost exits with on a missing or invalid configuration (EX_CONFIG). */
export const EX_CONFIG = 78;

/** The environment variable the plist sets, so that localpost knows launchd runs it. */
export const LAUNCHD_ENV = 'LOCALPOST_LAUNCHD';

/** The lines of the user unit between these markers need a user namespace of the service's own. */
const USERNS_BEGIN = '# >>> needs a user namespace';
const USERNS_END = '# <<< needs a user namespace';

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

/** Whether a path lies in a home directory (what ProtectHome= hides). */
export const underHome = (p: string) => /^\/(home|root|run\/user)(\/|$)/.test(p);

/** What a unit runs: `node bin --config config start`. */
export interface ExecPaths {
  node: string;
  /** The localpost command: the one on PATH when that is this installation, else its bin/localpost. */
  bin: string;
  config: string;
  /** The installation's folder (bin/, dist/, node_modules/); default: two levels above `bin`. */
  root?: string;
}

/** Rendering choices beyond the paths. */
export interface UnitOptions {
  /**
   * User unit: whether this user can create user namespaces. Without them the block that needs
   * one is left out, since PrivateUsers= would fail the start (and dropping capabilities with it).
   */
  userNamespaces?: boolean;
}

/**
 * A unit template with its ExecStart= replaced. In the system unit, installation, node and
 * config paths in a home directory are bound read-only under ProtectHome=tmpfs; in the user
 * unit, the block that needs a user namespace is dropped when there is none.
 */
export function renderSystemdUnit(template: string, exec: ExecPaths, system: boolean, opts: UnitOptions = {}): string {
  const line = `ExecStart=${[exec.node, exec.bin, '--config', exec.config, 'start'].map((w, i) => systemdWord(w, i > 0)).join(' ')}`;
  if ((template.match(/^ExecStart=.*$/gm) ?? []).length !== 1)
    throw new Error('unit template: expected exactly one ExecStart= line');
  let unit = template.replace(/^ExecStart=.*$/m, () => line);
  // The installation root (bin/, dist/, node_modules/), node's directory and the config's directory
  // (a directory, so that an editor's rename is seen by a reload).
  const root = exec.root ?? path.dirname(path.dirname(exec.bin));
  const binds = [...new Set([root, path.dirname(exec.node), path.dirname(exec.config)])].filter(underHome);
  if (system && binds.length) {
    if (!/^ProtectHome=yes$/m.test(unit)) throw new Error('unit template: expected ProtectHome=yes');
    unit = unit.replace(
      /^ProtectHome=yes$/m,
      () =>
        `# node or localpost live under a home directory: hide the homes but bind these read-only.\nProtectHome=tmpfs\nBindReadOnlyPaths=${binds.map((b) => systemdWord(b)).join(' ')}`,
    );
  }
  const begin = unit.indexOf(USERNS_BEGIN);
  const end = unit.indexOf(USERNS_END);
  if (begin >= 0 && end > begin) {
    const block = unit.slice(begin, unit.indexOf('\n', end) + 1);
    unit = unit.replace(
      block,
      opts.userNamespaces === false
        ? '# (Left out: this machine does not let users create user namespaces.)\n'
        : block
            .split('\n')
            .filter((l) => l !== USERNS_BEGIN && l !== USERNS_END)
            .join('\n'),
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
  bin: '/usr/local/bin/localpost',
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
  this installation's paths and runs \`launchctl load -w\` on it; \`localpost service uninstall\`
  unloads and removes it. By hand: replace the paths below (launchd expands neither ~ nor $VARS).
  Restarts: KeepAlive { SuccessfulExit = false } restarts localpost after a failure (a crash, a
  non-zero exit), not after a clean stop (\`launchctl stop com.localpost\`). launchd cannot skip
  one exit status the way systemd's RestartPreventExitStatus=78 does, so ${LAUNCHD_ENV}=1 below
  makes localpost log a configuration error and exit 0 instead of 78 (EX_CONFIG): a broken
  config stops it until you fix the file and run \`launchctl kickstart gui/$(id -u)/com.localpost\`.
  ThrottleInterval spaces out restarts after crashes. Logs are JSON lines.
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
    <key>${LAUNCHD_ENV}</key>
    <string>1</string>
  </dict>
  <key>StandardOutPath</key>
  ${str(p.log)}
  <key>StandardErrorPath</key>
  ${str(p.log)}
</dict>
</plist>
`;
}

/** The ExecStart= command of a unit file, as written (quoted words kept whole), or undefined. */
export function unitExecStart(unit: string): string | undefined {
  return /^ExecStart=(.*)$/m.exec(unit)?.[1];
}

/** The ProgramArguments of a plist, joined by spaces, or undefined. */
export function plistProgram(plist: string): string | undefined {
  const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(plist)?.[1];
  if (array === undefined) return undefined;
  const unxml = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
  return [...array.matchAll(/<string>([\s\S]*?)<\/string>/g)].map((m) => unxml(m[1] ?? '')).join(' ');
}
