/**
 * A local OAuth 2.0 authorization server for tests, on 127.0.0.1:0: token endpoint (refresh,
 * device code, authorization code with PKCE), device authorization, an authorize endpoint that
 * redirects at once (the "browser" approves), and RFC 7662 introspection for Dovecot's oauth2
 * passdb. Faults on demand: `mode` = 500 | timeout | invalid_grant for refresh requests, and
 * `revoke()` of access tokens (the provider revoked or rotated them before their expiry:
 * introspection answers `active: false` from then on).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeOAuth {
  base: string;
  tokenUrl: string;
  deviceUrl: string;
  authUrl: string;
  introspectUrl: string;
  /** Access tokens the introspection endpoint accepts → user name. */
  access: Map<string, string>;
  /** Refresh tokens the token endpoint accepts → user name. */
  refresh: Map<string, string>;
  /** How refresh requests are answered. */
  mode: 'ok' | '500' | 'timeout' | 'invalid_grant';
  /** Issue a new refresh token with each refresh (rotation). */
  rotate: boolean;
  /** `expires_in` of issued access tokens, seconds. */
  expiresIn: number;
  /** Device flow: answer `authorization_pending` this many times first. */
  pendingPolls: number;
  /** The user a device/browser sign-in signs in as. */
  user: string;
  /** Every request: path and form fields. */
  requests: Array<{ path: string; form: Record<string, string> }>;
  /** Access tokens handed out by the token endpoint (refresh, device, code grants), oldest first. */
  issued: string[];
  /** Refresh-token grants answered so far (any outcome). */
  refreshes(): number;
  /** Mint an access token (length >= `length`) valid for `user`. */
  mint(user: string, length?: number): string;
  /** Revoke access tokens: the given ones, or every token issued so far; returns how many were live. */
  revoke(tokens?: string[]): number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => {
      s += c.toString();
    });
    req.on('end', () => resolve(s));
  });
}

/**
 * The `oauth2:` setting (a YAML flow mapping) of an account that signs in with this server:
 * device flow, and with `authUrl` the browser flow too.
 */
export function oauth2Yaml(f: FakeOAuth, o: { authUrl?: boolean } = {}): string {
  const auth = o.authUrl ? ` authUrl: "${f.authUrl}",` : '';
  return `{ provider: custom, clientId: localpost-test, tokenUrl: "${f.tokenUrl}", deviceUrl: "${f.deviceUrl}",${auth} scopes: [mail] }`;
}

/**
 * Config text of one account `home` (alice@example.test, local password `localpw`, a yearly
 * schedule) pulling from 127.0.0.1:`port` without TLS, signed in with this server.
 */
export function oauthHomeConfig(f: FakeOAuth, o: { dataDir: string; protocol: 'pop3' | 'imap'; port: number }): string {
  return `
dataDir: ${o.dataDir}
accounts:
  - id: home
    email: alice@example.test
    login: { password: localpw }
    incoming:
      protocol: ${o.protocol}
      host: 127.0.0.1
      port: ${o.port}
      tls: none
      username: alice@example.test
      schedule: "0 0 1 1 *"
      ${o.protocol === 'imap' ? 'folders: [INBOX]' : ''}
      password:
        oauth2: ${oauth2Yaml(f, { authUrl: true })}
`;
}

