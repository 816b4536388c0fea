/**
 * The connectivity monitor (src/daemon/connectivity.ts): TCP probes, flap damping,
 * the hold-down of "back online", the network-interface hint — with a fake clock and scripted
 * probe results, so nothing sleeps longer than a timer tick.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import {
  ConnectivityMonitor,
  type Endpoint,
  endpointsOf,
  interfaceSignature,
  tcpProbe,
} from '../../src/daemon/connectivity.js';
import { FakeClock, silentLog } from '../support/outbox.js';

const monitors: ConnectivityMonitor[] = [];
after(async () => {
  for (const m of monitors) await m.stop();
});

const ep: Endpoint = { host: 'smtp.example.test', port: 587, uses: [{ account: 'alice', kind: 'outgoing' }] };

function monitor(
  results: boolean[],
  o: {
    downAfter?: number;
    holdDownMs?: number;
    interfaces?: () => ReturnType<typeof import('node:os').networkInterfaces>;
  } = {},
) {
  const clock = new FakeClock();
  const events: Endpoint[][] = [];
  let probes = 0;
  const m = new ConnectivityMonitor({
    endpoints: () => [ep],
    intervalMs: 3_600_000,
    timeoutMs: 100,
    log: silentLog,
    clock,
    onBackOnline: (e) => events.push(e),
    downAfter: o.downAfter,
    holdDownMs: o.holdDownMs ?? 30_000,
    probe: async () => {
      probes++;
      return results.shift() ?? true;
    },
    interfaces: o.interfaces,
    hintIntervalMs: 20,
  });
  monitors.push(m);
  return { m, clock, events, probes: () => probes };
}

describe('tcpProbe', () => {
  test('true for a listening port, false for a closed one', async () => {
    const srv = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    assert.equal(await tcpProbe('127.0.0.1', port, 1000), true);
    await new Promise<void>((r) => srv.close(() => r()));
    assert.equal(await tcpProbe('127.0.0.1', port, 1000), false);
  });
});

describe('state and damping', () => {
  test('the first probe only sets the state; offline → online announces once', async () => {
    const { m, events } = monitor([false, false, true, true]);
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'offline');
    await m.check();
    assert.equal(events.length, 0);
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'online');
    assert.deepEqual(events, [[ep]]);
    await m.check();
    assert.equal(events.length, 1);
  });

  test('unknown → online is not "back online"', async () => {
    const { m, events } = monitor([true]);
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'online');
    assert.equal(events.length, 0);
  });

  test('one failed probe of an online server is not enough to go offline (downAfter 2)', async () => {
    const { m, events } = monitor([true, false, true, false, false, true]);
    await m.check();
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'online');
    await m.check();
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'online');
    await m.check();
    assert.equal(m.stateOf('alice', 'outgoing'), 'offline');
    await m.check();
    assert.deepEqual(events, [[ep]]);
  });

  test('hold-down: a second "back online" within 30 s waits, and is dropped if the server went away again', async () => {
    const { m, clock, events } = monitor([
      false,
      true,
      false,
      false,
      true,
      true,
      false,
      false,
      true,
      false,
      false,
      true,
    ]);
    await m.check(); // offline
    await m.check(); // back: announced
    assert.equal(events.length, 1);
    clock.advance(1000);
    await m.check();
    await m.check(); // offline again
    clock.advance(1000);
    await m.check(); // back within the hold-down: not yet
    assert.equal(events.length, 1);
    clock.advance(30_000);
    await m.check(); // hold-down over, still online: announced
    assert.equal(events.length, 2);
    await m.check();
    await m.check(); // offline
    clock.advance(1000);
    await m.check(); // back, waits
    await m.check();
    await m.check(); // offline before the hold-down ended
    clock.advance(60_000);
    await m.check(); // back again: announced once, after the hold-down
    assert.equal(events.length, 3);
  });

  test('a positive hint from the delivery loop counts as a successful probe', async () => {
    const { m, events } = monitor([false]);
    await m.check();
    m.report('alice', 'outgoing', true);
    assert.equal(m.stateOf('alice', 'outgoing'), 'online');
    await m.check();
    assert.equal(events.length, 1);
  });
});

describe('hints and endpoints', () => {
  test('a change of the network interfaces triggers a check at once while a server is offline', async () => {
    let ifs: Record<string, Array<{ address: string }>> = { lo: [{ address: '127.0.0.1' }] };
    const { m, probes } = monitor(Array(20).fill(false), { interfaces: () => ifs as never });
    m.start();
    await new Promise((r) => setTimeout(r, 60));
    const before = probes();
    ifs = { lo: [{ address: '127.0.0.1' }], wlan0: [{ address: '192.168.1.20' }] };
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(probes(), before + 1);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(probes(), before + 1, 'no change, no check');
  });

  test('while every server is online, no timer but the probes: the interfaces are not polled', async () => {
    let looks = 0;
    const { m } = monitor([true, false, false, false], {
      interfaces: () => {
        looks++;
        return {};
      },
    });
    m.start(); // looks once at start
    await new Promise((r) => setTimeout(r, 100)); // five hint intervals
    assert.equal(looks, 1, 'online: not polled');
    await m.check();
    await m.check(); // two failed probes: offline
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(looks > 1, 'offline: polled');
  });

  test('interfaceSignature is order-independent; endpointsOf merges accounts on one server', () => {
    assert.equal(
      interfaceSignature({ b: [{ address: '2' } as never], a: [{ address: '1' } as never] }),
      interfaceSignature({ a: [{ address: '1' } as never], b: [{ address: '2' } as never] }),
    );
    const eps = endpointsOf([
      { id: 'a', incoming: { host: 'mail.x', port: 993 }, outgoing: { host: 'mail.x', port: 587 } },
      { id: 'b', incoming: { host: 'mail.x', port: 993 } },
    ]);
    assert.deepEqual(
      eps.map((e) => [`${e.host}:${e.port}`, e.uses.map((u) => `${u.account}/${u.kind}`)]),
      [
        ['mail.x:993', ['a/incoming', 'b/incoming']],
        ['mail.x:587', ['a/outgoing']],
      ],
    );
  });
});
