/**
 * Access tokens for OAuth accounts: read the account's sealed sign-in (token-store.ts), return
 * its access token while it has more than `earlyMs` (5 min) to live, else refresh it first.
 *
 * Failure semantics (a lost refresh token means signing in again by hand):
 * - a network error, a timeout, a 5xx or any other answer than `invalid_grant` keeps the
 *   refresh token; the caller gets a TemporaryError (or, when the current access token is still
 *   valid, that token), and the next pull tries again;
 * - `invalid_grant` discards the refresh token (`state: invalid`), and the user hears of it in
 *   three places: one error log line (here, at that moment), `localpost status` (it reads the
 *   file's plain part), and a message in the account's local INBOX, written by the next caller
 *   that brings an AccountStore (the pull), once per invalidation;
 * - a rotated refresh token in a refresh answer replaces the old one durably before the access
 *   token is used. If `localpost auth` wrote a new sign-in meanwhile, it wins (compare-and-swap
 *   on the refresh token).
 * One refresh per account at a time within a process; each call re-reads the file, so a
 * sign-in made by `localpost auth` is used by a running daemon at its next pull.
 */
import type { Logger } from 'pino';
import type { AccountStore } from '../../cache/message-store.js';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { AuthError, errorMessage } from '../../shared/errors.js';
import { KeyProvider } from './keyring.js';
import { deliverNotice, signInAgainText, signInFirstText } from './notice.js';
import { type ClientSettings, OAuthEndpointError, refreshToken, type TokenResponse } from './token-endpoint.js';
import { readTokenFile, seal, type TokenFile, type TokenSecrets, unseal, writeTokenFile } from './token-store.js';

/** An access token and when it expires (ms since the epoch). */
export interface AccessToken {
  accessToken: string;
  expiresAt: number;
}

/** Options of a token manager. */
export interface OAuthTokensOptions {
  dataDir: string;
  log?: Logger;
  clock?: Clock;
  /** Refresh this long before expiry; default 5 minutes. */
  earlyMs?: number;
  /** Timeout of one request to the token endpoint; default 30 s. */
  timeoutMs?: number;
  /** Environment for the keyring choice (`LOCALPOST_KEYRING`). */
  env?: NodeJS.ProcessEnv;
}

/** Where the "sign in again" message goes. */
export interface NoticeTarget {
  store: AccountStore;
  email: string;
}

/** Per-call options. */
export interface TokenRequest {
  /** Refresh even when the access token is still valid (the server just refused it). */
  force?: boolean;
  /** Put the sign-in-again message here if the sign-in is (or becomes) invalid. */
  notice?: NoticeTarget;
}

/** An access token whose lifetime was not given is assumed to last this long. */
const DEFAULT_LIFETIME_S = 3600;

/** The error every caller sees while an account needs a sign-in (`first`: it never signed in). */
function signInRequired(account: string, why?: string, first = false): AuthError {
  const text = first ? signInFirstText(account) : signInAgainText(account);
  return new AuthError(`${text}${why ? ` (${why})` : ''}`, { code: 'EOAUTH_SIGNIN' });
}

/** Gives out access tokens for the OAuth accounts of one data directory. */
export class OAuthTokens {
  readonly keys: KeyProvider;
  private readonly clock: Clock;
  private readonly inflight = new Map<string, Promise<AccessToken>>();

  constructor(private readonly o: OAuthTokensOptions) {
    this.keys = new KeyProvider(o.dataDir, o.env);
    this.clock = o.clock ?? systemClock;
  }

  /** A valid access token for the account (see the module comment for failures). */
  async accessToken(account: string, client: ClientSettings, req: TokenRequest = {}): Promise<AccessToken> {
    const file = await readTokenFile(this.o.dataDir, account);
    if (!file) throw signInRequired(account, 'not signed in yet', true);
    if (file.state === 'invalid' || !file.sealed || !file.key) {
      if (req.notice) await this.notify(account, file, req.notice);
      throw signInRequired(account, file.reason);
    }
    const secrets = unseal(await this.keys.load(file.key), account, file.sealed);
    const now = this.clock.now();
    const early = this.o.earlyMs ?? 5 * 60_000;
    if (!req.force && secrets.accessToken && secrets.expiresAt && secrets.expiresAt - now > early) {
      return { accessToken: secrets.accessToken, expiresAt: secrets.expiresAt };
    }
    let p = this.inflight.get(account);
    if (!p) {
      p = this.refresh(account, client, file, secrets, req).finally(() => this.inflight.delete(account));
      this.inflight.set(account, p);
    }
    return p;
  }

