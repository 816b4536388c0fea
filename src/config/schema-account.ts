/**
 * The `accounts` part of the configuration schema: one entry per mail account, with its local
 * login, the incoming server it pulls from and the outgoing server it sends through. Ports are
 * filled in from protocol and TLS mode, `login.username` defaults to the account id, and ids and
 * local user names are unique.
 */
import { createRequire } from 'node:module';
import { z } from 'zod';
import { passwordHashProblem } from '../listeners/local-auth.js';
import { always, defaultPort, duration, expect, host, path, port, size, tls } from './schema-fields.js';
import { oauth2Of, secret } from './schema-secret.js';

/**
 * node-cron, loaded the first time a schedule is checked: a config that keeps the default schedule
 * never loads it for `status` or `outbox` (only the daemon runs schedules; docs/benchmarks.md).
 */
let cron: { validate(expression: string): boolean } | undefined;
const validCron = (v: string): boolean => {
  cron ??= createRequire(import.meta.url)('node-cron') as typeof import('node-cron');
  return cron.validate(v);
};

const cronExpression = z.string(expect('expected a cron expression')).refine(validCron, {
  message: 'not a valid cron expression (five fields, e.g. "*/5 * * * *"; a sixth leading field is seconds)',
});

/** The login at an upstream server, the same for the incoming and the outgoing one. */
const upstreamLogin = {
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
};

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
    ...upstreamLogin,
    schedule: cronExpression.default('*/5 * * * *').describe('When to pull: a cron expression (node-cron).'),
    syncOnLogin: duration
      .prefault('10s')
      .describe('A local POP3 login waits up to this long for a fresh pull (0s: never).'),
    syncOnLoginFloor: duration
      .prefault('30s')
      .describe(
        'A local POP3 login pulls only when the last pull is older than this (0s: every login); a login during a pull joins it.',
      ),
    keepOnServer: z
      .boolean(expect('expected true or false'))
      .default(true)
      .describe('pop3: false deletes upstream copies, only after the local copy is durable.'),
    onLocalDelete: z
      .enum(['keep-upstream', 'delete-upstream'])
      .default('keep-upstream')
      .describe('What a local delete does upstream: keep-upstream | delete-upstream.'),
    uidls: z
      .enum(['local', 'upstream'])
      .default('local')
      .describe(
        "pop3: the UIDLs localpost serves: local (its own) | upstream (the provider's, where valid and unique, so a client that kept mail on the provider downloads nothing again; docs/clients.md). Fixed when the account's cache is created; `localpost init` writes upstream.",
      ),
    folders: z
      .array(z.string().min(1, 'must not be empty'))
      .min(1, 'needs at least one folder')
      .default(['INBOX'])
      .describe(
        'imap: the folders to cache, which are the folders the local IMAP server shows: names or LIST patterns (* any depth, % one level, / between levels). The provider\'s Sent, Drafts, Trash and Junk and folders created through the local IMAP server always come too. `localpost init` writes ["*"].',
      ),
    idle: z.boolean(expect('expected true or false')).default(true).describe('imap: push new INBOX mail with IDLE.'),
    maxMessageSize: size
      .prefault('50MB')
      .describe('Larger messages are skipped and reported. Sizes: 512KB, 50MB, 1GB or bytes; 1 KB = 1024 bytes.'),
  })
  .transform(({ protocol, host, port, ...v }) => ({
    protocol,
    host,
    port: port ?? defaultPort(protocol, v.tls),
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
    ...upstreamLogin,
    maxMessageSize: size
      .prefault('25MB')
      .describe(
        "Largest message the local SMTP listener accepts for this account (advertised as SIZE). Once a delivery has seen the provider's own SIZE, the smaller of the two applies (552 at submission).",
      ),
    maxConnections: z
      .number(expect('expected a number'))
      .int('expected a whole number')
      .min(1)
      .max(16)
      .default(4)
      .describe(
        'Connections to the upstream SMTP server that relay queued mail side by side. After a crash, at most this many messages of the account can go out twice (docs/guarantees.md); 1 gives one message at a time.',
      ),
    allowAnyFrom: z
      .boolean(expect('expected true or false'))
      .default(false)
      .describe(
        'Relay any sender address. Default false: a MAIL FROM or From: that is not email or an alias gets 553 at once.',
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
  .transform(({ host, port, ...v }) => ({ host, port: port ?? defaultPort('smtp', v.tls), ...v }));

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
        'A hash of the local password, as printed by `localpost hash-password` (or written by `localpost init`). ' +
          'A scrypt cost over 128 MiB or N×r×p > 2^20 is refused (docs/guarantees.md#local-logins).',
      ),
  })
  .superRefine((l, ctx) => {
    if (!l || typeof l !== 'object') return;
    if (l.password !== undefined && l.passwordHash !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['passwordHash'], message: 'give password or passwordHash, not both' });
    } else if (l.password === undefined && l.passwordHash === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs password or passwordHash' });
    }
    const costly = l.passwordHash === undefined ? undefined : passwordHashProblem(l.passwordHash);
    if (costly) ctx.addIssue({ code: 'custom', path: ['passwordHash'], message: costly });
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
    aliases: z
      .array(z.email(expect('expected an email address')))
      .default([])
      .describe(
        'Further addresses this account may send as (MAIL FROM and From:); others get 553 unless outgoing.allowAnyFrom.',
      ),
    login: login.describe('What the local mail client types to reach this account.'),
    incoming: incoming.describe('The upstream server mail is pulled from.'),
    outgoing: outgoing.optional().describe('The upstream server mail is sent through (omit for receive-only).'),
  })
  .superRefine((a, ctx) => {
    // one authorisation per account: both servers must use the same OAuth client
    const inc = oauth2Of(a?.incoming?.password),
      out = oauth2Of(a?.outgoing?.password);
    if (inc && out && (inc.clientId !== out.clientId || inc.tokenUrl !== out.tokenUrl)) {
      ctx.addIssue({
        code: 'custom',
        path: ['outgoing', 'password', 'oauth2'],
        message: 'must use the same provider and clientId as incoming.password.oauth2 (one sign-in per account)',
      });
    }
    if (a?.incoming?.uidls === 'upstream' && a.incoming.protocol !== 'pop3') {
      ctx.addIssue({
        code: 'custom',
        path: ['incoming', 'uidls'],
        message: 'upstream needs a POP3 incoming server (IMAP accounts serve local UIDLs)',
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

/** `accounts`: the list, with ids and local user names unique. */
export const accounts = z
  .array(account, expect('expected a list of accounts'))
  .min(1, 'needs at least one account')
  .superRefine(uniqueAccounts, always)
  .describe('The mail accounts localpost proxies.');
