/**
 * Pulls accounts, one pull per account at a time: a request for an account whose pull is
 * running joins that pull instead of starting a second one. Each finished pull is classified
 * (ok, offline, auth, throttled, error), recorded in the sync history, and logged — offline once
 * per transition, not at every tick, since being offline is normal, not an error.
 *
 * Backoff (pull-backoff.ts): after an upstream failure that is not "offline" — the
 * login was refused, the server throttles us, a protocol error — automatic pulls (`autoSync`:
 * the daemon's first pull at start, the schedule, pull on login, "back online") skip the account
 * until the backoff ends, so a wrong password or a throttling provider is not hammered into
 * locking the account. `sync()` is the explicit request (`localpost sync`, the control API,
 * IDLE's "new mail"): it always tries at once. A success resets the backoff; so does a reload
 * that changes the account's incoming settings. The backoff is logged once per failure, and
 * shown by `status` through the pull record (`LivePullRecord`). It is kept in state.db, so a
 * daemon restarted during a backoff keeps waiting and the count keeps doubling.
 *
 * IMAP accounts served by the local IMAP server (`changes`): each pull first replays the change
 * journal upstream (upstream/imap/journal-replay.ts), so "back online" drains it too;
 * `localChange()` asks for a prompt replay without a pull (debounced). One drain of a journal at
 * a time: a prompt replay and a pull of the same account wait for each other.
 *
 * Revoked OAuth tokens: when the upstream refuses an access token that localpost
 * still believes valid (revoked, or rotated by the provider), the pull forces one token refresh
 * and tries once more, instead of failing until the cached token expires. A refresh answered
 * `invalid_grant` ends in the usual "sign in again" path (the notice in the INBOX).
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import type { SyncRecord } from '../cache/message-store.js';
import { type BackoffReason, backoffAfter, clockTime, isBackingOff, type PullBackoff } from '../cache/pull-backoff.js';
import { type AccountConfig, oauth2Of } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import { AuthError, ConfigError, errorMessage, isOfflineError, ThrottledError } from '../shared/errors.js';
import type { ImapChanges } from '../upstream/imap/journal-replay.js';
import type { FetchProgress, FetchResult } from '../upstream/types.js';
import { createFetcher, incomingEndpoint, replayJournalOf } from './accounts.js';

/** How long after a local change the prompt replay starts (changes made meanwhile go with it). */
export const REPLAY_DEBOUNCE_MS = 2000;

/** A pull record as the daemon holds it: with the backoff that this pull's failure started. */
export interface LivePullRecord extends SyncRecord {
  /** Present when automatic pulls wait after this (failed) pull; live status only. */
  backoff?: PullBackoff;
}

/** What asked for an automatic pull: the daemon's start, the schedule, a local login, the connectivity monitor's "back online". */
export type AutoTrigger = 'start' | 'schedule' | 'login' | 'reconnect';

/** What the daemon knows about an account right now. */
export interface AccountSyncState {
  running: boolean;
  /** undefined until the first pull answered either way. */
  online?: boolean;
  progress?: FetchProgress;
  last?: LivePullRecord;
  lastResult?: FetchResult;
  /** After consecutive failures (not offline); ended by a success. See `backoff()`. */
  backoff?: PullBackoff;
  /** Upstream logins the pulls made since the daemon started (refused ones too). */
  upstreamLogins: number;
}

export interface SyncServiceOptions {
  accounts: AccountConfig[];
  cache: Cache;
  log: Logger;
  clock?: Clock;
  onProgress?: (account: string, p: FetchProgress) => void;
  /** Randomness of the backoff jitter (tests). */
  random?: () => number;
  /** The change journal and cache views of an IMAP account served locally; undefined: no journal. */
  changes?: (account: string) => ImapChanges | undefined;
}

/** Runs pulls; never two of one account at once. */
export class SyncService {
  private readonly running = new Map<string, Promise<SyncRecord>>();
  private readonly states = new Map<string, AccountSyncState>();
  /** Who follows an account's pull progress (`watchProgress`). */
  private readonly watchers = new Map<string, Set<(p: FetchProgress) => void>>();
  private readonly abort = new AbortController();
  private accounts: Map<string, AccountConfig>;
  private readonly clock: Clock;
  /** Prompt replays waiting for their debounce, and running ones (never two drains of a journal at once). */
  private readonly replayTimers = new Map<string, NodeJS.Timeout>();
  private readonly replaying = new Map<string, Promise<void>>();

