/**
 * `localpost init`: writes a starter config for one account, from a provider preset
 * (providers.ts) and either questions on a terminal or flags (`--non-interactive`, or whenever
 * stdin is not a terminal).
 *
 * Both modes run the same steps: a flag, when given, answers its question; otherwise the
 * terminal is asked (with the flag's default offered), or the default is taken, or the run
 * fails naming the missing flag. Microsoft presets sign in with OAuth 2.0, Gmail with an app
 * password or OAuth (`--auth`): the config then holds an `oauth2` block (client id, and Google's
 * client secret) and the user runs `localpost auth ID` once. The upstream password is best
 * referenced, not stored: `{ env }`, `{ command }` (a keyring helper) or `{ file }`; a password
 * typed at the prompt is stored in the file, which is mode 0600 anyway. The local password (what
 * the mail client types) is generated unless given, printed once, and stored only as a scrypt
 * hash.
 *
 * The rendered file is validated with the config schema before it is written, so every flag
 * value is checked by the same rules as `localpost check`; an existing file is never replaced.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { configPath, parseConfigText } from '../config/load.js';
import { defaultPort, oauth2Of, type PlainSecret } from '../config/schema.js';
import { hashPassword } from '../listeners/local-auth.js';
import { ConfigError } from '../shared/errors.js';
import { TLS_MODES } from '../upstream/types.js';
import {
  ConfigExistsError,
  commentLines,
  type InitAnswers,
  type InitSecret,
  renderConfig,
  writeNewConfig,
} from './init-config.js';
import {
  type Endpoint,
  emailDomain,
  findProvider,
  PROVIDERS,
  type ProviderPreset,
  providerForEmail,
} from './providers.js';

/** The flags of `localpost init` (commander's camel-cased names). */
export interface InitFlags {
  provider?: string;
  email?: string;
  protocol?: string;
  host?: string;
  port?: string;
  tls?: string;
  username?: string;
  gmailRecent?: boolean;
  smtp?: boolean;
  smtpHost?: string;
  smtpPort?: string;
  smtpTls?: string;
  passwordEnv?: string;
  passwordCommand?: string;
  passwordFile?: string;
  /** `app-password` or `oauth` (presets that offer OAuth). */
  auth?: string;
  clientId?: string;
  clientSecret?: string;
  tenant?: string;
  id?: string;
  localUser?: string;
  localPassword?: string;
  dataDir?: string;
  /** false with `--non-interactive`. */
  interactive?: boolean;
}

