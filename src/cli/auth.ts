/**
 * `localpost auth ACCOUNT`: signs an OAuth account in once and saves the refresh token, sealed
 * (token-store.ts), for the daemon to use. Two ways:
 * - device code (RFC 8628, the default where the provider allows it): prints a URL and a short
 *   code to type there from any device; works on a headless machine;
 * - `--browser`: authorization code with PKCE (RFC 7636) and a loopback redirect (RFC 8252 §7.3):
 *   a listener on 127.0.0.1 and a free port receives the code. Google's default, since Google
 *   does not allow its mail scope in the device flow.
 * The result replaces any earlier sign-in of the account (a running daemon re-reads the file at
 * its next pull).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type AccountConfig, accountOAuth2, type OAuth2Settings, oauth2Of } from '../config/schema.js';
import { resolvePlain } from '../config/secrets.js';
import { ConfigError, TemporaryError } from '../shared/errors.js';
import { runProgram } from '../shared/exec.js';
import { KeyProvider, type KeySource } from '../upstream/oauth/keyring.js';
import {
  type ClientSettings,
  exchangeCode,
  pkcePair,
  pollDeviceToken,
  startDeviceAuthorization,
  type TokenResponse,
} from '../upstream/oauth/token-endpoint.js';
import { seal, tokenFilePath, writeTokenFile } from '../upstream/oauth/token-store.js';

/** Options of one sign-in. */
export interface AuthorizeOptions {
  dataDir: string;
  /** `browser`: loopback redirect with PKCE; `device`: device code; default by provider. */
  method?: 'browser' | 'device';
  /** Try to open the browser (`xdg-open`/`open`); default true. */
  openBrowser?: boolean;
  /** Where instructions are printed (one line per call). */
  print: (line: string) => void;
  /** Give up waiting for the user after this long; default 10 minutes. */
  waitMs?: number;
  /** Device flow: poll this often instead of the server's interval (tests). */
  pollMs?: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

/** What a sign-in saved. */
export interface AuthorizeResult {
  file: string;
  keySource: KeySource;
  method: 'browser' | 'device';
}

/** The default method for settings: device code unless the provider is Google or has no device endpoint. */
function defaultMethod(o: OAuth2Settings): 'browser' | 'device' {
  if (o.provider === 'google' || !o.deviceUrl) return 'browser';
  return 'device';
}

/** Signs the account in and saves its tokens; throws ConfigError for an account without OAuth. */
export async function authorize(acc: AccountConfig, o: AuthorizeOptions): Promise<AuthorizeResult> {
  const settings = accountOAuth2(acc);
  if (!settings) {
    throw new ConfigError(
      `account "${acc.id}" does not use OAuth: set incoming.password to { oauth2: { provider, clientId } } first (README, "Signing in with OAuth 2.0")`,
    );
  }
  const key = oauthKeyName(acc);
  const clientSecret =
    settings.clientSecret === undefined
      ? undefined
      : await resolvePlain(settings.clientSecret, { account: acc.id, key: `${key}.oauth2.clientSecret`, env: o.env });
  const client: ClientSettings = {
    clientId: settings.clientId,
    clientSecret,
    tokenUrl: settings.tokenUrl,
    scopes: settings.scopes,
  };
  const method = o.method ?? defaultMethod(settings);
  let tokens: TokenResponse;
  if (method === 'device') {
    if (!settings.deviceUrl)
      throw new ConfigError(`account "${acc.id}": ${key}.oauth2 has no deviceUrl; use --browser`);
    const d = await startDeviceAuthorization(client, settings.deviceUrl);
    o.print(`To sign in account "${acc.id}" (${acc.email}), open ${d.verification_uri_complete ?? d.verification_uri}`);
    o.print(`and enter the code ${d.user_code} (valid for ${Math.round(d.expires_in / 60)} minutes). Waiting…`);
    tokens = await pollDeviceToken(client, d, { signal: o.signal, intervalMs: o.pollMs });
  } else {
    if (!settings.authUrl)
      throw new ConfigError(`account "${acc.id}": ${key}.oauth2 has no authUrl; use the device flow`);
    tokens = await browserFlow(acc, settings, settings.authUrl, client, o);
  }
  if (!tokens.refresh_token) {
    throw new TemporaryError(
      `the provider returned no refresh token${settings.provider === 'microsoft' ? ' (is offline_access among the scopes?)' : ''}`,
    );
  }
  const keys = new KeyProvider(o.dataDir, o.env);
  const { key: k, source } = await keys.obtain();
  const now = Date.now();
  await writeTokenFile(o.dataDir, {
    version: 1,
    account: acc.id,
    clientId: settings.clientId,
    tokenUrl: settings.tokenUrl,
    state: 'ok',
    updatedAt: now,
    key: source,
    sealed: seal(k, acc.id, {
      refreshToken: tokens.refresh_token,
      accessToken: tokens.access_token,
      expiresAt: now + (tokens.expires_in ?? 3600) * 1000,
      scope: tokens.scope,
    }),
  });
  return { file: tokenFilePath(o.dataDir, acc.id), keySource: source, method };
}

/** Which config key carries the account's OAuth settings (for messages). */
function oauthKeyName(acc: AccountConfig): string {
  return oauth2Of(acc.incoming.password) ? 'incoming.password' : 'outgoing.password';
}

const PAGE = (text: string) => `<!doctype html><meta charset="utf-8"><title>localpost</title><p>${text}</p>\n`;

/** RFC 8252 loopback redirect: listen, print (and open) the URL, wait for the code, exchange it. */
async function browserFlow(
  acc: AccountConfig,
  s: OAuth2Settings,
  authUrl: string,
  client: ClientSettings,
  o: AuthorizeOptions,
): Promise<TokenResponse> {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(16).toString('base64url');
  let settle!: { resolve: (code: string) => void; reject: (err: Error) => void };
  const gotCode = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/') {
      res.writeHead(404).end();
      return;
    }
    const params = url.searchParams;
    if (params.get('state') !== state) {
      res
        .writeHead(400, { 'content-type': 'text/html' })
        .end(PAGE('This sign-in link is not the current one. Run <code>localpost auth</code> again.'));
      return;
    }
    const error = params.get('error');
    const code = params.get('code');
    if (error || !code) {
      res.writeHead(400, { 'content-type': 'text/html' }).end(PAGE('Sign-in refused. You can close this tab.'));
      settle.reject(
        new ConfigError(
          `sign-in refused: ${error ?? 'no code'}${params.get('error_description') ? `: ${params.get('error_description')}` : ''}`,
        ),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('localpost is signed in. You can close this tab.'));
    settle.resolve(code);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const timer = setTimeout(
    () => settle.reject(new TemporaryError('no answer from the browser in time; run the command again')),
    o.waitMs ?? 10 * 60_000,
  );
  const onAbort = () => settle.reject(new TemporaryError('sign-in aborted'));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const url = new URL(authUrl);
    const q = url.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', s.clientId);
    q.set('redirect_uri', redirectUri);
    q.set('scope', s.scopes.join(' '));
    q.set('state', state);
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', 'S256');
    q.set('login_hint', acc.incoming.username);
    if (s.provider === 'google') {
      q.set('access_type', 'offline'); // Google sends a refresh token only with these two
      q.set('prompt', 'consent');
    }
    o.print(`To sign in account "${acc.id}" (${acc.email}), open this address in a browser on this machine:`);
    o.print(url.toString());
    if (o.openBrowser !== false) openInBrowser(url.toString());
    const code = await gotCode;
    return await exchangeCode(client, code, redirectUri, verifier);
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    server.close();
    server.closeAllConnections();
  }
}

/** Best effort: the desktop's URL opener; the printed URL is the fallback. */
function openInBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  void runProgram(cmd, [url], { timeoutMs: 10_000, output: 'ignore', unref: true });
}
