/** Serial and KeyedSerial: one task at a time in call order, failures isolated, early release, idle lanes forgotten. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedSerial, Serial } from '../../src/shared/serial.js';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
const flush = () => new Promise<void>((r) => setImmediate(r));

test('tasks run one at a time, in call order, each resolving with its own value', async () => {
  const s = new Serial();
  const log: string[] = [];
  const gates = [deferred(), deferred(), deferred()];
  const results = gates.map((g, i) =>
    s.run(async () => {
      log.push(`start ${i}`);
      await g.promise;
      log.push(`end ${i}`);
      return i * 10;
    }),
  );
  await flush();
  assert.deepEqual(log, ['start 0']);
  // finishing out of order changes nothing: task 2 still waits for task 1
  gates[2]?.resolve();
  gates[0]?.resolve();
  await flush();
  assert.deepEqual(log, ['start 0', 'end 0', 'start 1']);
  gates[1]?.resolve();
  assert.deepEqual(await Promise.all(results), [0, 10, 20]);
  assert.deepEqual(log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
});

test('a failing task rejects its caller only; the chain goes on', async () => {
  const s = new Serial();
  const ran: number[] = [];
  const a = s.run(async () => {
    ran.push(1);
    throw new Error('boom');
  });
  const b = s.run((() => {
    ran.push(2);
    throw new Error('sync boom'); // a task that throws before returning a promise
  }) as () => Promise<never>);
  const c = s.run(async () => {
    ran.push(3);
    return 'ok';
  });
  await assert.rejects(a, /^Error: boom$/);
  await assert.rejects(b, /sync boom/);
  assert.equal(await c, 'ok');
  assert.deepEqual(ran, [1, 2, 3]);
});

test('release() lets the next task start before this one settles', async () => {
  const s = new Serial();
  const log: string[] = [];
  const reply = deferred<string>();
  const first = s.run(async (release) => {
    log.push('write 1');
    release();
    return reply.promise;
  });
  const second = s.run(async () => {
    log.push('write 2');
    return 'two';
  });
  const third = s.run(async () => {
    log.push('write 3');
  });
  assert.equal(await second, 'two');
  await third;
  assert.deepEqual(log, ['write 1', 'write 2', 'write 3']);
  assert.equal(s.idle, false, 'the first task has not settled');
  reply.resolve('one');
  assert.equal(await first, 'one');
  assert.equal(s.idle, true);
});

test('a task that never calls release() holds the turn until it settles, even when it fails', async () => {
  const s = new Serial();
  const gate = deferred();
  const log: string[] = [];
  const first = s.run(async () => {
    await gate.promise;
    log.push('first failed');
    throw new Error('x');
  });
  const second = s.run(async () => {
    log.push('second');
  });
  await flush();
  assert.deepEqual(log, []);
  gate.resolve();
  await assert.rejects(first, /x/);
  await second;
  assert.deepEqual(log, ['first failed', 'second']);
});

test('idle is true before any task and after all have settled', async () => {
  const s = new Serial();
  assert.equal(s.idle, true);
  const gate = deferred();
  const p = s.run(() => gate.promise);
  assert.equal(s.idle, false);
  gate.resolve();
  await p;
  assert.equal(s.idle, true);
});

test('KeyedSerial: one key serialised, other keys run alongside', async () => {
  const k = new KeyedSerial<string>();
  const log: string[] = [];
  const gateA = deferred();
  const a1 = k.run('a', async () => {
    log.push('a1');
    await gateA.promise;
    log.push('a1 done');
  });
  const a2 = k.run('a', async () => {
    log.push('a2');
  });
  const b1 = k.run('b', async () => {
    log.push('b1');
  });
  await b1;
  assert.deepEqual(log, ['a1', 'b1']);
  assert.equal(k.size, 1, "b's lane is forgotten once idle");
  gateA.resolve();
  await Promise.all([a1, a2]);
  assert.deepEqual(log, ['a1', 'b1', 'a1 done', 'a2']);
  assert.equal(k.size, 0);
});

test('KeyedSerial: a lane survives a failed task while another is queued, then is forgotten', async () => {
  const k = new KeyedSerial<number>();
  const gate = deferred();
  const first = k.run(1, async () => {
    await gate.promise;
    throw new Error('first');
  });
  const gate2 = deferred();
  const second = k.run(1, async () => {
    await gate2.promise;
    return 'second';
  });
  gate.resolve();
  await assert.rejects(first, /first/);
  await flush();
  assert.equal(k.size, 1, 'the second task still holds the lane');
  gate2.resolve();
  assert.equal(await second, 'second');
  assert.equal(k.size, 0);
  // a new task after the lane was forgotten runs at once
  assert.equal(await k.run(1, async () => 'again'), 'again');
});