/** Streams and paths of one run (injected by tests). */
export interface InitIo {
  configFile: string;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

/** A wrong or missing flag; the run exits 1 with this message. */
export class InitError extends Error {}

/** Asks questions; absent in non-interactive runs. */
export interface Asker {
  text(prompt: string, def?: string): Promise<string>;
  hidden(prompt: string): Promise<string>;
  say(text: string): void;
  close(): void;
}

/** A question answered by a flag, the terminal or a default. `parse` returns the value or an error message. */
interface Step<T> {
  flag: string;
  given: string | undefined;
  prompt: string;
  def?: string;
  /** A default offered on the terminal only (a guess the user should confirm). */
  suggest?: string;
  parse: (s: string) => T | { error: string };
}

const isError = (v: unknown): v is { error: string } => typeof v === 'object' && v !== null && 'error' in v;

async function step<T>(ask: Asker | undefined, s: Step<T>): Promise<T> {
  if (s.given !== undefined) {
    const v = s.parse(s.given.trim());
    if (isError(v)) throw new InitError(`${s.flag}: ${v.error}`);
    return v;
  }
  if (!ask) {
    if (s.def === undefined)
      throw new InitError(`${s.flag} is required without a terminal (or see \`localpost init --help\`)`);
    const v = s.parse(s.def);
    if (isError(v)) throw new InitError(`${s.flag}: ${v.error}`);
    return v;
  }
  for (;;) {
    const v = s.parse(await ask.text(s.prompt, s.def ?? s.suggest));
    if (!isError(v)) return v;
    ask.say(`  ${v.error}`);
  }
}

const oneOf =
  <T extends string>(values: readonly T[]) =>
  (s: string): T | { error: string } =>
    (values as readonly string[]).includes(s.toLowerCase())
      ? (s.toLowerCase() as T)
      : { error: `expected one of ${values.join(', ')}` };
const portNumber = (s: string): number | { error: string } =>
  /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : { error: 'expected a port number, 1 to 65535' };
const nonEmpty = (s: string): string | { error: string } => (s ? s : { error: 'must not be empty' });

/** A local password that is easy to type: no 0/O, 1/l/I. */
export function generatePassword(length = 16): string {
  const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** The default account id for a preset and address. */
function defaultId(preset: ProviderPreset, email: string): string {
  if (preset.name !== 'generic') return preset.name;
  const label =
    emailDomain(email)
      .split('.')[0]
      ?.replace(/[^a-z0-9_-]/g, '') ?? '';
  return /^[a-z0-9]/.test(label) ? label : 'mail';
}

/** Asks (or reads from flags) the incoming or outgoing server, starting from a preset endpoint. */
async function server(
  ask: Asker | undefined,
  kind: 'pop3' | 'imap' | 'smtp',
  base: Endpoint | undefined,
  generic: boolean,
  f: { host?: string; port?: string; tls?: string; flag: string },
): Promise<Endpoint> {
  const what = kind === 'smtp' ? 'Outgoing (SMTP) server' : `Incoming (${kind.toUpperCase()}) server`;
  const host = await step(ask && generic ? ask : undefined, {
    flag: `--${f.flag}host`,
    given: f.host,
    prompt: what,
    def: generic ? undefined : base?.host,
    suggest: base?.host,
    parse: nonEmpty,
  });
  const tls = await step(ask && generic ? ask : undefined, {
    flag: `--${f.flag}tls`,
    given: f.tls,
    prompt: 'Security: implicit (TLS), starttls or none',
    def: base?.tls ?? 'implicit',
    parse: oneOf(TLS_MODES),
  });
  const port = await step(ask && generic ? ask : undefined, {
    flag: `--${f.flag}port`,
    given: f.port,
    prompt: 'Port',
    def: String(base && tls === base.tls ? base.port : defaultPort(kind, tls)),
    parse: portNumber,
  });
  return { host, port, tls };
}

/** The upstream password source: one of the three flags, a menu on the terminal, or `{ env }`. */
async function passwordSource(
  ask: Asker | undefined,
  flags: InitFlags,
  id: string,
  preset: ProviderPreset,
): Promise<PlainSecret> {
  const given = [flags.passwordEnv && 'env', flags.passwordCommand && 'command', flags.passwordFile && 'file'].filter(
    Boolean,
  );
  if (given.length > 1)
    throw new InitError('give at most one of --password-env, --password-command and --password-file');
  const envDefault = `LOCALPOST_${id.toUpperCase().replace(/-/g, '_')}_PASSWORD`;
  const envName = (s: string): PlainSecret | { error: string } =>
    /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? { env: s } : { error: 'expected a variable name like MAIL_PASSWORD' };
  const file = (s: string): PlainSecret | { error: string } =>
    !s ? { error: 'must not be empty' } : { file: /^[~$]/.test(s) ? s : path.resolve(s) }; // the schema expands ~ and $VARS
  if (flags.passwordEnv)
    return step(undefined, { flag: '--password-env', given: flags.passwordEnv, prompt: '', parse: envName });
  if (flags.passwordCommand) return { command: flags.passwordCommand };
  if (flags.passwordFile)
    return step(undefined, { flag: '--password-file', given: flags.passwordFile, prompt: '', parse: file });
  if (!ask) return { env: envDefault };
  ask.say(
    [
      '',
      `Where should localpost get your ${preset.title} password?`,
      ...commentLines(preset.password, '  '),
      '  1) an environment variable',
      '  2) a command that prints it (pass, secret-tool, `security find-generic-password -w`, gpg ...)',
      '  3) a file (mode 0600)',
      '  4) type it now: it is stored in the config file (mode 0600)',
    ].join('\n'),
  );
  const choice = await step(ask, {
    flag: '',
    given: undefined,
    prompt: 'Choice',
    def: '1',
    parse: oneOf(['1', '2', '3', '4'] as const),
  });
  if (choice === '1')
    return step(ask, { flag: '', given: undefined, prompt: 'Variable name', def: envDefault, parse: envName });
  if (choice === '2')
    return step<PlainSecret>(ask, {
      flag: '',
      given: undefined,
      prompt: 'Command',
      parse: (s) => (s ? { command: s } : { error: 'must not be empty' }),
    });
  if (choice === '3') return step(ask, { flag: '', given: undefined, prompt: 'File', parse: file });
  for (;;) {
    const pw = await ask.hidden('Password (not shown)');
    if (pw) return pw;
  }
}

/** OAuth 2.0 or a password: `--auth` (or a question) where the preset offers both. */
async function credential(
  ask: Asker | undefined,
  flags: InitFlags,
  id: string,
  email: string,
  preset: ProviderPreset,
): Promise<InitSecret> {
  const o = preset.oauth;
  const oauthFlags = [
    flags.clientId !== undefined && '--client-id',
    flags.clientSecret !== undefined && '--client-secret',
    flags.tenant !== undefined && '--tenant',
  ].filter((f): f is string => Boolean(f));
  const auth = flags.auth === undefined ? undefined : oneOf(['app-password', 'oauth'] as const)(flags.auth.trim());
  if (isError(auth)) throw new InitError(`--auth: ${auth.error}`);
  if (!o && (auth === 'oauth' || oauthFlags.length)) {
    throw new InitError(
      `${auth === 'oauth' ? '--auth oauth' : oauthFlags[0]}: ${preset.title} has no OAuth preset (gmail, outlook and microsoft365 have)`,
    );
  }
  if (o?.only && auth === 'app-password') throw new InitError(`--auth: ${preset.title} accepts only OAuth 2.0`);
  const method = !o
    ? 'app-password'
    : o.only
      ? 'oauth'
      : await step(ask, {
          flag: '--auth',
          given: flags.auth,
          prompt: 'Sign in with an app password or OAuth 2.0 (app-password, oauth)',
          def: oauthFlags.length ? 'oauth' : 'app-password',
          parse: oneOf(['app-password', 'oauth'] as const),
        });
  if (!o || method === 'app-password') {
    if (oauthFlags.length) throw new InitError(`${oauthFlags[0]}: only with --auth oauth`);
    return passwordSource(ask, flags, id, preset);
  }
  if (flags.passwordEnv || flags.passwordCommand || flags.passwordFile) {
    throw new InitError(
      '--password-env, --password-command and --password-file are for passwords; OAuth 2.0 needs none',
    );
  }
  const google = o.provider === 'google';
  if (google && flags.tenant !== undefined) throw new InitError('--tenant: only for Microsoft');
  if (!google && flags.clientSecret !== undefined) throw new InitError(`--client-secret: ${preset.title} needs none`);
  if (ask) {
    ask.say(
      [
        '',
        ...commentLines(
          `OAuth 2.0 needs the client id of an app registered with ${google ? 'Google Cloud' : 'Microsoft Entra'} ` +
            '(README, "Signing in with OAuth 2.0", says how).',
          '',
        ),
      ].join('\n'),
    );
  }
  const clientId = await step(ask, {
    flag: '--client-id',
    given: flags.clientId,
    prompt: 'OAuth client id',
    parse: nonEmpty,
  });
  const clientSecret = google
    ? await step(ask, {
        flag: '--client-secret',
        given: flags.clientSecret,
        prompt: 'OAuth client secret',
        parse: nonEmpty,
      })
    : undefined;
  const tenant = o.tenant
    ? await step(preset.name === 'microsoft365' ? ask : undefined, {
        flag: '--tenant',
        given: flags.tenant,
        prompt: "Directory (tenant): your organisation's domain or tenant id",
        def: o.tenant(email),
        parse: nonEmpty,
      })
    : undefined;
  return { oauth2: { provider: o.provider, clientId, clientSecret, tenant } };
}

/** Collects the answers from flags and, when `ask` is given, the terminal. Returns the local password in clear too. */
export async function collectAnswers(
  flags: InitFlags,
  ask?: Asker,
): Promise<{ answers: InitAnswers; localPassword: string; generated: boolean }> {
  const email = await step(ask, {
    flag: '--email',
    given: flags.email,
    prompt: 'Email address',
    parse: (s) => (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s) ? s : { error: 'expected an address like me@example.com' }),
  });
  const names = PROVIDERS.map((p) => p.name).join(', ');
  const preset = await step(ask, {
    flag: '--provider',
    given: flags.provider,
    prompt: `Provider (${names})`,
    def: providerForEmail(email)?.name ?? 'generic',
    parse: (s) => findProvider(s) ?? { error: `unknown provider; known: ${names}` },
  });
  if (ask) {
    ask.say(
      `${[
        '',
        `${preset.title}:`,
        ...commentLines(preset.password, '  '),
        ...preset.notes.flatMap((n) => commentLines(n, '    ').map((l, i) => (i === 0 ? `  - ${l.trimStart()}` : l))),
      ].join('\n')}\n`,
    );
  }
  const servers = preset.servers(email);
  const generic = preset.name === 'generic';
  const protocol = await step(ask, {
    flag: '--protocol',
    given: flags.protocol,
    prompt: 'Incoming protocol, imap or pop3',
    def: preset.protocol,
    parse: (s) => {
      const p = oneOf(['imap', 'pop3'] as const)(s);
      return !isError(p) && !servers[p] ? { error: `${preset.title} offers no ${p.toUpperCase()}` } : p;
    },
  });
  const incoming = await server(ask, protocol, servers[protocol], generic, {
    host: flags.host,
    port: flags.port,
    tls: flags.tls,
    flag: '',
  });
  let recent = flags.gmailRecent ?? false;
  if (preset.name === 'gmail' && protocol === 'pop3' && flags.gmailRecent === undefined && ask) {
    recent = await step(ask, {
      flag: '',
      given: undefined,
      prompt: 'Use Gmail\'s "recent:" POP mode (the last 30 days, whatever other clients downloaded)? y/n',
      def: 'n',
      parse: (s) => (/^y(es)?$/i.test(s) ? true : /^no?$/i.test(s) ? false : { error: 'answer y or n' }),
    });
  }
  if (recent && (preset.name !== 'gmail' || protocol !== 'pop3'))
    throw new InitError('--gmail-recent: only for Gmail over POP3');
  const address = preset.incomingUser === 'local-part' ? email.slice(0, email.lastIndexOf('@')) : email;
  const username = await step(ask, {
    flag: '--username',
    given: flags.username,
    prompt: `Login name at ${incoming.host}`,
    def: recent ? `recent:${email}` : address,
    parse: nonEmpty,
  });
  let outgoing: InitAnswers['outgoing'];
  if (flags.smtp !== false) {
    const smtpHostAsked =
      generic && ask && flags.smtpHost === undefined
        ? (await ask.text('Outgoing (SMTP) server, or "none" to only receive', servers.smtp?.host)).trim()
        : undefined;
    if (smtpHostAsked !== 'none') {
      const smtp = await server(ask, 'smtp', servers.smtp, generic, {
        host: flags.smtpHost ?? (smtpHostAsked || undefined),
        port: flags.smtpPort,
        tls: flags.smtpTls,
        flag: 'smtp-',
      });
      outgoing = { ...smtp, username: generic ? username : email };
    }
  }
  const id = await step(undefined, {
    flag: '--id',
    given: flags.id,
    prompt: '',
    def: defaultId(preset, email),
    parse: (s) => (/^[a-z0-9][a-z0-9_-]*$/.test(s) ? s : { error: 'expected lower-case letters, digits, _ and -' }),
  });
  const password = await credential(ask, flags, id, email, preset);
  if (ask) ask.say('\nYour mail client logs in to localpost with a name and password of its own.');
  const localUsername = await step(ask, {
    flag: '--local-user',
    given: flags.localUser,
    prompt: 'Local user name',
    def: id,
    parse: nonEmpty,
  });
  let localPassword =
    flags.localPassword ?? (ask ? await ask.hidden('Local password (Enter: generate one; not shown)') : '');
  const generated = !localPassword;
  if (generated) localPassword = generatePassword();
  const answers: InitAnswers = {
    preset,
    email,
    id,
    protocol,
    incoming: { ...incoming, username },
    outgoing,
    password,
    localUsername,
    localPasswordHash: await hashPassword(localPassword),
    dataDir: flags.dataDir,
  };
  return { answers, localPassword, generated };
}

/** Questions on a terminal through node:readline/promises; input is hidden while `hidden()` reads. */
export function terminalAsker(io: InitIo): Asker {
  const ac = new AbortController();
  let muted = false;
  const out = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) io.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: io.stdin, output: out, terminal: true });
  rl.on('SIGINT', () => rl.close());
  rl.on('close', () => ac.abort());
  return {
    text: async (prompt, def) =>
      (await rl.question(`${prompt}${def ? ` [${def}]` : ''}: `, { signal: ac.signal })).trim() || def || '',
    hidden: async (prompt) => {
      io.stdout.write(`${prompt}: `);
      muted = true;
      try {
        return await rl.question('', { signal: ac.signal });
      } finally {
        muted = false;
        io.stdout.write('\n');
      }
    },
    say: (text) => {
      io.stdout.write(`${text}\n`);
    },
    close: () => rl.close(),
  };
}

