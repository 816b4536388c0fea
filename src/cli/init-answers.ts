/**
 * What `localpost init` asks, in order: address and provider preset (providers.ts), incoming
 * server, login name, outgoing server, account id, the upstream credential (a password source
 * or OAuth 2.0), and the local user name and password. Every answer comes from a flag or the
 * terminal through the same steps (init-steps.ts); the result is the answers for renderConfig.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { defaultPort, type PlainSecret } from '../config/schema.js';
import { hashPassword } from '../listeners/local-auth.js';
import { TLS_MODES } from '../upstream/types.js';
import { commentLines, type InitAnswers, type InitSecret } from './init-config.js';
import { type Asker, InitError, isError, nonEmpty, oneOf, portNumber, step } from './init-steps.js';
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

/** A local password that is easy to type: no 0/O, 1/l/I. */
function generatePassword(length = 16): string {
  const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/**
 * The default account id: the preset's name, or for `generic` the provider's name in the
 * address (`posteo` for me@posteo.de, `example` for me@mail.example.co.uk): the domain's label
 * before its ending, where an ending of two short labels (`co.uk`, `com.au`) counts as one.
 */
export function defaultId(preset: ProviderPreset, email: string): string {
  if (preset.name !== 'generic') return preset.name;
  const labels = emailDomain(email).split('.').filter(Boolean);
  const twoPartEnding = labels.length >= 3 && (labels.at(-1)?.length ?? 0) === 2 && (labels.at(-2)?.length ?? 9) <= 3;
  const label = (labels.at(twoPartEnding ? -3 : labels.length > 1 ? -2 : -1) ?? '').replace(/[^a-z0-9_-]/g, '');
  return /^[a-z0-9]/.test(label) ? label : 'mail';
}

/** How the upstream password is named in questions and hints: generic has no provider name to show. */
export function passwordName(preset: ProviderPreset, email: string): string {
  return preset.name === 'generic' ? `the password of ${email}` : `your ${preset.title} password`;
}

/** The local password, asked twice (hidden) until both agree; empty: generate one. */
async function localPasswordAsked(ask: Asker): Promise<string> {
  for (;;) {
    const pw = await ask.hidden('Local password (Enter: generate one; not shown)');
    if (!pw) return '';
    if ((await ask.hidden('The same again (not shown)')) === pw) return pw;
    ask.say('  the two passwords differ; once more');
  }
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
  email: string,
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
      `Where should localpost get ${passwordName(preset, email)}?`,
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
    return passwordSource(ask, flags, id, email, preset);
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
  let localPassword = flags.localPassword ?? (ask ? await localPasswordAsked(ask) : '');
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
