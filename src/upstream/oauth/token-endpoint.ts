/**
 * The HTTP side of OAuth 2.0: the token endpoint (RFC 6749 §4.1.3 code exchange, §6 refresh),
 * the device authorization endpoint and its polling (RFC 8628), with PKCE (RFC 7636) for the
 * browser flow. Requests are form posts through Node's fetch with a timeout.
 *
 * Classification (never lose a refresh token to a network problem):
 * - no answer, a timeout, a 5xx or 429, or an unreadable body → TemporaryError (offline codes
 *   such as ECONNREFUSED/ETIMEDOUT are kept, so callers treat it as "offline");
 * - a JSON `{"error": ...}` answer → OAuthEndpointError with the provider's code; only
 *   `invalid_grant` means the refresh token is dead (see tokens.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { AuthError, TemporaryError } from '../../shared/errors.js';
import { sleep } from '../../shared/sleep.js';

/** What a token endpoint returns on success (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type?: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
}

/** What a device authorization endpoint returns (RFC 8628 §3.2; Google says verification_url). */
export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
  message?: string;
}

/** The first line of a text (a provider's description may run to several). */
function firstLine(text: string): string {
  const [line = ''] = text.split(/\r?\n/);
  return line;
}

/** An explicit error answer of the authorization server (RFC 6749 §5.2, RFC 8628 §3.5). */
export class OAuthEndpointError extends AuthError {
  override name = 'OAuthEndpointError';
  /** The `error` field: invalid_grant, invalid_client, authorization_pending, ... */
  readonly error: string;
  readonly description?: string;
  constructor(error: string, description: string | undefined, status: number) {
    super(
      `the sign-in server answered ${status} ${error}${description ? `: ${firstLine(description).slice(0, 300)}` : ''}`,
      { code: 'EOAUTH' },
    );
    this.error = error;
    this.description = description;
  }
}

/** The client side of a provider, as the requests need it. */
export interface ClientSettings {
  clientId: string;
  clientSecret?: string;
  tokenUrl: string;
  scopes: string[];
}

/** Options of every request. */
export interface RequestOptions {
  /** Give up after this long; default 30 s. */
  timeoutMs?: number;
}

/** POSTs a form and returns the JSON answer; see the module comment for the errors. */
async function postForm(
  url: string,
  form: Record<string, string | undefined>,
  o: RequestOptions = {},
): Promise<Record<string, unknown>> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  const host = hostOf(url);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      throw new TemporaryError(`sign-in server ${host}: no answer within ${timeoutMs} ms`, {
        code: 'ETIMEDOUT',
        cause: err,
      });
    }
    throw new TemporaryError(`sign-in server ${host}: ${e.cause?.code ?? e.message}`, {
      code: e.cause?.code,
      cause: err,
    });
  }
  let json: Record<string, unknown> | undefined;
  try {
    const text = await res.text();
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  if (json && typeof json.error === 'string' && res.status < 500 && res.status !== 429) {
    throw new OAuthEndpointError(
      json.error,
      typeof json.error_description === 'string' ? json.error_description : undefined,
      res.status,
    );
  }
  if (!res.ok || !json) {
    throw new TemporaryError(`sign-in server ${host} answered ${res.status}${json ? '' : ' without JSON'}`, {
      code: res.status >= 500 ? 'EHTTP5XX' : 'EHTTP',
    });
  }
  return json;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function tokenResponse(json: Record<string, unknown>, host: string): TokenResponse {
  if (typeof json.access_token !== 'string' || !json.access_token)
    throw new TemporaryError(`sign-in server ${host}: answer has no access_token`);
  const expires = Number(json.expires_in);
  return {
    access_token: json.access_token,
    token_type: typeof json.token_type === 'string' ? json.token_type : undefined,
    expires_in: Number.isFinite(expires) && expires > 0 ? expires : undefined,
    refresh_token: typeof json.refresh_token === 'string' && json.refresh_token ? json.refresh_token : undefined,
    scope: typeof json.scope === 'string' ? json.scope : undefined,
  };
}

/** RFC 6749 §6: a new access token (and maybe a rotated refresh token). */
export async function refreshToken(c: ClientSettings, refresh: string, o: RequestOptions = {}): Promise<TokenResponse> {
  const json = await postForm(
    c.tokenUrl,
    {
      grant_type: 'refresh_token',
      refresh_token: refresh,
      client_id: c.clientId,
      client_secret: c.clientSecret,
    },
    o,
  );
  return tokenResponse(json, hostOf(c.tokenUrl));
}

/** RFC 6749 §4.1.3 with RFC 7636 §4.5: trades an authorization code for tokens. */
export async function exchangeCode(
  c: ClientSettings,
  code: string,
  redirectUri: string,
  verifier: string,
  o: RequestOptions = {},
): Promise<TokenResponse> {
  const json = await postForm(
    c.tokenUrl,
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: c.clientId,
      client_secret: c.clientSecret,
      code_verifier: verifier,
    },
    o,
  );
  return tokenResponse(json, hostOf(c.tokenUrl));
}

/** RFC 8628 §3.1: asks for a device code and a user code. */
export async function startDeviceAuthorization(
  c: ClientSettings,
  deviceUrl: string,
  o: RequestOptions = {},
): Promise<DeviceAuthorization> {
  const json = await postForm(
    deviceUrl,
    { client_id: c.clientId, client_secret: c.clientSecret, scope: c.scopes.join(' ') },
    o,
  );
  const uri = json.verification_uri ?? json.verification_url;
  if (typeof json.device_code !== 'string' || typeof json.user_code !== 'string' || typeof uri !== 'string') {
    throw new TemporaryError(`device authorization server ${hostOf(deviceUrl)}: incomplete answer`);
  }
  return {
    device_code: json.device_code,
    user_code: json.user_code,
    verification_uri: uri,
    verification_uri_complete:
      typeof json.verification_uri_complete === 'string' ? json.verification_uri_complete : undefined,
    expires_in: Number(json.expires_in) > 0 ? Number(json.expires_in) : 900,
    interval: Number(json.interval) > 0 ? Number(json.interval) : undefined,
    message: typeof json.message === 'string' ? json.message : undefined,
  };
}

/**
 * RFC 8628 §3.4-3.5: polls the token endpoint until the user has approved (tokens), denied or
 * let the code expire (OAuthEndpointError). `authorization_pending` waits `interval`;
 * `slow_down` adds 5 s; a temporary network failure is retried at the next interval.
 */
export async function pollDeviceToken(
  c: ClientSettings,
  d: DeviceAuthorization,
  o: RequestOptions & { signal?: AbortSignal; intervalMs?: number; now?: () => number } = {},
): Promise<TokenResponse> {
  const now = o.now ?? Date.now;
  const deadline = now() + d.expires_in * 1000;
  let interval = o.intervalMs ?? (d.interval ?? 5) * 1000;
  for (;;) {
    await sleep(interval, o.signal);
    try {
      const json = await postForm(
        c.tokenUrl,
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
          device_code: d.device_code,
          client_id: c.clientId,
          client_secret: c.clientSecret,
        },
        o,
      );
      return tokenResponse(json, hostOf(c.tokenUrl));
    } catch (err) {
      if (err instanceof OAuthEndpointError) {
        if (err.error === 'slow_down') interval += 5_000;
        else if (err.error !== 'authorization_pending') throw err;
      } else if (!(err instanceof TemporaryError)) {
        throw err;
      }
    }
    if (now() > deadline)
      throw new OAuthEndpointError('expired_token', 'the code was not used in time; run the command again', 400);
  }
}

/** RFC 7636 §4.1-4.2: a code verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}