/** Starts the server. */
export async function startFakeOAuth(): Promise<FakeOAuth> {
  const codes = new Map<string, string>(); // auth code → PKCE challenge
  const devices = new Map<string, number>(); // device code → polls so far
  const held: ServerResponse[] = [];
  const f = {
    access: new Map<string, string>(),
    refresh: new Map<string, string>(),
    mode: 'ok',
    rotate: false,
    expiresIn: 3600,
    pendingPolls: 1,
    user: 'alice@example.test',
    requests: [] as FakeOAuth['requests'],
    issued: [] as string[],
    refreshes() {
      return f.requests.filter((r) => r.path === '/token' && r.form.grant_type === 'refresh_token').length;
    },
    mint(user: string, length = 40) {
      const t = `at-${randomBytes(Math.max(8, Math.ceil((length - 3) / 2))).toString('hex')}`.slice(
        0,
        Math.max(length, 20),
      );
      f.access.set(t, user);
      return t;
    },
    revoke(tokens?: string[]) {
      let n = 0;
      for (const t of tokens ?? f.issued) if (f.access.delete(t)) n++;
      return n;
    },
  } as FakeOAuth;
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const tokens = (res: ServerResponse, user: string, withRefresh: boolean) => {
    const out: Record<string, unknown> = {
      access_token: f.mint(user),
      token_type: 'Bearer',
      expires_in: f.expiresIn,
      scope: 'mail',
    };
    f.issued.push(out.access_token as string);
    if (withRefresh) {
      const r = `rt-${randomBytes(12).toString('hex')}`;
      f.refresh.set(r, user);
      out.refresh_token = r;
    }
    json(res, 200, out);
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const form = Object.fromEntries(new URLSearchParams(req.method === 'POST' ? await readBody(req) : url.search));
    f.requests.push({ path: url.pathname, form });
    if (url.pathname === '/introspect') {
      const user = f.access.get(form.token ?? '');
      return json(res, 200, user ? { active: true, username: user } : { active: false });
    }
    if (url.pathname === '/device') {
      const code = `dc-${randomBytes(8).toString('hex')}`;
      devices.set(code, 0);
      return json(res, 200, {
        device_code: code,
        user_code: 'ABCD-EFGH',
        verification_uri: `${f.base}/verify`,
        expires_in: 600,
        interval: 1,
      });
    }
    if (url.pathname === '/authorize') {
      const code = `ac-${randomBytes(8).toString('hex')}`;
      codes.set(code, form.code_challenge ?? '');
      const to = new URL(form.redirect_uri!);
      to.searchParams.set('code', code);
      to.searchParams.set('state', form.state ?? '');
      res.writeHead(302, { location: to.toString() }).end();
      return;
    }
    if (url.pathname !== '/token') return json(res, 404, { error: 'not_found' });
    if (form.grant_type === 'refresh_token') {
      if (f.mode === 'timeout') {
        held.push(res);
        return;
      }
      if (f.mode === '500') return json(res, 500, { error: 'server_error' });
      const user = f.refresh.get(form.refresh_token ?? '');
      if (f.mode === 'invalid_grant' || !user)
        return json(res, 400, {
          error: 'invalid_grant',
          error_description: 'AADSTS70043: The refresh token has expired',
        });
      if (f.rotate) f.refresh.delete(form.refresh_token!);
      return tokens(res, user, f.rotate);
    }
    if (form.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
      const polls = devices.get(form.device_code ?? '');
      if (polls === undefined) return json(res, 400, { error: 'invalid_grant' });
      devices.set(form.device_code!, polls + 1);
      if (polls < f.pendingPolls) return json(res, 400, { error: 'authorization_pending' });
      devices.delete(form.device_code!);
      return tokens(res, f.user, true);
    }
    if (form.grant_type === 'authorization_code') {
      const challenge = codes.get(form.code ?? '');
      codes.delete(form.code ?? '');
      const ok =
        challenge !== undefined &&
        createHash('sha256')
          .update(form.code_verifier ?? '')
          .digest('base64url') === challenge;
      if (!ok) return json(res, 400, { error: 'invalid_grant', error_description: 'bad code or PKCE verifier' });
      return tokens(res, f.user, true);
    }
    return json(res, 400, { error: 'unsupported_grant_type' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  f.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  f.tokenUrl = `${f.base}/token`;
  f.deviceUrl = `${f.base}/device`;
  f.authUrl = `${f.base}/authorize`;
  f.introspectUrl = `${f.base}/introspect`;
  f.close = async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return f;
}
