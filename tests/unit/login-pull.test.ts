/**
 * The pull-on-login decision (`loginPull`): a login pulls only when the last finished pull is
 * older than the floor, joins a running pull, never waits while the account backs off or while
 * its IDLE connection is up, and does not wait after a recent "offline" pull.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LoginPullInput, loginPull } from '../../src/daemon/pop3-listener.js';
import type { AccountSyncState } from '../../src/daemon/sync.js';

const NOW = 1_800_000_000_000;
const FLOOR = 30_000;

function state(over: Partial<AccountSyncState> & { finishedAgo?: number } = {}): AccountSyncState {
  const { finishedAgo, ...rest } = over;
  const last =
    finishedAgo === undefined
      ? undefined
      : {
          account: 'a',
          startedAt: NOW - finishedAgo - 100,
          finishedAt: NOW - finishedAgo,
          result: 'ok' as const,
          newMessages: 0,
          bytes: 0,
          skipped: 0,
        };
  return { running: false, upstreamLogins: 0, last, ...rest };
}

function decide(over: Partial<LoginPullInput>): ReturnType<typeof loginPull> {
  return loginPull({ now: NOW, floorMs: FLOOR, backingOff: false, idleLive: false, ...over });
}

describe('loginPull', () => {
  test('never pulled: pull', () => {
    assert.equal(decide({ state: state() }), 'pull');
    assert.equal(decide({ state: undefined }), 'pull');
  });

  test('the last pull finished within the floor: no pull', () => {
    assert.equal(decide({ state: state({ finishedAgo: 1000 }) }), 'none');
    assert.equal(decide({ state: state({ finishedAgo: FLOOR - 1 }) }), 'none');
  });

  test('the last pull is older than the floor: pull', () => {
    assert.equal(decide({ state: state({ finishedAgo: FLOOR }) }), 'pull');
    assert.equal(decide({ state: state({ finishedAgo: 5 * 60_000 }) }), 'pull');
  });

  test('floor 0: every login pulls', () => {
    assert.equal(decide({ floorMs: 0, state: state({ finishedAgo: 0 }) }), 'pull');
  });

  test('a pull is running: join it, whatever the floor', () => {
    assert.equal(decide({ state: state({ running: true, finishedAgo: 1000 }) }), 'join');
    assert.equal(decide({ state: state({ running: true }) }), 'join');
  });

  test('IDLE connection up: no pull, no wait, even when a pull runs or the floor has passed', () => {
    assert.equal(decide({ idleLive: true, state: state({ finishedAgo: 10 * 60_000 }) }), 'none');
    assert.equal(decide({ idleLive: true, state: state({ running: true }) }), 'none');
  });

  test('backing off: no pull, no wait', () => {
    assert.equal(decide({ backingOff: true, state: state({ running: true }) }), 'none');
    assert.equal(decide({ backingOff: true, state: state({ finishedAgo: 10 * 60_000 }) }), 'none');
  });

  test('a recent offline pull past the floor: pull in the background, no wait', () => {
    assert.equal(decide({ floorMs: 1000, state: state({ online: false, finishedAgo: 5000 }) }), 'background');
    assert.equal(decide({ floorMs: 1000, state: state({ online: false, finishedAgo: 5 * 60_000 }) }), 'pull');
  });

  test('a last pull in the future (the clock went back) does not suppress the pull', () => {
    assert.equal(decide({ state: state({ finishedAgo: -60_000 }) }), 'pull');
  });
});
