/**
 * The daemon's signal handling: a SIGTERM that arrives while the daemon is still starting is
 * handled (a clean stop once the start settled), never left to the default action that kills
 * the process mid-start.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import type { Daemon } from '../../src/daemon/daemon.js';
import { installSignals } from '../../src/daemon/signals.js';

afterEach(() => {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.removeAllListeners(sig);
});

function fakeDaemon(events: string[]): Daemon {
  return {
    stop: async () => {
      events.push('stop');
    },
    reload: async () => {
      events.push('reload');
      return true;
    },
  } as unknown as Daemon;
}

test('a SIGTERM during start-up stops the daemon once the start has settled', async () => {
  const events: string[] = [];
  let finishStart!: () => void;
  const started = new Promise<void>((r) => {
    finishStart = r;
  });
  const code = installSignals(fakeDaemon(events), pino({ level: 'silent' }), started);
  assert.ok(process.listenerCount('SIGTERM') > 0, 'a handler is in place before the start ends');
  process.emit('SIGTERM', 'SIGTERM');
  process.emit('SIGHUP', 'SIGHUP');
  await new Promise((r) => setImmediate(r));
  assert.equal(events.length, 0, 'nothing runs against a daemon still starting');
  events.push('started');
  finishStart();
  assert.equal(await code, 0);
  assert.deepEqual(events, ['started', 'stop'], 'stopped, and no reload of a daemon being stopped');
});

test('a SIGTERM after a failed start still settles with a clean stop', async () => {
  const events: string[] = [];
  const code = installSignals(fakeDaemon(events), pino({ level: 'silent' }), Promise.reject(new Error('no')));
  process.emit('SIGTERM', 'SIGTERM');
  assert.equal(await code, 0);
  assert.deepEqual(events, ['stop']);
});
