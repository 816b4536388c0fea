/**
 * The one configuration schema: types, defaults, validation and the text of
 * every key's documentation live here and nowhere else. `load.ts` parses YAML into it,
 * `example.ts` renders `config/localpost.example.yaml` from its descriptions and defaults, and
 * the README reference is generated from the same `.describe()` texts.
 *
 * Invariants:
 * - every object is strict, so a misspelt key is an error rather than a silently ignored line;
 * - parsing yields the fully defaulted form: durations are milliseconds, sizes are bytes
 *   (1 KB = 1024 bytes), paths have `~` and `$VARS` expanded, ports are filled in from
 *   protocol and TLS mode, and `login.username` defaults to the account id;
 * - secrets stay unresolved (`Secret`); `secrets.ts` resolves them when they are needed;
 * - cross-field checks run even when other fields are invalid, so one run reports every error.
 * The key names and defaults are a user contract (configs in use depend on them): add keys, never rename them.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { isAbsolute } from 'node:path';
import cron from 'node-cron';
import { z } from 'zod';

/** Extra metadata the example renderer reads: a sample value, and whether a default is computed. */
export interface FieldMeta {
  /** A value shown in the example file for keys that have no static default. */
  example?: unknown;
  /** The default is computed from other keys (shown in the example, not a static default). */
  derived?: boolean;
  /** true: optional, but one of a required choice, written uncommented in the example; false on an
   * optional object: the whole block is written commented out. */
  active?: boolean;
}

/** An error message for a wrong type; a missing key is reported as "required". */
const expect = (message: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message),
});

/** Run a cross-field check even when other parts of the value already failed (code defensively). */
const always = { when: () => true };

// ---------------------------------------------------------------------------------------------
// Units: durations, sizes, paths

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses `500ms`, `10s`, `5m`, `1h`, `5d` (or the number 0) into milliseconds; undefined if malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return value === 0 ? 0 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!);
}

/** Parses `512KB`, `50MB`, `1GB` (1 KB = 1024 bytes) or a plain number of bytes; undefined if malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!);
}

/**
 * Expands a leading `~` and `$NAME` / `${NAME}` from `env`. Throws an Error naming the first
 * variable that is not set.
 */
export function expandPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = path.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, a, b) => {
    const name = (a ?? b) as string;
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`environment variable $${name} is not set`);
    return value;
  });
  if (out === '~' || out.startsWith('~/')) out = (env.HOME || homedir()) + out.slice(1);
  return out;
}