  private async refresh(
    account: string,
    client: ClientSettings,
    file: TokenFile,
    secrets: TokenSecrets,
    req: TokenRequest,
  ): Promise<AccessToken> {
    const log = this.o.log?.child({ account, component: 'oauth' });
    const now = this.clock.now();
    let res: TokenResponse;
    try {
      res = await refreshToken(client, secrets.refreshToken, { timeoutMs: this.o.timeoutMs });
    } catch (err) {
      if (err instanceof OAuthEndpointError && err.error === 'invalid_grant') {
        return this.invalidate(account, client, file, secrets, err, req);
      }
      // keep the refresh token (an outage must not force a new sign-in); an access token still valid is usable
      if (!req.force && secrets.accessToken && secrets.expiresAt && secrets.expiresAt > now + 10_000) {
        log?.warn(
          { err: errorMessage(err) },
          'OAuth token refresh failed; using the current access token until it expires',
        );
        return { accessToken: secrets.accessToken, expiresAt: secrets.expiresAt };
      }
      throw err;
    }
    const accessToken = res.access_token;
    const expiresAt = now + (res.expires_in ?? DEFAULT_LIFETIME_S) * 1000;
    const next: TokenSecrets = {
      refreshToken: res.refresh_token ?? secrets.refreshToken,
      accessToken,
      expiresAt,
      scope: res.scope ?? secrets.scope,
    };
    // compare-and-swap: a sign-in written by `localpost auth` meanwhile is not overwritten
    const current = await readTokenFile(this.o.dataDir, account);
    if (current?.sealed && current.key && current.sealed.data === file.sealed?.data) {
      await writeTokenFile(this.o.dataDir, {
        ...current,
        state: 'ok',
        updatedAt: now,
        sealed: seal(await this.keys.load(current.key), account, next),
      });
      if (res.refresh_token && res.refresh_token !== secrets.refreshToken)
        log?.debug('OAuth refresh token rotated and saved');
    }
    log?.debug({ expiresInS: res.expires_in }, 'OAuth access token refreshed');
    return { accessToken, expiresAt };
  }

  /** `invalid_grant`: drop the refresh token, log once, tell status and the INBOX. */
  private async invalidate(
    account: string,
    client: ClientSettings,
    file: TokenFile,
    secrets: TokenSecrets,
    err: OAuthEndpointError,
    req: TokenRequest,
  ): Promise<never> {
    const current = await readTokenFile(this.o.dataDir, account);
    if (current?.sealed && current.key && current.sealed.data !== file.sealed?.data) {
      // `localpost auth` saved a new sign-in while this refresh ran: try that one
      const fresh = unseal(await this.keys.load(current.key), account, current.sealed);
      if (fresh.refreshToken !== secrets.refreshToken)
        return this.refresh(account, client, current, fresh, req) as Promise<never>;
    }
    const now = this.clock.now();
    const [summary = ''] = err.description?.split(/\r?\n/) ?? [];
    const reason = `${err.error}${err.description ? `: ${summary.slice(0, 200)}` : ''}`;
    const invalid: TokenFile = {
      ...(current ?? file),
      state: 'invalid',
      updatedAt: now,
      invalidatedAt: now,
      reason,
      noticeAt: undefined,
      sealed: undefined,
    };
    await writeTokenFile(this.o.dataDir, invalid);
    this.o.log?.error(
      { account, component: 'oauth', err: reason },
      `${signInAgainText(account)}: the provider refused the saved sign-in (the refresh token was discarded)`,
    );
    if (req.notice) await this.notify(account, invalid, req.notice);
    throw signInRequired(account, reason);
  }

  /** Puts the sign-in-again message into the INBOX once per invalidation. */
  private async notify(account: string, file: TokenFile, target: NoticeTarget): Promise<void> {
    if (file.state !== 'invalid' || file.noticeAt !== undefined || file.invalidatedAt === undefined) return;
    try {
      const now = this.clock.now();
      await deliverNotice(target.store, {
        account,
        email: target.email,
        invalidatedAt: file.invalidatedAt,
        reason: file.reason,
        now,
      });
      await writeTokenFile(this.o.dataDir, { ...file, noticeAt: now });
    } catch (err) {
      this.o.log?.error({ account, err: errorMessage(err) }, 'could not put the sign-in message into the local INBOX');
    }
  }
}

const managers = new Map<string, OAuthTokens>();

/** The token manager of a data directory (one per process, so refreshes are shared). */
export function oauthTokens(dataDir: string, log?: Logger): OAuthTokens {
  let m = managers.get(dataDir);
  if (!m) {
    m = new OAuthTokens({ dataDir, log });
    managers.set(dataDir, m);
  }
  return m;
}
