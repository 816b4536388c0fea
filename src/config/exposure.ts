/**
 * What a config exposes, as the warnings `start` logs and `check` prints: listeners that accept
 * old TLS versions (`listen.*.tls.legacy`), upstreams reached in clear (`tls: none`, an `http://`
 * OAuth token URL) on a host that is not loopback, and a config file that holds a password in clear and
 * that other users can read. A literal secret is an upstream `password: "..."` string or a
 * local `login.password`; `passwordHash`, `{ env }`, `{ file }`, `{ command }` and `{ oauth2 }`
 * keep no password in the file. Readable by others means the read bit for others, or for the group
 * of a file the daemon's user owns; a file another user (root) owns and shares with the daemon's
 * own group is the system service's pattern (`0640 root:localpost`) and is not warned about.
 */
import { stat } from 'node:fs/promises';
import { isLoopbackHost } from '../shared/loopback.js';
import { type Config, oauth2Of } from './schema.js';

/** The warning for listeners with the legacy TLS profile on, or undefined when none has it. */
export function legacyTlsWarning(cfg: Config): string | undefined {
  const keys = (['pop3', 'imap', 'smtp'] as const).flatMap((l) => {
    const t = cfg.listen[l].tls;
    return typeof t === 'object' && t.legacy ? [`listen.${l}.tls.legacy`] : [];
  });
  if (!keys.length) return undefined;
  return (
    `${keys.join(', ')}: TLS 1.0/1.1 and weak ciphers (OpenSSL security level 0) are accepted, which someone on ` +
    'the network can attack far more easily than TLS 1.2; meant only for old mail clients without TLS 1.2 on ' +
    'a trusted LAN: turn it off once they are gone'
  );
}

/**
 * One warning per upstream the credentials would cross the network to in clear: a server with
 * `tls: none`, or an OAuth `tokenUrl` over http (it carries the refresh token), on a host that is
 * not loopback (a local tunnel or test server is fine).
 */
export function cleartextUpstreamWarnings(cfg: Config): string[] {
  const out: string[] = [];
  cfg.accounts.forEach((a, i) => {
    for (const [key, s] of [
      ['incoming', a.incoming],
      ['outgoing', a.outgoing],
    ] as const) {
      if (!s) continue;
      if (s.tls === 'none' && !isLoopbackHost(s.host))
        out.push(
          `accounts[${i}].${key}.tls: none sends the password and the mail to ${s.host} unencrypted: ` +
            'use starttls or implicit unless the network to it is trusted',
        );
      const url = oauth2Of(s.password)?.tokenUrl;
      const host = url?.startsWith('http:') ? new URL(url).hostname : undefined;
      if (host !== undefined && !isLoopbackHost(host))
        out.push(
          `accounts[${i}].${key}.password.oauth2.tokenUrl: ${url} is plain http: the client secret and ` +
            'the refresh token would cross the network unencrypted; use https',
        );
    }
  });
  return out;
}

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
