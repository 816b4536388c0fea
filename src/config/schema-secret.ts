/**
 * Credentials in the configuration schema: an upstream password (a literal, `{ env }`,
 * `{ file }` or `{ command }`, left unresolved: `secrets.ts` resolves them when needed) or
 * `{ oauth2 }`, parsed into complete settings with the built-in providers' endpoints and scopes.
 */
import { z } from 'zod';
import { always, expect, path } from './schema-fields.js';

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
const OAUTH2_PROVIDERS = {
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
  .transform(({ provider, clientId, clientSecret, tenant, scopes, authUrl, tokenUrl, deviceUrl }, ctx) => {
    const base = provider === 'custom' ? undefined : OAUTH2_PROVIDERS[provider];
    const t = (url: string | undefined) => url?.replace('{tenant}', encodeURIComponent(tenant ?? 'common'));
    const token = tokenUrl ?? t(base?.tokenUrl);
    if (token === undefined) {
      // the refinement above has reported it: a transform runs only on valid input
      ctx.issues.push({ code: 'custom', input: tokenUrl, path: ['tokenUrl'], message: 'required for provider custom' });
      return z.NEVER;
    }
    return {
      provider,
      clientId,
      clientSecret,
      tenant,
      scopes: scopes ?? [...(base?.scopes ?? [])],
      authUrl: authUrl ?? t(base?.authUrl),
      tokenUrl: token,
      deviceUrl: deviceUrl ?? t(base?.deviceUrl),
    };
  });

/** An upstream credential: a password from one of the sources above, or OAuth 2.0. */
export const secret = z.union(
  [
    plainSecret,
    z.strictObject({ oauth2: oauth2.describe('Sign in with OAuth 2.0 (run `localpost auth ACCOUNT` once).') }),
  ],
  expect('expected a string, or one of { env: NAME }, { file: PATH }, { command: "..." }, { oauth2: {...} }'),
);

/** An unresolved credential: a literal string, `{env}`, `{file}` (path already expanded), `{command}` or `{oauth2}`. */
export type Secret = z.output<typeof secret>;
/** A credential that is not OAuth (a client secret, a password). */
export type PlainSecret = z.output<typeof plainSecret>;
/** OAuth 2.0 settings with the provider's defaults filled in. */
export type OAuth2Settings = z.output<typeof oauth2>;

/**
 * The OAuth settings of a credential, if it is one: the one test for `{ oauth2 }`, for parsed
 * secrets, for what `init` writes (`O` is then its shorter settings) and for unchecked input.
 */
export function oauth2Of<O = OAuth2Settings>(s: PlainSecret | { oauth2: O } | undefined): O | undefined {
  return typeof s === 'object' && s !== null && 'oauth2' in s ? s.oauth2 : undefined;
}

/** The OAuth settings an account signs in with (incoming first), if any. */
export function accountOAuth2(acc: {
  incoming: { password: Secret };
  outgoing?: { password: Secret };
}): OAuth2Settings | undefined {
  return oauth2Of(acc.incoming.password) ?? oauth2Of(acc.outgoing?.password);
}
