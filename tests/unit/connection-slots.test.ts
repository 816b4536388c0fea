/**
 * The connection-slot policy the local POP3 and SMTP listeners share (src/listeners/connection-slots.ts):
 * counting, eviction order, per-address shares, and the login deadlines under mocked timers.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { addressKey, ConnectionSlots, type Slot, type SlotOccupant } from '../../src/listeners/connection-slots.js';

/** A connection double: records what the slots asked of it. */
class Conn implements SlotOccupant {
  idle = true;
  evicted = 0;
  expired = 0;
  evict(): void {
    this.evicted++;
  }
  loginExpired(): void {
    this.expired++;
  }
}

function admitted(slots: ConnectionSlots, address: string): { slot: Slot; conn: Conn } {
  const slot = slots.admit(address);
  assert.ok(typeof slot !== 'string', `admitted ${address}`);
  const conn = new Conn();
  slot.bind(conn);
  return { slot, conn };
}

describe('connection slots', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('all loopback addresses count as one; IPv4-mapped addresses as their IPv4 form', () => {
    assert.equal(addressKey('127.0.0.1'), 'loopback');
    assert.equal(addressKey('127.4.5.6'), 'loopback');
    assert.equal(addressKey('::1'), 'loopback');
    assert.equal(addressKey('::ffff:127.0.0.1'), 'loopback');
    assert.equal(addressKey('::ffff:192.168.1.7'), '192.168.1.7');
    assert.equal(addressKey('192.168.1.7'), '192.168.1.7');
    assert.equal(addressKey(undefined), 'unknown');
  });

  test('a full listener closes its oldest idle connection that has not logged in, not the newcomer', () => {
    const slots = new ConnectionSlots({ max: 4, maxPerAddress: 4 });
    const held = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((a) => admitted(slots, a));
    held[0]!.slot.loggedIn(); // logged in: never evicted
    held[1]!.conn.idle = false; // running a command (a login being checked): not evicted either
    const newcomer = admitted(slots, '10.0.0.9');
    assert.deepEqual(
      held.map((h) => h.conn.evicted),
      [0, 0, 1, 0],
    );
    assert.equal(slots.size, 4);
    assert.equal(slots.evicted, 1);
    // the next one takes the next oldest idle one, then the newcomer itself
    admitted(slots, '10.0.0.10');
    assert.equal(held[3]!.conn.evicted, 1);
    admitted(slots, '10.0.0.11');
    assert.equal(newcomer.conn.evicted, 1);
    assert.equal(slots.size, 4);
  });

  test('only when nothing in the way is idle is the newcomer refused; a released slot admits again', () => {
    const slots = new ConnectionSlots({ max: 3, maxPerAddress: 3 });
    const held = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((a) => admitted(slots, a));
    for (const h of held) h.slot.loggedIn();
    assert.equal(slots.admit('10.0.0.4'), 'full');
    assert.equal(slots.refused, 1);
    held[0]!.slot.release();
    held[0]!.slot.release(); // idempotent
    assert.equal(slots.size, 2);
    admitted(slots, '10.0.0.4');
    assert.equal(slots.size, 3);
  });

  test('one address gets its share: its own oldest idle connection makes room, others are untouched', () => {
    const slots = new ConnectionSlots({ max: 50, maxPerAddress: 2 });
    const other = admitted(slots, '10.0.0.2');
    const a1 = admitted(slots, '10.0.0.1');
    const a2 = admitted(slots, '10.0.0.1');
    admitted(slots, '10.0.0.1');
    assert.equal(a1.conn.evicted, 1);
    assert.equal(a2.conn.evicted, 0);
    assert.equal(other.conn.evicted, 0);
    // its slots all logged in: refused for that address only
    const one = new ConnectionSlots({ max: 50, maxPerAddress: 1 });
    admitted(one, '10.0.0.1').slot.loggedIn();
    assert.equal(one.admit('10.0.0.1'), 'address');
    admitted(one, '10.0.0.2');
  });

  test('the per-address share never exceeds the listener total', () => {
    assert.equal(new ConnectionSlots({ max: 5, maxPerAddress: 10 }).policy.maxPerAddress, 5);
    assert.equal(new ConnectionSlots({ max: undefined }).policy.max, 50);
  });

  test('a flood from loopback cannot keep the real client out: 60 idle connections, then a login', () => {
    const slots = new ConnectionSlots({ max: 50, maxPerAddress: 10 });
    const flood = Array.from({ length: 60 }, (_, i) => admitted(slots, `127.0.0.${(i % 200) + 1}`));
    assert.equal(slots.size, 50, 'loopback is not capped per address, only by the listener total');
    assert.equal(flood.filter((f) => f.conn.evicted === 1).length, 10, 'the ten oldest made room');
    const client = admitted(slots, '::1');
    assert.equal(client.conn.evicted, 0);
    assert.equal(flood[10]!.conn.evicted, 1, 'the oldest idle flood connection made room for it');
    client.slot.loggedIn();
    // 49 more flood connections push out flood connections only
    for (let i = 0; i < 49; i++) admitted(slots, '127.0.0.1');
    assert.equal(client.conn.evicted, 0);
    assert.equal(slots.size, 50);
  });

  test('login deadline: a minute when quiet, the short one above half the slots; logging in cancels it', () => {
    const slots = new ConnectionSlots({ max: 4, maxPerAddress: 4, loginTimeoutMs: 60_000, busyLoginTimeoutMs: 10_000 });
    const a = admitted(slots, '10.0.0.1');
    const b = admitted(slots, '10.0.0.2');
    const c = admitted(slots, '10.0.0.3'); // the third of four: over half
    assert.deepEqual(
      [a, b, c].map((x) => x.slot.loginTimeoutMs),
      [60_000, 60_000, 10_000],
    );
    b.slot.loggedIn();
    mock.timers.tick(10_000);
    assert.deepEqual(
      [a, b, c].map((x) => x.conn.expired),
      [0, 0, 1],
    );
    mock.timers.tick(50_000);
    assert.deepEqual(
      [a, b, c].map((x) => x.conn.expired),
      [1, 0, 1],
    );
  });

  test('a released slot never fires its login deadline', () => {
    const slots = new ConnectionSlots({ loginTimeoutMs: 1000 });
    const a = admitted(slots, '10.0.0.1');
    a.slot.release();
    mock.timers.tick(5000);
    assert.equal(a.conn.expired, 0);
    assert.equal(slots.size, 0);
  });
});