/** The default data directory: `$XDG_DATA_HOME/localpost`, else `~/.local/share/localpost`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return xdg && isAbsolute(xdg) ? `${xdg}/localpost` : '~/.local/share/localpost';
}

const duration = z
  .union([z.string(), z.number()], expect('expected a duration like 500ms, 10s, 5m, 1h or 5d'))
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms !== undefined) return ms;
    ctx.issues.push({ code: 'custom', input: v, message: 'expected a duration like 500ms, 10s, 5m, 1h or 5d' });
    return z.NEVER;
  });

const size = z
  .union([z.string(), z.number()], expect('expected a size like 512KB, 50MB or 1GB'))
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes !== undefined) return bytes;
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: 'expected a size like 512KB, 50MB, 1GB or a number of bytes',
    });
    return z.NEVER;
  });

const path = z
  .string(expect('expected a path'))
  .min(1, 'must not be empty')
  .transform((v, ctx) => {
    try {
      const expanded = expandPath(v);
      if (isAbsolute(expanded)) return expanded;
      ctx.issues.push({
        code: 'custom',
        input: v,
        message: 'expected an absolute path (or one starting with ~ or $VAR)',
      });
      return z.NEVER;
    } catch (err) {
      ctx.issues.push({ code: 'custom', input: v, message: (err as Error).message });
      return z.NEVER;
    }
  });

// ---------------------------------------------------------------------------------------------
// Building blocks

const port = z.number(expect('expected a number')).int('expected a whole number').min(1).max(65535);
const host = z.string(expect('expected a host name')).min(1, 'must not be empty');
const tls = z.enum(['implicit', 'starttls', 'none']);

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
export function isLoopbackHost(h: string): boolean {
  if (h === 'localhost') return true;
  if (isIPv4(h)) return loopback.check(h, 'ipv4');
  if (isIPv6(h)) return loopback.check(h, 'ipv6');
  return false;
}

const listenerShape = (defaultPort: number, what: string) => ({
  port: z
    .number(expect('expected a number'))
    .int('expected a whole number')
    .min(0)
    .max(65535)
    .default(defaultPort)
    .describe(`TCP port of the local ${what} listener (0 picks a free port).`),
  hosts: z
    .array(host)
    .min(1, 'needs at least one address')
    .default(['127.0.0.1', '::1'])
    .describe('Addresses to listen on. Both loopback families, since `localhost` resolves to either.'),
  allowRemote: z
    .boolean(expect('expected true or false'))
    .optional()
    .meta({ example: false })
    .describe('Set to true to allow a host that is not loopback; other machines could then reach your mail.'),
  maxConnections: z
    .number(expect('expected a number'))
    .int('expected a whole number')
    .min(1)
    .max(10_000)
    .default(50)
    .describe(`Most ${what} connections open at once; more are refused with a temporary error until one closes.`),
});

/** Refuses a host that is not loopback unless `allowRemote: true` is beside it. */
function refuseRemote(l: { hosts?: unknown; allowRemote?: unknown }, ctx: z.RefinementCtx): void {
  if (!l || typeof l !== 'object' || l.allowRemote === true || !Array.isArray(l.hosts)) return;
  l.hosts.forEach((h: unknown, i: number) => {
    if (typeof h === 'string' && !isLoopbackHost(h)) {
      ctx.addIssue({
        code: 'custom',
        path: ['hosts', i],
        message: `${h} is not a loopback address; set allowRemote: true beside hosts to listen on it`,
      });
    }
  });
}

/** The local POP3 listener's own keys: TLS (a legacy profile for old Outlooks) and the legacy-client repairs. */
const pop3Extra = {
  tls: z
    .strictObject({
      cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
      key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
      port: z
        .number(expect('expected a number'))
        .int('expected a whole number')
        .min(0)
        .max(65535)
        .default(1995)
        .describe(
          'Port of the implicit-TLS listener (what Outlook Express calls SSL); STLS is offered on the plain port.',
        ),
      legacy: z
        .boolean(expect('expected true or false'))
        .default(false)
        .describe('Also accept TLS 1.0/1.1 and weak ciphers, for Outlook Express; only on a trusted network.'),
    })
    .optional()
    .meta({ active: false })
    .describe('Offer STLS and an implicit-TLS port with this certificate. Without it the listener is plaintext only.'),
  workarounds: z
    .array(z.enum(['outlook-no-nuls', 'oe-ns-eoh']))
    .default(['outlook-no-nuls', 'oe-ns-eoh'])
    .describe(
      'Repairs for old clients: outlook-no-nuls sends NUL bytes as 0x80; oe-ns-eoh adds a missing empty line after the header.',
    ),
};

/** The local SMTP listener's own keys: STARTTLS with the user's certificate (never a built-in one). */
const smtpExtra = {
  tls: z
    .strictObject({
      cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
      key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
    })
    .optional()
    .meta({ active: false })
    .describe(
      'Offer STARTTLS with this certificate. Without it the listener is plaintext only (AUTH is still allowed on loopback).',
    ),
};

/** A credential in the config: a literal, or where to get it. */
const plainSecret = z.union(
  [
    z.string().min(1, 'must not be empty'),
    z.strictObject({ env: z.string().min(1).describe('Name of an environment variable.') }),
    z.strictObject({ file: path.describe('A file holding the secret (one trailing newline is ignored).') }),
    z.strictObject({ command: z.string().min(1).describe('A shell command printing the secret on its first line.') }),
  ],
  expect('expected a string, or one of { env: NAME }, { file: PATH }, { command: "..." }'),
);

