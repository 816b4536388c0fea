/**
 * IMAP IDLE on INBOX (RFC 2177): a long-lived connection per account that calls `onNewMail`
 * when the server announces new messages, so the daemon pulls at once instead of at the next
 * scheduled tick. imapflow does not reconnect, so after any drop a new client is made after a
 * growing delay (1 s doubling to 5 min, reset after a healthy connection).
 *
 * The endpoint may be a resolver, called before every connection attempt inside that same
 * retry loop: an OAuth account that has not signed in yet (or whose sign-in was revoked) has no
 * token, and a daemon started before `localpost auth` must still begin IDLE once it has one,
 * without a reload. Such a wait is logged once, with the fix (`signInHint`), and again only when
 * the state changes; any other failure to resolve the settings is logged once per distinct
 * message, and a token endpoint or server that cannot be reached (offline is normal) stays at
 * debug. `wake()` (the account just signed in) resets the backoff and tries at once.
 *
 * After the server refused a login, the next attempt forces a token refresh
 * (`renewAccessToken(true)`): an OAuth token revoked before its expiry would otherwise be
 * offered again until it expires.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { ConfigError, errorMessage, isOfflineError } from '../../shared/errors.js';
import { freshEndpoint, type UpstreamEndpoint } from '../types.js';
import { createImapClient } from './connect.js';

/**
 * Where the watcher stands: `connecting` (first attempt, or one in hand), `connected` (IDLE on
 * INBOX), `waiting-for-sign-in` (the resolver says the user must sign in; retried with backoff
 * and at `wake()`), `reconnecting` (waiting for the next attempt after a failure or a drop),
 * `stopped`.
 */
export type IdleState = 'connecting' | 'connected' | 'waiting-for-sign-in' | 'reconnecting' | 'stopped';

export interface IdleWatcherOptions {
  /**
   * The server, or a resolver called before every connection attempt (secrets, CA file and
   * OAuth token read then). A plain endpoint still gets a current token (`renewAccessToken`).
   */
  endpoint: UpstreamEndpoint | (() => Promise<UpstreamEndpoint>);
  log: Logger;
  onNewMail: () => void;
  /**
   * True when the resolver failed because the account has to sign in (OAuth): the watcher
   * logs `IDLE waits for sign-in: <signInHint>` once and keeps retrying quietly.
   */
  needsSignIn?: (err: unknown) => boolean;
  /** The fix shown while waiting for sign-in, e.g. "run `localpost auth home`". */
  signInHint?: string;
  /** Restart IDLE this often (RFC 2177 asks clients to re-issue within 29 minutes). */
  maxIdleMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Keeps one IDLE connection open on INBOX, reconnecting after drops. */
export class IdleWatcher {
  readonly name = 'imap-idle';
  private client?: ImapFlow;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private backoff: number;
  /** The connection attempt in hand (never two at once). */
  private attempt?: Promise<void>;
  private current: IdleState = 'stopped';
  /** What was last logged about a failing resolver ("sign-in" or "settings: message"), so it is said once. */
  private reported?: string;
  /** A resolver problem was logged above debug and IDLE has not connected since: say when it is over. */
  private problem?: 'sign-in' | 'settings';
  /** The server refused the last login: the next attempt asks for a new access token. */
  private forceRenew = false;
  /** Whether the IDLE connection is currently up. */
  connected = false;

  constructor(private readonly opts: IdleWatcherOptions) {
    this.backoff = this.minBackoff;
  }

  /** Where the watcher stands (see `IdleState`). */
  get state(): IdleState {
    return this.current;
  }

  private get minBackoff(): number {
    return this.opts.minBackoffMs ?? 1000;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.current = 'connecting';
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) {
      try {
        await Promise.race([c.logout(), new Promise((r) => setTimeout(r, 2000))]);
      } catch {
        /* closing anyway */
      }
      c.close();
    }
  }

  /**
   * Try to connect now (the account just signed in): the backoff starts again from its minimum.
   * Resolves with the state once that attempt finished (`connected` when IDLE is up); a no-op
   * while connected or stopped. An attempt already in hand is awaited, and followed by a new
   * one if it failed (it may have read the settings before the sign-in was saved).
   */
  async wake(): Promise<IdleState> {
    if (this.stopped || this.connected) return this.current;
    this.backoff = this.minBackoff;
    if (this.attempt) await this.attempt;
    if (this.stopped || this.connected) return this.current;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.backoff = this.minBackoff;
    await this.connect();
    return this.current;
  }