/** What to do next, printed after the file is written. */
function nextSteps(a: InitAnswers, file: string, localPassword: string, generated: boolean): string {
  const cfg = file === configPath() ? '' : ` --config ${file}`;
  const lines = [
    `Wrote ${file} (mode 0600): ${a.preset.title} over ${a.protocol.toUpperCase()} (${a.incoming.host}:${a.incoming.port})` +
      (a.outgoing ? `, sending through ${a.outgoing.host}:${a.outgoing.port}.` : ', receive only.'),
    '',
    'Your mail client logs in to localhost with',
    `  user name  ${a.localUsername}`,
    `  password   ${generated ? `${localPassword}   (generated: the file keeps only a hash, so note it now)` : '(the one you chose)'}`,
  ];
  const pw = a.password;
  if (typeof pw === 'object' && 'env' in pw) {
    lines.push(
      '',
      `localpost reads your ${a.preset.title} password from $${pw.env}:`,
      `  in a shell:       export ${pw.env}='...'`,
      `  for the service:  a line ${pw.env}=... in ~/.config/localpost/environment (\`service install --user\`)`,
      `                    or /etc/localpost/environment (system service); mode 0600`,
    );
  }
  const oauth2 = oauth2Of(pw);
  if (oauth2) {
    lines.push(
      '',
      `Sign in to ${a.preset.title} once (${
        oauth2.provider === 'google'
          ? 'it opens a browser on this machine'
          : 'it prints a code to enter at microsoft.com/devicelogin'
      }):`,
      `  localpost${cfg} auth ${a.id}`,
    );
  }
  lines.push(
    '',
    'Then:',
    `  localpost${cfg} check           try the login at ${a.incoming.host}`,
    `  localpost${cfg} client-setup    what to type into your mail client`,
    file.startsWith('/etc/')
      ? `  sudo localpost${cfg} service install   run it as a system service`
      : `  localpost${cfg} start           run it in this terminal, or \`localpost service install --user\``,
  );
  return `${lines.join('\n')}\n`;
}