/** The endpoints and scopes of the built-in OAuth providers (`{tenant}` is replaced). */
export const OAUTH2_PROVIDERS = {
  google: {
    authUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    deviceUrl: 'https://oauth2.googleapis.com/device/code',
    scopes: ['https://mail.google.com/'],
  },
  microsoft: {
    authUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize',
    tokenUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token',
    deviceUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode',
    scopes: [
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'https://outlook.office.com/POP.AccessAsUser.All',
      'https://outlook.office.com/SMTP.Send',
      'offline_access',
    ],
  },
} as const;

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/**
 * `{ oauth2: {...} }`: sign in with OAuth 2.0 instead of a password. Parsed into the provider's
 * endpoints and scopes, so everything after the parse sees complete settings.
 */
const oauth2 = z
  .strictObject({
    provider: z
      .enum(['google', 'microsoft', 'custom'])
      .meta({ example: 'microsoft' })
      .describe('google | microsoft | custom (give tokenUrl and authUrl or deviceUrl).'),
    clientId: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .meta({ example: '9e5f94bc-e8a4-4e73-b8be-63364c29d753' })
      .describe(
        'The OAuth client (application) id registered with the provider; see the README, "Signing in with OAuth 2.0".',
      ),
    clientSecret: plainSecret
      .optional()
      .meta({ example: { env: 'GOOGLE_CLIENT_SECRET' } })
      .describe(
        'The client secret, if the provider issued one (Google desktop clients do): a string, { env }, { file } or { command }.',
      ),
    tenant: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .optional()
      .meta({ example: 'common', derived: true })
      .describe('microsoft: the directory (tenant) id or domain; default common (work, school and personal accounts).'),
    scopes: z
      .array(z.string().min(1, 'must not be empty'))
      .min(1, 'needs at least one scope')
      .optional()
      .meta({ example: ['https://mail.google.com/'], derived: true })
      .describe(
        'Scopes to request. Default: google https://mail.google.com/; microsoft IMAP, POP, SMTP.Send and offline_access on outlook.office.com.',
      ),
    authUrl: httpUrl
      .optional()
      .meta({ example: 'https://auth.example.com/authorize', derived: true })
      .describe('Authorization endpoint (for `localpost auth --browser`). Default from provider.'),
    tokenUrl: httpUrl
      .optional()
      .meta({ example: 'https://auth.example.com/token', derived: true })
      .describe('Token endpoint. Default from provider; required for custom.'),
    deviceUrl: httpUrl
      .optional()
      .meta({ example: 'https://auth.example.com/device', derived: true })
      .describe(
        'Device authorization endpoint (RFC 8628, for `localpost auth` on a machine without a browser). Default from provider.',
      ),
  })
  .superRefine((o, ctx) => {
    if (!o || typeof o !== 'object' || o.provider !== 'custom') return;
    if (o.tokenUrl === undefined)
      ctx.addIssue({ code: 'custom', path: ['tokenUrl'], message: 'required for provider custom' });
    if (o.authUrl === undefined && o.deviceUrl === undefined) {
      ctx.addIssue({ code: 'custom', path: ['authUrl'], message: 'provider custom needs authUrl or deviceUrl' });
    }
  }, always)
  .transform(({ provider, clientId, clientSecret, tenant, scopes, authUrl, tokenUrl, deviceUrl }) => {
    const base = provider === 'custom' ? undefined : OAUTH2_PROVIDERS[provider];
    const t = (url: string | undefined) => url?.replace('{tenant}', encodeURIComponent(tenant ?? 'common'));
    return {
      provider,
      clientId,
      clientSecret,
      tenant,
      scopes: scopes ?? [...(base?.scopes ?? [])],
      authUrl: authUrl ?? t(base?.authUrl),
      tokenUrl: (tokenUrl ?? t(base?.tokenUrl))!,
      deviceUrl: deviceUrl ?? t(base?.deviceUrl),
    };
  });

/** An upstream credential: a password from one of the sources above, or OAuth 2.0. */
const secret = z.union(
  [
    plainSecret,
    z.strictObject({ oauth2: oauth2.describe('Sign in with OAuth 2.0 (run `localpost auth ACCOUNT` once).') }),
  ],
  expect('expected a string, or one of { env: NAME }, { file: PATH }, { command: "..." }, { oauth2: {...} }'),
);

const cronExpression = z.string(expect('expected a cron expression')).refine((v) => cron.validate(v), {
  message: 'not a valid cron expression (five fields, e.g. "*/5 * * * *"; a sixth leading field is seconds)',
});