  /** One connection attempt; joins the attempt in hand if there is one. */
  private connect(): Promise<void> {
    if (!this.attempt)
      this.attempt = this.tryConnect().finally(() => {
        this.attempt = undefined;
      });
    return this.attempt;
  }

  private async tryConnect(): Promise<void> {
    if (this.stopped || this.connected) return;
    const { log } = this.opts;
    let endpoint: UpstreamEndpoint;
    try {
      // an OAuth token may have expired (or appeared) since the last connection
      endpoint =
        typeof this.opts.endpoint === 'function' ? await this.opts.endpoint() : await freshEndpoint(this.opts.endpoint);
      // a token the server refused (revoked, rotated) may still look valid here: refresh it
      if (this.forceRenew && endpoint.renewAccessToken)
        endpoint = { ...endpoint, accessToken: await endpoint.renewAccessToken(true) };
    } catch (err) {
      if (this.stopped) return;
      this.resolveFailed(err);
      this.scheduleReconnect();
      return;
    }
    this.reported = undefined; // the next resolver failure is news again
    this.forceRenew = false;
    if (this.stopped) return;
    // imapflow idles by itself when the connection is inactive; maxIdleTime restarts IDLE.
    const client = createImapClient(endpoint, log, {
      disableAutoIdle: false,
      maxIdleTime: this.opts.maxIdleMs ?? 25 * 60_000,
      socketTimeout: 30 * 60_000,
    });
    this.client = client;
    client.on('error', (err: Error) => log.debug({ err: err.message }, 'idle connection error'));
    client.on('close', () => {
      if (this.client !== client) return; // stopped, or an old client closing late
      this.client = undefined;
      this.connected = false;
      if (!this.stopped) this.current = 'reconnecting';
      this.scheduleReconnect();
    });
    client.on('exists', (data: { count: number; prevCount: number }) => {
      if (data.count > data.prevCount) {
        log.debug({ count: data.count, prev: data.prevCount }, 'IDLE: new mail');
        this.opts.onNewMail();
      }
    });
    try {
      await client.connect();
      await client.mailboxOpen('INBOX', { readOnly: true });
      if (this.stopped) {
        client.close();
        return;
      }
      this.connected = true;
      this.current = 'connected';
      this.backoff = this.minBackoff;
      // after a problem that was logged, say it is over at a level that is shown; else debug
      if (this.problem === 'sign-in') log.info('IDLE watching INBOX: the account is signed in now');
      else if (this.problem) log.info('IDLE watching INBOX: the account settings resolve again');
      else log.debug('IDLE watching INBOX');
      this.problem = undefined;
      void client.idle().catch(() => undefined);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'IDLE connection failed');
      if ((err as { authenticationFailed?: boolean }).authenticationFailed) this.forceRenew = true;
      if (!this.stopped) this.current = 'reconnecting';
      client.close();
    }
  }

  /** The resolver failed: wait for sign-in, or retry; logged once per change of situation. */
  private resolveFailed(err: unknown): void {
    const { log } = this.opts;
    const message = errorMessage(err);
    if (this.opts.needsSignIn?.(err)) {
      this.current = 'waiting-for-sign-in';
      if (this.reported !== 'sign-in') {
        this.reported = 'sign-in';
        this.problem = 'sign-in';
        log.warn({ err: message }, `IDLE waits for sign-in: ${this.opts.signInHint ?? 'sign the account in'}`);
      } else {
        log.debug({ err: message }, 'IDLE still waits for sign-in');
      }
      return;
    }
    this.current = 'reconnecting';
    const key = `settings: ${message}`;
    if (isOfflineError(err)) {
      // a token refresh that cannot reach the provider: offline is normal, the pulls say so
      log.debug({ err: message }, 'IDLE cannot refresh the access token (offline?)');
    } else if (this.reported !== key) {
      this.reported = key;
      this.problem = 'settings';
      // a configuration problem (an unreadable tlsCa, a secret file) needs the user: error
      log[err instanceof ConfigError ? 'error' : 'warn'](
        { err: message },
        'IDLE cannot resolve the account settings: retrying with backoff (fix them, or reload)',
      );
    } else {
      log.debug({ err: message }, 'IDLE still cannot resolve the account settings');
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 5 * 60_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
    this.timer.unref();
  }
}