/** Runs `localpost init`; resolves with the exit code. */
export async function runInit(flags: InitFlags, io: InitIo): Promise<number> {
  const interactive = flags.interactive !== false && Boolean(io.stdin.isTTY) && Boolean(io.stdout.isTTY);
  const ask = interactive ? terminalAsker(io) : undefined;
  try {
    if (ask) ask.say(`localpost init: writes ${io.configFile}. Enter accepts the [default].\n`);
    const { answers, localPassword, generated } = await collectAnswers(flags, ask);
    ask?.close();
    const text = renderConfig(answers);
    try {
      parseConfigText(text, io.configFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw new InitError(
        [`the config would be invalid: ${err.message}`, ...err.problems.map((p) => `  ${p}`)].join('\n'),
      );
    }
    await writeNewConfig(io.configFile, text);
    io.stdout.write(nextSteps(answers, io.configFile, localPassword, generated));
    return 0;
  } catch (err) {
    if (err instanceof InitError || err instanceof ConfigExistsError) {
      io.stderr.write(`localpost init: ${err.message}\n`);
      return 1;
    }
    if ((err as Error).name === 'AbortError') {
      io.stderr.write('\nlocalpost init: cancelled; nothing was written\n');
      return 1;
    }
    throw err;
  } finally {
    ask?.close();
  }
}

/** The help text listing flags by purpose (appended to commander's). */
export const INIT_HELP = `
Without flags on a terminal, init asks. With --non-interactive (or no terminal), flags answer
and defaults fill the rest; --email is required, and --host with --provider generic.

Examples:
  localpost init --provider gmail --email me@gmail.com --password-env GMAIL_PW
  localpost init --email me@fastmail.com --password-command "pass show mail/fastmail"
  localpost init --email me@outlook.com --client-id 00000000-aaaa-bbbb-cccc-000000000000
  localpost init --provider gmail --email me@gmail.com --auth oauth --client-id ID --client-secret SECRET
  localpost init --provider generic --email me@example.org --host mail.example.org \\
      --protocol pop3 --smtp-host mail.example.org --password-file ~/.mailpw --local-password s3cret

Providers: ${PROVIDERS.map((p) => p.name).join(', ')}.
The config path is --config, else $LOCALPOST_CONFIG, else ~/.config/localpost/config.yaml.
An existing file is never replaced. The upstream password is referenced (--password-env,
--password-command, --password-file; default: $LOCALPOST_<ID>_PASSWORD), never taken from a flag.
OAuth 2.0 (Microsoft always, Gmail with --auth oauth) needs --client-id (Google: --client-secret
too; Microsoft 365: --tenant, default the address's domain); then run \`localpost auth ID\` once.
`;