// ---------------------------------------------------------------------------------------------
// Accounts

const defaultIncomingPort = (protocol: 'pop3' | 'imap', mode: 'implicit' | 'starttls' | 'none') =>
  protocol === 'pop3' ? (mode === 'implicit' ? 995 : 110) : mode === 'implicit' ? 993 : 143;

const incoming = z
  .strictObject({
    protocol: z.enum(['pop3', 'imap']).meta({ example: 'pop3' }).describe('Upstream protocol: pop3 | imap.'),
    host: host.meta({ example: 'pop.example.com' }).describe('Upstream server host name.'),
    port: port
      .optional()
      .meta({ example: 995, derived: true })
      .describe(
        'Upstream port. Default from protocol and tls: pop3 995 (implicit) or 110; imap 993 (implicit) or 143.',
      ),
    tls: tls
      .default('implicit')
      .describe('implicit (TLS from the first byte) | starttls (upgrade after connecting) | none.'),
    tlsCa: path
      .optional()
      .meta({ example: '/path/ca.pem' })
      .describe('An extra CA certificate (PEM) to trust, for servers with a self-signed certificate.'),
    username: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .meta({ example: 'me@example.com' })
      .describe('Upstream login name.'),
    password: secret
      .meta({ example: { env: 'HOME_MAIL_PASSWORD' } })
      .describe(
        'Upstream password: a string, or { env: NAME }, { file: PATH }, { command: "..." }; or { oauth2: { provider, clientId, ... } } (README: "Signing in with OAuth 2.0").',
      ),
    schedule: cronExpression.default('*/5 * * * *').describe('When to pull: a cron expression (node-cron).'),
    syncOnLogin: duration
      .prefault('10s')
      .describe('A local POP3 login waits up to this long for a fresh pull (0s: never).'),
    keepOnServer: z
      .boolean(expect('expected true or false'))
      .default(true)
      .describe('pop3: false deletes upstream copies, only after the local copy is durable.'),
    onLocalDelete: z
      .enum(['keep-upstream', 'delete-upstream'])
      .default('keep-upstream')
      .describe('What a local delete does upstream: keep-upstream | delete-upstream.'),
    folders: z
      .array(z.string().min(1, 'must not be empty'))
      .min(1, 'needs at least one folder')
      .default(['INBOX'])
      .describe('imap: which folders to cache.'),
    idle: z.boolean(expect('expected true or false')).default(true).describe('imap: push new INBOX mail with IDLE.'),
    maxMessageSize: size
      .prefault('50MB')
      .describe('Larger messages are skipped and reported. Sizes: 512KB, 50MB, 1GB or bytes; 1 KB = 1024 bytes.'),
  })
  .transform(({ protocol, host, port, ...v }) => ({
    protocol,
    host,
    port: port ?? defaultIncomingPort(protocol, v.tls),
    ...v,
  }));

const outgoing = z
  .strictObject({
    host: host.meta({ example: 'smtp.example.com' }).describe('Upstream SMTP server host name.'),
    port: port
      .optional()
      .meta({ example: 587, derived: true })
      .describe('Upstream port. Default from tls: 465 (implicit) or 587.'),
    tls: tls.default('starttls').describe('implicit | starttls | none.'),
    tlsCa: path.optional().meta({ example: '/path/ca.pem' }).describe('An extra CA certificate (PEM) to trust.'),
    username: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .meta({ example: 'me@example.com' })
      .describe('Upstream login name.'),
    password: secret
      .meta({ example: { env: 'HOME_MAIL_PASSWORD' } })
      .describe(
        'Upstream password: a string, or { env: NAME }, { file: PATH }, { command: "..." }; or { oauth2: { provider, clientId, ... } } (README: "Signing in with OAuth 2.0").',
      ),
    maxMessageSize: size
      .prefault('25MB')
      .describe(
        "Largest message the local SMTP listener accepts for this account (advertised as SIZE); match the provider's limit.",
      ),
    saveSent: z
      .string(expect('expected a folder name'))
      .min(1, 'must not be empty')
      .optional()
      .meta({ example: 'Sent' })
      .describe(
        'After sending, append a copy to this folder of the incoming IMAP server. Leave unset for providers that keep sent mail themselves (Gmail, Microsoft 365).',
      ),
  })
  .transform(({ host, port, ...v }) => ({ host, port: port ?? (v.tls === 'implicit' ? 465 : 587), ...v }));

