/**
 * The POP3 snapshot's cost, counted in rows read from state.db and bytes per write: a login
 * reads the maildrop as one packed row, a login on an unchanged maildrop reads none (the
 * snapshot is reused until state.db changes), and LIST/UIDL go out in bounded writes.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { FolderSnapshot } from '../../src/cache/folder-snapshot.js';
import { uidl } from '../../src/cache/maildir.js';
import type { StateDb } from '../../src/cache/state-db.js';
import { Maildrop } from '../../src/listeners/pop3/maildrop.js';
import { ReplyWriter } from '../../src/listeners/pop3/writer.js';
import { authenticated, type Pop3Fixture, sampleMessage, startPop3 } from '../support/pop3-server.js';

const fixtures: Pop3Fixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

/** Counts the rows every statement of `db` returns while `fn` runs. */
async function rowsRead(db: StateDb, fn: () => Promise<void>): Promise<number> {
  const proto = Object.getPrototypeOf(db.prepare('SELECT 1'));
  const { get, all, iterate } = proto;
  let rows = 0;
  proto.get = function (this: unknown, ...a: unknown[]) {
    const r = get.apply(this, a);
    if (r !== undefined) rows++;
    return r;
  };
  proto.all = function (this: unknown, ...a: unknown[]) {
    const r = all.apply(this, a);
    rows += r.length;
    return r;
  };
  proto.iterate = function* (this: unknown, ...a: unknown[]) {
    for (const r of iterate.apply(this, a)) {
      rows++;
      yield r;
    }
  };
  try {
    await fn();
  } finally {
    Object.assign(proto, { get, all, iterate });
  }
  return rows;
}

async function loginStat(port: number): Promise<string> {
  const c = await authenticated(port);
  const stat = await c.ask('STAT');
  await c.ask('QUIT');
  return stat;
}

describe('POP3 snapshot', () => {
  test('a login reads its maildrop as one packed row, and none while state.db is unchanged', async () => {
    const fx = await startPop3({ messages: Array.from({ length: 120 }, (_, i) => sampleMessage(i + 1)) });
    fixtures.push(fx);
    const db = fx.cache.stateDb;
    let stat = '';
    const first = await rowsRead(db, async () => {
      stat = await loginStat(fx.port);
    });
    assert.match(stat, /^\+OK 120 \d+$/);
    assert.ok(first < 10, `first login read ${first} rows`);
    const second = await rowsRead(db, async () => {
      assert.equal(await loginStat(fx.port), stat);
    });
    assert.ok(second < 5, `second login read ${second} rows`);
    // a commit changes state.db: the next login sees the new message
    await fx.add([sampleMessage(121)]);
    const c = await authenticated(fx.port);
    assert.match(await c.ask('STAT'), /^\+OK 121 /);
    const row = fx.cache.account('alice').list('INBOX').at(-1);
    assert.equal(await c.ask('UIDL 121'), `+OK 121 ${row?.uidl}`);
    await c.ask('QUIT');
  });

  test('UIDL and LIST of a large maildrop go out in bounded writes, byte-exact', async () => {
    const n = 30_000;
    const snap = FolderSnapshot.fromEntries(
      Array.from({ length: n }, (_, i) => ({ uid: i * 3 + 1, wsize: 1000 + i, hasEoh: true })),
    );
    const m = new Maildrop('a', snap, false);
    m.mark({ n: 2, uid: 4, uidl: uidl(4), size: 1001 });
    const writes: Buffer[] = [];
    const socket = { destroyed: false, writable: true, write: (b: Buffer) => writes.push(b) > 0 };
    const w = new ReplyWriter(socket as unknown as Socket);
    await w.listChunks('unique-id listing follows', m.uidlChunks());
    const wire = Buffer.concat(writes).toString('latin1');
    const expected = Array.from({ length: n }, (_, i) => i)
      .filter((i) => i !== 1)
      .map((i) => `${i + 1} ${uidl(i * 3 + 1)}\r\n`);
    assert.equal(wire, `+OK unique-id listing follows\r\n${expected.join('')}.\r\n`);
    assert.ok(writes.length > 4, `${writes.length} writes`);
    for (const b of writes) assert.ok(b.length <= 128 * 1024, `a write of ${b.length} bytes`);
    assert.deepEqual(Maildrop.lines(m.listChunks()).slice(0, 2), ['1 1000', '3 1002']);
  });
});
