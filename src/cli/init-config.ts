/**
 * The starter config `localpost init` writes: rendering the answers as commented YAML, and
 * writing it without ever replacing an existing file.
 *
 * Guarantees of `writeNewConfig` (through `writeFileExclusive`): the file appears complete or
 * not at all, and an existing one, even one created meanwhile, is never replaced; it has mode
 * 0600; a missing directory is created with mode 0700 (an existing one keeps its mode).
 * `renderConfig` output always validates against the schema (`parseConfigText`); tests check
 * that for every provider preset.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { oauth2Of, type PlainSecret } from '../config/schema.js';
import { FileExistsError, writeFileExclusive } from '../shared/durable-fs.js';
import type { Endpoint, Protocol, ProviderPreset } from './providers.js';

/** An upstream credential as init writes it: a password source, or an OAuth client (the schema fills in the rest). */
export type InitSecret =
  | PlainSecret
  | { oauth2: { provider: 'google' | 'microsoft'; clientId: string; clientSecret?: string; tenant?: string } };

/** Everything init asked for or took from flags. */
export interface InitAnswers {
  preset: ProviderPreset;
  email: string;
  /** Account id: names the account's folder. */
  id: string;
  protocol: Protocol;
  incoming: Endpoint & { username: string };
  /** Absent: receive only. */
  outgoing?: Endpoint & { username: string };
  /** The upstream password source, or OAuth 2.0. */
  password: InitSecret;
  /** What the local mail client types. */
  localUsername: string;
  /** `login.passwordHash` of the local password. */
  localPasswordHash: string;
  /** Written only when given; otherwise the default applies. */
  dataDir?: string;
}

/** A YAML scalar: JSON strings are valid YAML double-quoted scalars. */
const q = (s: string): string => JSON.stringify(s);

function secretYaml(s: InitSecret): string {
  if (typeof s === 'string') return q(s);
  if ('env' in s) return `{ env: ${q(s.env)} }`;
  if ('file' in s) return `{ file: ${q(s.file)} }`;
  if ('command' in s) return `{ command: ${q(s.command)} }`;
  const o = s.oauth2;
  const parts = [`provider: ${o.provider}`, `clientId: ${q(o.clientId)}`];
  if (o.clientSecret !== undefined) parts.push(`clientSecret: ${secretYaml(o.clientSecret)}`);
  if (o.tenant !== undefined) parts.push(`tenant: ${q(o.tenant)}`);
  return `{ oauth2: { ${parts.join(', ')} } }`;
}

/** Word-wraps `text` into comment lines starting with `prefix`. */
export function commentLines(text: string, prefix: string, width = 96): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      out.push(prefix + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(prefix + line);
  return out;
}

/** What a password source means, as a comment beside it. */
function secretNote(s: InitSecret, id: string): string {
  if (typeof s === 'string') return 'stored here: keep this file private (mode 0600)';
  if (oauth2Of(s))
    return `OAuth 2.0: run \`localpost auth ${id}\` once to sign in; the tokens are kept, encrypted, in dataDir`;
  if ('env' in s) return `read from $${s.env} (a service reads it from the EnvironmentFile= of its unit)`;
  if ('file' in s) return 'read from that file (mode 0600)';
  return 'the first line the command prints';
}

/** The config file text for the answers. */
export function renderConfig(a: InitAnswers, now = new Date()): string {
  const p = a.preset;
  const lines = [
    `# localpost configuration, written by \`localpost init\` on ${now.toISOString().slice(0, 10)}.`,
    '#',
    '# Check it with `localpost check`; `localpost client-setup` prints what to type into your mail',
    '# client. A running daemon re-reads this file on SIGHUP (`systemctl reload localpost`); an',
    '# invalid file is rejected and the running configuration kept. Every key, with its default:',
    '# config/localpost.example.yaml in the localpost sources.',
    '',
    '# Where cached mail and state live.',
    a.dataDir ? `dataDir: ${q(a.dataDir)}` : '# dataDir: ~/.local/share/localpost',
    '',
    '# The local servers your mail client talks to (loopback only), all on by default: IMAP for clients',
    '# that speak it (every folder, changes carried to your provider; `enabled: false` turns it off),',
    '# POP3 for the others, SMTP to send.',
    '# listen:',
    '#   imap: { port: 1143 }',
    '#   pop3: { port: 1110 }',
    '#   smtp: { port: 1025 }',
    '',
    'accounts:',
    `  # ${p.title}${p.name === 'generic' ? '' : ` (preset "${p.name}")`}`,
    ...commentLines(
      oauth2Of(a.password)
        ? 'Signs in with OAuth 2.0 (README, "Signing in with OAuth 2.0"); no password is stored.'
        : p.password,
      '  # ',
    ),
    ...p.notes.flatMap((n) => commentLines(`- ${n}`, '  # ').map((l, i) => (i === 0 ? l : l.replace('# ', '#   ')))),
  ];
  lines.push(
    `  - id: ${a.id}`,
    `    email: ${q(a.email)}`,
    '    # What your mail client types to log in to localpost (not your provider password).',
    '    login:',
    `      username: ${q(a.localUsername)}`,
    '      # The local password init printed, hashed. Replace it with `password: "..."` to choose another.',
    `      passwordHash: ${q(a.localPasswordHash)}`,
    '    incoming:',
    `      protocol: ${a.protocol}`,
    `      host: ${q(a.incoming.host)}`,
    `      port: ${a.incoming.port}`,
    `      tls: ${a.incoming.tls}`,
    `      username: ${q(a.incoming.username)}`,
    `      # Upstream password: ${secretNote(a.password, a.id)}.`,
    `      password: ${secretYaml(a.password)}`,
    '      schedule: "*/5 * * * *"',
  );
  if (a.protocol === 'pop3') {
    lines.push(
      '      # false: delete upstream once the local copy is durable.',
      '      keepOnServer: true',
      '      # What deleting in your mail client does upstream: keep-upstream | delete-upstream.',
      '      onLocalDelete: keep-upstream',
      "      # Serve the provider's UIDLs, so a client that kept mail on the provider downloads nothing again.",
      '      uidls: upstream',
    );
  } else {
    lines.push(
      '      # Folders to cache and show in your mail client: names or IMAP patterns (* any depth, % one level).',
      '      # Sent, Drafts, Trash and Junk always come; [INBOX] caches only those and INBOX.',
      '      folders: ["*"]',
      '      idle: true',
      '      onLocalDelete: keep-upstream',
    );
  }
  if (a.outgoing) {
    lines.push(
      '    outgoing:',
      `      host: ${q(a.outgoing.host)}`,
      `      port: ${a.outgoing.port}`,
      `      tls: ${a.outgoing.tls}`,
      `      username: ${q(a.outgoing.username)}`,
      `      password: ${secretYaml(a.password)}`,
    );
  } else {
    lines.push('    # No outgoing server: receive only.');
  }
  return `${lines.join('\n')}\n`;
}

/** Thrown when the config file already exists. */
export class ConfigExistsError extends Error {
  constructor(readonly file: string) {
    super(`${file} already exists; not overwriting it. Edit it, or move it away and run \`localpost init\` again`);
    this.name = 'ConfigExistsError';
  }
}

/** Writes `text` to a new file `file` (mode 0600); throws ConfigExistsError if it exists. */
export async function writeNewConfig(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFileExclusive(file, text);
  } catch (err) {
    throw err instanceof FileExistsError ? new ConfigExistsError(file) : err;
  }
}