const login = z
  .strictObject({
    username: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .optional()
      .meta({ example: 'home', derived: true })
      .describe('The user name the local mail client types. Default: the account id.'),
    password: z
      .string(expect('expected a string'))
      .min(1, 'must not be empty')
      .optional()
      .meta({ example: 'a local password', active: true })
      .describe('The local password (give this or passwordHash, not both).'),
    passwordHash: z
      .string(expect('expected a string'))
      .regex(/^scrypt\$/, 'expected a hash starting with "scrypt$"')
      .optional()
      .meta({ example: 'scrypt$...' })
      .describe(
        'A hash of the local password, as printed by `localpost hash-password` (or written by `localpost init`).',
      ),
  })
  .superRefine((l, ctx) => {
    if (!l || typeof l !== 'object') return;
    if (l.password !== undefined && l.passwordHash !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['passwordHash'], message: 'give password or passwordHash, not both' });
    } else if (l.password === undefined && l.passwordHash === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs password or passwordHash' });
    }
  }, always);

const account = z
  .strictObject({
    id: z
      .string(expect('expected a string'))
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected lower-case letters, digits, _ and - (starting with a letter or digit)')
      .meta({ example: 'home' })
      .describe('Names the account and its folder: [a-z0-9][a-z0-9_-]*, unique.'),
    email: z
      .email(expect('expected an email address'))
      .meta({ example: 'me@example.com' })
      .describe('The address this account sends as.'),
    login: login.describe('What the local mail client types to reach this account.'),
    incoming: incoming.describe('The upstream server mail is pulled from.'),
    outgoing: outgoing.optional().describe('The upstream server mail is sent through (omit for receive-only).'),
  })
  .superRefine((a, ctx) => {
    // one authorisation per account: both servers must use the same OAuth client
    const inc = a?.incoming?.password,
      out = a?.outgoing?.password;
    if (
      inc &&
      out &&
      typeof inc === 'object' &&
      typeof out === 'object' &&
      'oauth2' in inc &&
      'oauth2' in out &&
      (inc.oauth2.clientId !== out.oauth2.clientId || inc.oauth2.tokenUrl !== out.oauth2.tokenUrl)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['outgoing', 'password', 'oauth2'],
        message: 'must use the same provider and clientId as incoming.password.oauth2 (one sign-in per account)',
      });
    }
    if (a?.outgoing?.saveSent !== undefined && a.incoming && a.incoming.protocol !== 'imap') {
      ctx.addIssue({
        code: 'custom',
        path: ['outgoing', 'saveSent'],
        message: 'needs an IMAP incoming server (incoming.protocol: imap)',
      });
    }
  })
  .transform(({ id, email, login: { username, ...login }, ...a }) => ({
    id,
    email,
    login: { username: username ?? id, ...login },
    ...a,
  }));

