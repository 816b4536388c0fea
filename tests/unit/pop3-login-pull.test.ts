/**
 * Pull on login waits only as long as the pull may bring new INBOX mail: once its listing
 * reports nothing to download there, the login goes on while the pull finishes (its upstream
 * QUIT, its record). Counted in settled promises, never in time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { SyncRecord } from '../../src/cache/message-store.js';
import type { Config } from '../../src/config/schema.js';
import { pullOnLogin } from '../../src/daemon/pop3-listener.js';
import type { AccountSyncState, SyncService } from '../../src/daemon/sync.js';
import type { FetchProgress } from '../../src/upstream/types.js';
import { settlesAtOnce } from '../support/localpost.js';

/** A sync service whose one pull runs until `finish()`; `report()` sends its progress. */
function fakeSync() {
  const watchers = new Set<(p: FetchProgress) => void>();
  const state: AccountSyncState = { running: false, upstreamLogins: 0 };
  let finish!: () => void;
  let pulls = 0;
  let running: Promise<SyncRecord> | undefined;
  const svc = {
    state: () => state,
    backoff: () => undefined,
    autoSync: () => {
      if (running) return running; // joins, as SyncService does
      pulls++;
      state.running = true;
      state.progress = undefined;
      running = new Promise<SyncRecord>((resolve) => {
        finish = () => {
          state.running = false;
          running = undefined;
          resolve({} as SyncRecord);
        };
      });
      return running;
    },
    watchProgress: (_id: string, fn: (p: FetchProgress) => void) => {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
  };
  const report = (p: FetchProgress) => {
    state.progress = p;
    for (const fn of watchers) fn(p);
  };
  return { svc: svc as unknown as SyncService, report, finish: () => finish(), pulls: () => pulls, watchers };
}

const config = () =>
  ({ accounts: [{ id: 'a', incoming: { syncOnLogin: 600_000, syncOnLoginFloor: 30_000 } }] }) as unknown as Config;

const hookOver = (f: ReturnType<typeof fakeSync>) =>
  pullOnLogin({ config, cache: () => undefined as never, sync: () => f.svc, log: pino({ level: 'silent' }) });

describe('pull on login', () => {
  test('a pull whose listing finds no new INBOX mail releases the login before it ends', async () => {
    const f = fakeSync();
    const hook = hookOver(f);
    const login = hook('a');
    assert.equal(f.pulls(), 1);
    assert.equal(await settlesAtOnce(login), false, 'waits while the pull has not listed INBOX');
    f.report({ folder: 'Archive', total: 0, done: 0, bytes: 0 });
    assert.equal(await settlesAtOnce(login), false, 'another folder says nothing about INBOX');
    f.report({ folder: 'INBOX', total: 0, done: 0, bytes: 0 });
    assert.equal(await settlesAtOnce(login), true, 'nothing new: the login goes on, the pull still runs');
    assert.equal(f.watchers.size, 0, 'stops watching');
    // a login joining that pull (it listed already) does not wait either
    assert.equal(await settlesAtOnce(hook('a')), true);
    f.finish();
  });

  test('a pull with new INBOX mail is waited for until it ends', async () => {
    const f = fakeSync();
    const hook = hookOver(f);
    const login = hook('a');
    f.report({ folder: 'INBOX', total: 2, done: 0, bytes: 0 });
    f.report({ folder: 'INBOX', total: 2, done: 2, bytes: 10 });
    assert.equal(await settlesAtOnce(login), false, 'downloaded is not yet committed: waits for the pull');
    f.finish();
    await login;
    assert.equal(f.watchers.size, 0);
  });
});
