/**
 * sd_notify through the real systemd-notify binary into a real unix datagram socket (a python3
 * receiver standing in for systemd): READY, STATUS, STOPPING in call order, WATCHDOG pings at
 * half of WATCHDOG_USEC, nothing at all without NOTIFY_SOCKET, and a missing binary reported
 * once without throwing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { SdNotify, watchdogIntervalMs } from '../../src/daemon/sd-notify.js';
import { waitFor } from '../support/localpost.js';
import { type NotifyReceiver, startNotifyReceiver } from '../support/notify-socket.js';

/** A logger whose lines are collected. */
function memoryLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino(
    { level: 'debug' },
    {
      write: (s: string) => {
        lines.push(JSON.parse(s) as { level: number; msg: string });
      },
    },
  );
  return { log, lines };
}

describe('SdNotify', () => {
  let rx: NotifyReceiver;
  before(async () => {
    rx = await startNotifyReceiver();
  });
  after(async () => {
    await rx.close();
  });

  test('without NOTIFY_SOCKET every call is a no-op', async () => {
    const n = new SdNotify({ env: { PATH: process.env.PATH } });
    assert.equal(n.enabled, false);
    assert.equal(await n.ready('x'), false);
    assert.equal(await n.stopping(), false);
    assert.equal(n.startWatchdog(), false);
    await n.close();
  });

  test('READY, STATUS and STOPPING arrive in call order', async () => {
    const before = rx.messages().length;
    const n = new SdNotify({ env: { NOTIFY_SOCKET: rx.path, PATH: process.env.PATH } });
    assert.equal(n.enabled, true);
    const sent = [n.ready('running: 2 accounts'), n.status('reloaded\nwith a newline'), n.stopping()];
    assert.deepEqual(await Promise.all(sent), [true, true, true]);
    await rx.waitForLine('STOPPING=1');
    assert.deepEqual(
      rx
        .messages()
        .slice(before)
        .map((m) => m.text),
      ['READY=1\nSTATUS=running: 2 accounts', 'STATUS=reloaded with a newline', 'STOPPING=1'],
    );
    await n.close();
  });

  test('WATCHDOG=1 every half of WATCHDOG_USEC until close()', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] }); // the ping interval runs on a clock the test moves
    const env = {
      NOTIFY_SOCKET: rx.path,
      PATH: process.env.PATH,
      WATCHDOG_USEC: '400000',
      WATCHDOG_PID: String(process.pid),
    };
    assert.equal(watchdogIntervalMs(env), 200);
    const n = new SdNotify({ env });
    const count = () => rx.messages().filter((m) => m.text === 'WATCHDOG=1').length;
    const start = count();
    assert.equal(n.startWatchdog(), true);
    assert.equal(n.startWatchdog(), false, 'one timer only');
    const settle = () => new Promise((r) => setTimeout(r, 300)); // a ping that should not come has time to arrive
    t.mock.timers.tick(399);
    await waitFor(() => count() - start >= 1, 10_000, 'the first ping');
    await settle();
    assert.equal(count() - start, 1, 'one ping in the first 399 ms');
    t.mock.timers.tick(1);
    await waitFor(() => count() - start >= 2, 10_000, 'the ping at 400 ms');
    t.mock.timers.tick(200);
    await waitFor(() => count() - start >= 3, 10_000, 'the ping at 600 ms');
    await n.close();
    t.mock.timers.tick(1000);
    await settle();
    assert.equal(count() - start, 3, 'no ping after close()');
  });

  test('unsetEnvironment hides the variables from child processes', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1', OTHER: 'x' };
    const n = new SdNotify({ env, unsetEnvironment: true });
    assert.equal(n.enabled, true);
    assert.deepEqual(env, { OTHER: 'x' });
  });

  test('a missing systemd-notify is logged once; later calls are no-ops', async () => {
    const { log, lines } = memoryLog();
    const n = new SdNotify({ env: { NOTIFY_SOCKET: rx.path, PATH: '/nonexistent' }, log });
    assert.equal(await n.ready(), false);
    assert.equal(n.enabled, false);
    assert.equal(await n.stopping(), false);
    const errors = lines.filter((l) => l.level >= 50);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.msg, /cannot run systemd-notify/);
  });

  test('a socket name that is neither a path nor abstract disables notifications', () => {
    const { log, lines } = memoryLog();
    const n = new SdNotify({ env: { NOTIFY_SOCKET: 'vsock:2:1234' }, log });
    assert.equal(n.enabled, false);
    assert.match(lines[0]!.msg, /NOTIFY_SOCKET is neither/);
  });
});

test('watchdogIntervalMs follows sd_watchdog_enabled(3)', () => {
  assert.equal(watchdogIntervalMs({}), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '120000000' }), 60_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '120000000', WATCHDOG_PID: '42' }, 42), 60_000);
  assert.equal(
    watchdogIntervalMs({ WATCHDOG_USEC: '120000000', WATCHDOG_PID: '43' }, 42),
    undefined,
    'meant for another process',
  );
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), undefined);
});
