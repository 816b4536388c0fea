/**
 * Pulls accounts, one pull per account at a time: a request for an account whose pull is
 * running joins that pull instead of starting a second one. Each finished pull is classified
 * (ok, offline, auth, error), recorded in the sync history, and logged — offline once per
 * transition, not at every tick, since being offline is normal (ARCHITECTURE "Connectivity").
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import type { SyncRecord } from '../cache/message-store.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import { AuthError, ConfigError, errorMessage, isOfflineError } from '../shared/errors.js';
import type { FetchProgress, FetchResult } from '../upstream/types.js';
import { createFetcher } from './accounts.js';
import type { AccountConfig } from './config/schema.js';

/** What the daemon knows about an account right now. */
export interface AccountSyncState {
  running: boolean;
  /** undefined until the first pull answered either way. */
  online?: boolean;
  progress?: FetchProgress;
  last?: SyncRecord;
  lastResult?: FetchResult;
}

export interface SyncServiceOptions {
  accounts: AccountConfig[];
  cache: Cache;
  log: Logger;
  clock?: Clock;
  onProgress?: (account: string, p: FetchProgress) => void;
}

/** Runs pulls; never two of one account at once. */
export class SyncService {
  private readonly running = new Map<string, Promise<SyncRecord>>();
  private readonly states = new Map<string, AccountSyncState>();
  private readonly abort = new AbortController();
  private accounts: Map<string, AccountConfig>;
  private readonly clock: Clock;

  constructor(private readonly opts: SyncServiceOptions) {
    this.accounts = new Map(opts.accounts.map((a) => [a.id, a]));
    this.clock = opts.clock ?? systemClock;
    for (const a of opts.accounts) this.states.set(a.id, { running: false, last: opts.cache.lastSync(a.id) });
  }

  /** Replace the account list (config reload); running pulls finish with the old settings. */
  setAccounts(accounts: AccountConfig[]): void {
    this.accounts = new Map(accounts.map((a) => [a.id, a]));
    for (const a of accounts) if (!this.states.has(a.id)) this.states.set(a.id, { running: false, last: this.opts.cache.lastSync(a.id) });
  }

  /** State of one account. */
  state(id: string): AccountSyncState | undefined {
    return this.states.get(id);
  }

  /** Pull one account now, or join its running pull. */
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
    await Promise.allSettled([...this.running.values()]);
  }

  private async run(acc: AccountConfig): Promise<SyncRecord> {
    const state = this.states.get(acc.id) ?? { running: false };
    this.states.set(acc.id, state);
    state.running = true;
    state.progress = undefined;
    const log = this.opts.log.child({ account: acc.id });
    const startedAt = this.clock.now();
    const record: SyncRecord = { account: acc.id, startedAt, finishedAt: startedAt, result: 'ok', newMessages: 0, bytes: 0, skipped: 0 };
    try {
      const fetcher = await createFetcher(acc, this.opts.cache, log);
      const result = await fetcher.pull({
        signal: this.abort.signal,
        onProgress: (p) => { state.progress = p; this.opts.onProgress?.(acc.id, p); },
      });
      state.lastResult = result;
      Object.assign(record, { newMessages: result.newMessages, bytes: result.bytes, skipped: result.skipped.length });
      if (state.online === false) log.info('upstream reachable again');
      state.online = true;
      log.info({ new: result.newMessages, bytes: result.bytes, skipped: result.skipped.length, deletedUpstream: result.deletedUpstream, ms: this.clock.now() - startedAt }, 'pull done');
    } catch (err) {
      record.error = errorMessage(err);
      if (err instanceof ConfigError) {
        record.result = 'error';
        log.error({ err: record.error }, 'pull impossible: configuration problem');
      } else if (err instanceof AuthError) {
        record.result = 'auth';
        state.online = true;
        log.error({ err: record.error }, (err as AuthError).code === 'EOAUTH_SIGNIN'
          ? 'pull impossible until the account signs in again (queued and cached mail are kept)'
          : 'upstream refused the login: check the account password (queued and cached mail are kept)');
      } else if (isOfflineError(err)) {
        record.result = 'offline';
        if (state.online !== false) log.warn({ err: record.error }, 'upstream unreachable: working offline, will retry at the next tick');
        state.online = false;
      } else {
        record.result = 'error';
        log.error({ err: record.error }, 'pull failed');
      }
    } finally {
      record.finishedAt = this.clock.now();
      state.running = false;
      state.last = record;
      try {
        this.opts.cache.recordSync(record);
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'could not record the pull in state.db');
      }
    }
    return record;
  }
}