  constructor(private readonly opts: SyncServiceOptions) {
    this.accounts = new Map(opts.accounts.map((a) => [a.id, a]));
    this.clock = opts.clock ?? systemClock;
    for (const a of opts.accounts) this.states.set(a.id, this.initialState(a.id));
  }

  /** An account's state before its first pull here: the last pull and the backoff from state.db. */
  private initialState(id: string): AccountSyncState {
    const last: LivePullRecord | undefined = this.opts.cache.lastSync(id);
    const backoff = this.opts.cache.pullBackoff(id);
    const live = last && isBackingOff(backoff, this.clock.now()) ? { ...last, backoff } : last;
    return { running: false, last: live, backoff, upstreamLogins: 0 };
  }

  /**
   * Replace the account list (config reload); running pulls finish with the old settings. An
   * account whose incoming settings changed starts afresh: its backoff ends (the user may have
   * fixed the password).
   */
  setAccounts(accounts: AccountConfig[]): void {
    const before = this.accounts;
    this.accounts = new Map(accounts.map((a) => [a.id, a]));
    for (const a of accounts) {
      const st = this.states.get(a.id);
      if (!st) {
        this.states.set(a.id, this.initialState(a.id));
        continue;
      }
      const old = before.get(a.id);
      if (st.backoff && old && JSON.stringify(old.incoming) !== JSON.stringify(a.incoming)) {
        if (isBackingOff(st.backoff, this.clock.now()))
          this.opts.log.child({ account: a.id }).info('incoming settings changed: automatic pulls resume');
        st.backoff = undefined;
        this.storeBackoff(a.id, undefined);
        if (st.last?.backoff) st.last = { ...st.last, backoff: undefined };
      }
    }
  }