/** Reports duplicate account ids and duplicate effective local user names. */
function uniqueAccounts(list: unknown[], ctx: z.RefinementCtx): void {
  if (!Array.isArray(list)) return;
  const ids = new Map<string, number>();
  const users = new Map<string, number>();
  list.forEach((raw, i) => {
    if (!raw || typeof raw !== 'object') return;
    const a = raw as { id?: unknown; login?: { username?: unknown } };
    let duplicateId = false;
    if (typeof a.id === 'string') {
      const first = ids.get(a.id);
      duplicateId = first !== undefined;
      if (first === undefined) ids.set(a.id, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'id'],
          message: `duplicate account id "${a.id}" (also accounts[${first}])`,
        });
    }
    const user = typeof a.login?.username === 'string' ? a.login.username : a.id;
    if (typeof user !== 'string') return;
    const first = users.get(user);
    if (first === undefined) users.set(user, i);
    else if (!(duplicateId && user === a.id)) {
      ctx.addIssue({
        code: 'custom',
        path: [i, 'login', 'username'],
        message: `local user name "${user}" is already used by accounts[${first}]`,
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The whole file

/** The schema of `config.yaml`: parse with `configSchema.safeParse(yamlValue)`. */
export const configSchema = z
  .strictObject({
    dataDir: path
      .prefault(() => defaultDataDir())
      .meta({ example: '~/.local/share/localpost' })
      .describe('Where all cached mail and state live. Default: $XDG_DATA_HOME/localpost or ~/.local/share/localpost.'),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error'])
          .default('info')
          .describe('trace | debug | info | warn | error. Protocol transcripts (credentials masked) appear at trace.'),
      })
      .prefault({})
      .describe('Logging: JSON lines on stdout.'),
    listen: z
      .strictObject({
        pop3: z
          .strictObject({ ...listenerShape(1110, 'POP3'), ...pop3Extra })
          .superRefine(refuseRemote, always)
          .prefault({})
          .describe('The local POP3 listener your mail client reads from.'),
        smtp: z
          .strictObject({ ...listenerShape(1025, 'SMTP'), ...smtpExtra })
          .superRefine(refuseRemote, always)
          .prefault({})
          .describe('The local SMTP listener your mail client sends through.'),
      })
      .prefault({})
      .describe('Local listeners. A host that is not loopback is refused unless allowRemote: true is set beside it.'),
    outbox: z
      .strictObject({
        maxAge: duration
          .prefault('5d')
          .describe("Give up on a message after this long and put a bounce in the sender's local inbox."),
        retry: z
          .strictObject({
            initial: duration.prefault('1m').describe('First retry delay.'),
            max: duration.prefault('1h').describe('Longest retry delay.'),
          })
          .superRefine((r, ctx) => {
            if (typeof r.initial === 'number' && typeof r.max === 'number' && r.initial > r.max) {
              ctx.addIssue({ code: 'custom', path: ['initial'], message: 'must not be longer than retry.max' });
            }
          })
          .prefault({})
          .describe('Exponential backoff with jitter between these delays.'),
      })
      .prefault({})
      .describe('Outgoing mail waiting for its upstream server.'),
    connectivity: z
      .strictObject({
        probeInterval: duration
          .prefault('30s')
          .describe(
            'How often each upstream server is checked with a TCP connect; when one comes back, the outbox is flushed and every account pulled.',
          ),
        probeTimeout: duration.prefault('5s').describe('How long a check waits for the connection.'),
      })
      .prefault({})
      .describe('Knowing when the upstream servers are reachable.'),
    accounts: z
      .array(account, expect('expected a list of accounts'))
      .min(1, 'needs at least one account')
      .superRefine(uniqueAccounts, always)
      .describe('The mail accounts localpost proxies.'),
  })
  .describe('localpost configuration.');

/** The validated, fully defaulted configuration. */
export type Config = z.output<typeof configSchema>;
/** The configuration as written in YAML (before defaults and unit conversion). */
export type ConfigInput = z.input<typeof configSchema>;
/** One entry of `accounts`. */
export type AccountConfig = Config['accounts'][number];
/** An account's upstream for pulling mail. */
export type IncomingConfig = AccountConfig['incoming'];
/** An account's upstream SMTP server. */
export type OutgoingConfig = NonNullable<AccountConfig['outgoing']>;
/** An unresolved credential: a literal string, `{env}`, `{file}` (path already expanded), `{command}` or `{oauth2}`. */
export type Secret = z.output<typeof secret>;
/** A credential that is not OAuth (a client secret, a password). */
export type PlainSecret = z.output<typeof plainSecret>;
/** OAuth 2.0 settings with the provider's defaults filled in. */
export type OAuth2Settings = z.output<typeof oauth2>;

/** The OAuth settings of a credential, if it is one. */
export function oauth2Of(s: Secret | undefined): OAuth2Settings | undefined {
  return s && typeof s === 'object' && 'oauth2' in s ? s.oauth2 : undefined;
}

/** The OAuth settings an account signs in with (incoming first), if any. */
export function accountOAuth2(acc: {
  incoming: { password: Secret };
  outgoing?: { password: Secret };
}): OAuth2Settings | undefined {
  return oauth2Of(acc.incoming.password) ?? oauth2Of(acc.outgoing?.password);
}
