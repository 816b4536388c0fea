/**
 * A config file that holds a password in clear and that other users can read: the warning
 * `start` logs and `check` prints. A literal secret is an upstream `password: "..."` string or a
 * local `login.password`; `passwordHash`, `{ env }`, `{ file }`, `{ command }` and `{ oauth2 }`
 * keep no password in the file. Readable by others means the read bit for others, or for the group
 * of a file the daemon's user owns; a file another user (root) owns and shares with the daemon's
 * own group is the system service's pattern (`0640 root:localpost`) and is not warned about.
 */
import { stat } from 'node:fs/promises';
import type { Config } from './schema.js';

/** The config keys that hold a password in clear. */
function literalSecretKeys(cfg: Config): string[] {
  return cfg.accounts.flatMap((a, i) => [
    ...(typeof a.incoming.password === 'string' ? [`accounts[${i}].incoming.password`] : []),
    ...(typeof a.outgoing?.password === 'string' ? [`accounts[${i}].outgoing.password`] : []),
    ...(a.login.password !== undefined ? [`accounts[${i}].login.password`] : []),
  ]);
}

/** The warning for `file` holding `cfg`, or undefined when its secrets are safe (or it has none). */
export async function exposedSecretsWarning(file: string, cfg: Config): Promise<string | undefined> {
  const keys = literalSecretKeys(cfg);
  if (!keys.length) return undefined;
  let mode: number;
  let shared: boolean;
  try {
    const st = await stat(file);
    mode = st.mode & 0o777;
    shared = st.uid !== process.geteuid?.() && st.gid === process.getegid?.();
  } catch {
    return undefined; // read a moment ago: gone or replaced meanwhile, nothing to say
  }
  const groupReads = (mode & 0o040) !== 0 && !shared;
  const othersRead = (mode & 0o004) !== 0;
  if (!groupReads && !othersRead) return undefined;
  const who = (groupReads ? ['group'] : []).concat(othersRead ? ['others'] : []).join(' and ');
  const shown = keys.length > 3 ? `${keys.slice(0, 3).join(', ')} and ${keys.length - 3} more` : keys.join(', ');
  return (
    `${file} holds ${keys.length === 1 ? 'a password' : 'passwords'} in clear (${shown}) and is readable by ` +
    `${who} (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`
  );
}