  /** Calls `fn` with each progress report of the account's pulls until the returned function is called. */
  watchProgress(id: string, fn: (p: FetchProgress) => void): () => void {
    const set = this.watchers.get(id) ?? new Set();
    this.watchers.set(id, set);
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.watchers.delete(id);
    };
  }

  /** State of one account. */
  state(id: string): AccountSyncState | undefined {
    return this.states.get(id);
  }

  /** The account's backoff while it keeps automatic pulls away; undefined otherwise. */
  backoff(id: string): PullBackoff | undefined {
    const b = this.states.get(id)?.backoff;
    return isBackingOff(b, this.clock.now()) ? b : undefined;
  }

  /**
   * An automatic pull (the schedule, pull on login, "back online"): joins a running pull; while
   * the account backs off, nothing is started and undefined is returned (logged at trace only:
   * the backoff itself was logged when it began).
   */
  autoSync(id: string, trigger: AutoTrigger): Promise<SyncRecord> | undefined {
    const running = this.running.get(id);
    if (running) return running;
    const b = this.backoff(id);
    if (b) {
      this.opts.log.trace(
        { account: id, trigger, until: new Date(b.until).toISOString() },
        'automatic pull skipped: backing off',
      );
      return undefined;
    }
    return this.sync(id);
  }

  /** `autoSync` for every account; resolves with the pulls that ran (or were joined). */
  async autoSyncAll(trigger: AutoTrigger): Promise<SyncRecord[]> {
    const pulls = [...this.accounts.keys()]
      .map((id) => this.autoSync(id, trigger))
      .filter((p): p is Promise<SyncRecord> => p !== undefined);
    return Promise.all(pulls);
  }

  /** Pull one account now (an explicit request: any backoff is ignored), or join its running pull. */
  sync(id: string): Promise<SyncRecord> {
    const existing = this.running.get(id);
    if (existing) return existing;
    const acc = this.accounts.get(id);
    if (!acc) return Promise.reject(new Error(`no account "${id}" in the configuration`));
    const p = this.run(acc).finally(() => this.running.delete(id));
    this.running.set(id, p);
    return p;
  }

  /** Pull several accounts in parallel. */
  async syncAll(ids = [...this.accounts.keys()]): Promise<SyncRecord[]> {
    return Promise.all(ids.map((id) => this.sync(id)));
  }

  /** Ask running pulls to stop after the message in hand, and wait for them. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.replayTimers.values()) clearTimeout(t);
    this.replayTimers.clear();
    await Promise.allSettled([...this.running.values(), ...this.replaying.values()]);
  }

  /**
   * A local change of the account was journaled (the daemon wiring calls this from the store's
   * change events): replay the journal upstream in REPLAY_DEBOUNCE_MS, unless the account is
   * offline or backing off (the next pull drains it then).
   */
  localChange(id: string): void {
    if (this.replayTimers.has(id) || this.abort.signal.aborted) return;
    const t = setTimeout(() => {
      this.replayTimers.delete(id);
      void this.replayNow(id);
    }, REPLAY_DEBOUNCE_MS);
    t.unref?.();
    this.replayTimers.set(id, t);
  }

  /** Replay the account's journal now, on a connection of its own, after any pull or replay of it in hand. */
  async replayNow(id: string): Promise<void> {
    const acc = this.accounts.get(id);
    const changes = acc?.incoming.protocol === 'imap' ? this.opts.changes?.(id) : undefined;
    if (!acc || !changes) return;
    const busy = () => this.running.get(id) ?? this.replaying.get(id);
    for (let b = busy(); b; b = busy()) await b.catch(() => undefined);
    if (this.state(id)?.online === false || this.backoff(id) || this.abort.signal.aborted) return;
    if (!changes.journal.pending(id).length) return;
    const log = this.opts.log.child({ account: id });
    const p = replayJournalOf(acc, this.opts.cache, log, changes, this.abort.signal)
      .catch((err: unknown) =>
        log.info({ err: errorMessage(err) }, 'journal replay could not reach the upstream; the next pull retries'),
      )
      .finally(() => this.replaying.delete(id));
    this.replaying.set(id, p);
    await p;
  }

  private async run(acc: AccountConfig): Promise<SyncRecord> {
    const state = this.states.get(acc.id) ?? { running: false, upstreamLogins: 0 };
    this.states.set(acc.id, state);
    state.running = true;
    state.progress = undefined;
    const log = this.opts.log.child({ account: acc.id });
    const startedAt = this.clock.now();
    const record: LivePullRecord = {
      account: acc.id,
      startedAt,
      finishedAt: startedAt,
      result: 'ok',
      newMessages: 0,
      bytes: 0,
      skipped: 0,
    };
    let reason: BackoffReason | undefined;
    try {
      const result = await this.pullWithTokenRetry(acc, state, log);
      state.lastResult = result;
      Object.assign(record, { newMessages: result.newMessages, bytes: result.bytes, skipped: result.skipped.length });
      if (result.missingFolders?.length) record.missingFolders = result.missingFolders; // shown by `status`
      if (state.online === false) log.info('upstream reachable again');
      state.online = true;
      if (state.backoff && state.backoff.failures > 0)
        log.info({ failures: state.backoff.failures }, 'pull works again: automatic pulls resume');
      log.info(
        {
          new: result.newMessages,
          bytes: result.bytes,
          skipped: result.skipped.length,
          deletedUpstream: result.deletedUpstream,
          ms: this.clock.now() - startedAt,
        },
        'pull done',
      );
    } catch (caught) {
      const err = await classifyPullError(acc, caught);
      record.error = errorMessage(err);
      if (err instanceof ConfigError) {
        record.result = 'error';
        log.error({ err: record.error }, 'pull impossible: configuration problem');
      } else if (err instanceof AuthError) {
        record.result = 'auth';
        if (err.code !== 'EOAUTH_SIGNIN') reason = 'auth'; // a missing sign-in reached no server: nothing to back off from
        state.online = true;
        log.error(
          { err: record.error },
          (err as AuthError).code === 'EOAUTH_SIGNIN'
            ? 'pull impossible until the account signs in again (queued and cached mail are kept)'
            : 'upstream refused the login: check the account password (queued and cached mail are kept)',
        );
      } else if (err instanceof ThrottledError) {
        record.result = 'throttled';
        reason = 'throttled';
        state.online = true;
        log.warn({ err: record.error }, 'upstream asks us to slow down (throttled)');
      } else if (isOfflineError(err)) {
        record.result = 'offline';
        if (state.online !== false)
          log.warn({ err: record.error }, 'upstream unreachable: working offline, will retry at the next tick');
        state.online = false;
      } else {
        record.result = 'error';
        reason = 'error';
        log.error({ err: record.error }, 'pull failed');
      }
    } finally {
      record.finishedAt = this.clock.now();
      state.running = false;
      const before = state.backoff;
      state.backoff = backoffAfter(
        state.backoff,
        { result: record.result, now: record.finishedAt, reason, error: record.error },
        undefined,
        this.opts.random,
      );
      state.last = record;
      try {
        this.opts.cache.recordSync(record);
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'could not record the pull in state.db');
      }
      if (state.backoff !== before) this.storeBackoff(acc.id, state.backoff);
      if (isBackingOff(state.backoff, record.finishedAt)) {
        const b = state.backoff;
        record.backoff = b;
        log.warn(
          { failures: b.failures, reason: b.reason, until: new Date(b.until).toISOString() },
          `automatic pulls of this account pause until ${clockTime(b.until)} after ${b.failures} failed pull${b.failures === 1 ? '' : 's'} in a row (\`localpost sync\` tries at once)`,
        );
      }
    }
    return record;
  }

  /** Persist an account's backoff; a failure is logged, the backoff still holds in memory. */
  private storeBackoff(id: string, b: PullBackoff | undefined): void {
    try {
      this.opts.cache.setPullBackoff(id, b);
    } catch (err) {
      this.opts.log
        .child({ account: id })
        .error({ err: errorMessage(err) }, 'could not store the pull backoff in state.db');
    }
  }

  /**
   * One pull; when the upstream refuses an OAuth access token, one forced token refresh and one
   * more try (see the module comment). A refresh that says `invalid_grant` is left to the second
   * try's endpoint resolution, which puts the "sign in again" notice into the INBOX and throws.
   */
  private async pullWithTokenRetry(acc: AccountConfig, state: AccountSyncState, log: Logger): Promise<FetchResult> {
    await this.replaying.get(acc.id); // one drain of the journal at a time
    const changes = acc.incoming.protocol === 'imap' ? this.opts.changes?.(acc.id) : undefined;
    const once = async (): Promise<FetchResult> => {
      const fetcher = await createFetcher(acc, this.opts.cache, log, changes);
      return fetcher.pull({
        signal: this.abort.signal,
        onProgress: (p) => {
          state.progress = p;
          this.opts.onProgress?.(acc.id, p);
          for (const fn of this.watchers.get(acc.id) ?? []) fn(p);
        },
        onLogin: () => {
          state.upstreamLogins++;
        },
      });
    };
    try {
      return await once();
    } catch (caught) {
      const err = await classifyPullError(acc, caught);
      if (!oauth2Of(acc.incoming.password) || !isRefusedLogin(err) || this.abort.signal.aborted) throw err;
      log.warn(
        { err: errorMessage(err) },
        'upstream refused the OAuth access token (revoked or rotated?): refreshing it and trying once more',
      );
      const endpoint = await incomingEndpoint(acc, { dataDir: this.opts.cache.dataDir, log });
      try {
        await endpoint.renewAccessToken?.(true);
      } catch (refreshErr) {
        if (!(refreshErr instanceof AuthError && refreshErr.code === 'EOAUTH_SIGNIN')) throw refreshErr;
      }
      return once();
    }
  }
}

/**
 * The pull error classified at its boundary; IMAP errors that imapflow raised after the login too
 * (imported here, not at start: a daemon with POP3 accounts only never loads imapflow).
 */
async function classifyPullError(acc: AccountConfig, err: unknown): Promise<unknown> {
  if (acc.incoming.protocol !== 'imap') return err;
  const { classifyImapError } = await import('../upstream/imap/connect.js');
  return classifyImapError(err);
}

/** The upstream refused the credentials themselves (not a sign-in that is missing or revoked). */
function isRefusedLogin(err: unknown): boolean {
  return err instanceof AuthError && err.code === 'EAUTH';
}
