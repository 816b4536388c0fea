/**
 * The local POP3 server over real sockets with a raw client: the command table walked in every
 * state, byte-exact RETR for random messages (property test), the UPDATE semantics (QUIT
 * commits into Trash, a drop commits nothing), the legacy-client repairs, and hostile input.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { INBOX, TRASH } from '../../src/cache/message-store.js';
import { COMMANDS, type Pop3Verb } from '../../src/listeners/pop3/commands/index.js';
import { within } from '../support/localpost.js';
import {
  authenticated,
  connected,
  Pop3Conn,
  type Pop3Fixture,
  sampleMessage,
  startPop3,
} from '../support/pop3-server.js';

const fixtures: Pop3Fixture[] = [];
async function fixture(o: Parameters<typeof startPop3>[0] = {}): Promise<Pop3Fixture> {
  const fx = await startPop3(o);
  fixtures.push(fx);
  return fx;
}
after(async () => {
  for (const f of fixtures) await f.close();
});

/** Plausible arguments for a verb, so that only the state can make it fail. */
const ARGS: Record<Pop3Verb, string> = {
  CAPA: '',
  QUIT: '',
  USER: ' alice',
  PASS: ' localpw',
  AUTH: ' PLAIN AGFsaWNlAGxvY2FscHc=',
  STLS: '',
  STAT: '',
  LIST: '',
  UIDL: '',
  RETR: ' 1',
  TOP: ' 1 0',
  DELE: ' 1',
  RSET: '',
  NOOP: '',
  LAST: '',
};

describe('command table', () => {
  test('every verb is refused in every state it does not list', async () => {
    const fx = await fixture({ messages: [sampleMessage(1)] });
    let checked = 0;
    for (const [verb, spec] of Object.entries(COMMANDS) as Array<[Pop3Verb, (typeof COMMANDS)[Pop3Verb]]>) {
      for (const state of ['AUTHORIZATION', 'TRANSACTION'] as const) {
        if (spec.states.includes(state)) continue;
        const c = state === 'AUTHORIZATION' ? await connected(fx.port) : await authenticated(fx.port);
        assert.equal(await c.ask(`${verb}${ARGS[verb]}`), `-ERR ${verb} is not valid in the ${state} state`);
        assert.equal(await c.ask('NOOP').then((r) => r.startsWith(state === 'TRANSACTION' ? '+OK' : '-ERR')), true);
        c.close();
        checked++;
      }
    }
    assert.ok(checked >= 12, `only ${checked} refusals checked`);
  });

  test('the table is consistent: arity bounds, no command in UPDATE', () => {
    for (const [verb, spec] of Object.entries(COMMANDS)) {
      assert.ok(spec.minArgs <= spec.maxArgs, verb);
      assert.ok(!(spec.states as readonly string[]).includes('UPDATE'), verb);
      assert.equal(verb, verb.toUpperCase());
    }
  });
});

/** What RETR must give for stored bytes: CRLF line ends, a final CRLF, NUL → 0x80 optionally. */
function expectedWire(stored: Buffer, nul: boolean): Buffer {
  const out: number[] = [];
  for (let i = 0; i < stored.length; i++) {
    const b = stored[i]!;
    if (b === 0x0a && (i === 0 || stored[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(b === 0 && nul ? 0x80 : b);
  }
  if (stored.length && stored[stored.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Buffer.from(out);
}

/** Undo dot-stuffing of a received body (terminator included). */
function unstuff(body: Buffer): Buffer {
  const text = body.subarray(0, body.length - 3).toString('latin1');
  return Buffer.from(
    text
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? l.slice(1) : l))
      .join('\r\n'),
    'latin1',
  );
}

/** A random message from hostile pieces; always has an empty line after a header. */
function randomMessage(rnd: () => number): Buffer {
  const pieces = [
    '\n',
    '\r\n',
    '\r',
    '.',
    '..',
    '.\r\n',
    '\n.\n',
    '\0',
    'x',
    'hello',
    ' ',
    '\xff',
    '\x80',
    'a'.repeat(300),
    '.\n.\n',
    '\r\r\n',
  ];
  const parts = ['Subject: p\r\n\r\n'];
  const n = Math.floor(rnd() * 60);
  for (let i = 0; i < n; i++) parts.push(pieces[Math.floor(rnd() * pieces.length)]!);
  return Buffer.from(parts.join(''), 'latin1');
}

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('RETR is byte-exact (property)', () => {
  for (const nul of [true, false]) {
    test(`200 random messages, outlook-no-nuls ${nul ? 'on' : 'off'}`, async () => {
      const rnd = prng(nul ? 42 : 7);
      const msgs = Array.from({ length: 200 }, () => randomMessage(rnd));
      msgs.push(
        Buffer.from('Subject: x\r\n\r\nno final newline', 'latin1'),
        Buffer.from('Subject: y\n\n.\n..\n.', 'latin1'),
      );
      const fx = await fixture({ messages: msgs, server: { workarounds: { outlookNoNuls: nul } } });
      const c = await authenticated(fx.port);
      c.cmd('LIST');
      assert.match(await c.line(), /^\+OK/);
      const sizes = (await c.lines()).map((l) => Number(l.split(' ')[1]));
      let total = 0;
      for (let i = 0; i < msgs.length; i++) {
        c.cmd(`RETR ${i + 1}`);
        assert.match(await c.line(), /^\+OK/);
        const got = unstuff(await c.body());
        const want = expectedWire(msgs[i]!, nul);
        assert.ok(got.equals(want), `message ${i + 1} differs: ${JSON.stringify(msgs[i]!.toString('latin1'))}`);
        assert.equal(sizes[i], got.length, `LIST size of message ${i + 1}`);
        total += got.length;
      }
      assert.equal(await c.ask('STAT'), `+OK ${msgs.length} ${total}`);
      c.close();
    });
  }
});

describe('missing end of header (oe-ns-eoh)', () => {
  const noEoh = ['Subject: a\r\nFrom: b\r\n', 'Subject: a\nX: y', '', 'Subject: a\r'];
  for (const repair of [true, false]) {
    test(`repair ${repair ? 'on' : 'off'}: LIST size equals what RETR and TOP n 0 send`, async () => {
      const fx = await fixture({ messages: noEoh, server: { workarounds: { oeNsEoh: repair } } });
      const c = await authenticated(fx.port);
      for (let i = 0; i < noEoh.length; i++) {
        const size = Number((await c.ask(`LIST ${i + 1}`)).split(' ')[2]);
        assert.match(await c.ask(`RETR ${i + 1}`), /^\+OK/);
        const got = unstuff(await c.body());
        const base = expectedWire(Buffer.from(noEoh[i]!, 'latin1'), true);
        assert.ok(
          got.equals(repair ? Buffer.concat([base, Buffer.from('\r\n')]) : base),
          JSON.stringify(got.toString('latin1')),
        );
        assert.equal(got.length, size);
        assert.match(await c.ask(`TOP ${i + 1} 0`), /^\+OK/);
        assert.ok(unstuff(await c.body()).equals(got), 'TOP n 0 of a header-only message is all of it');
      }
      c.close();
    });
  }
});

describe('UPDATE semantics (RFC 1939 §6)', () => {
  test('QUIT in TRANSACTION moves the marked messages to Trash and tombstones them', async () => {
    const fx = await fixture({ messages: [1, 2, 3].map(sampleMessage) });
    const c = await authenticated(fx.port);
    assert.match(await c.ask('DELE 1'), /^\+OK/);
    assert.match(await c.ask('DELE 3'), /^\+OK/);
    assert.match(await c.ask('QUIT'), /2 messages deleted/);
    await c.waitClosed();
    const store = fx.cache.account('alice');
    assert.deepEqual(
      store.list(INBOX).map((m) => m.uidl),
      ['00000002'],
    );
    assert.deepEqual(
      store.list(TRASH).map((m) => m.uidl),
      ['00000004', '00000005'],
      'new messages in Trash, under new UIDs (POP3 serves INBOX only)',
    );
    assert.ok(store.has(INBOX, 't1') && store.has(INBOX, 't3'), 'tombstoned: never fetched again');
    assert.deepEqual(store.pendingUpstreamDeletes(INBOX), [], 'keep-upstream asks for no upstream deletion');
    const trashCur = path.join(fx.dataDir, 'accounts/alice/Maildir/.Trash/cur');
    assert.equal(readdirSync(trashCur).length, 2);
    assert.ok(readdirSync(trashCur).every((n) => n.endsWith(':2,S')));
    const d = await authenticated(fx.port);
    assert.equal(await d.ask('STAT'), '+OK 1 77');
    assert.equal(await d.ask('UIDL 1'), '+OK 1 00000002', 'UIDLs are permanent');
    d.close();
  });

  test('delete-upstream marks the tombstones pending; Trash is purged after the retention', async () => {
    const fx = await fixture({ messages: [1, 2].map(sampleMessage), onLocalDelete: 'delete-upstream' });
    const c = await authenticated(fx.port);
    await c.ask('DELE 2');
    await c.ask('QUIT');
    await c.waitClosed();
    const store = fx.cache.account('alice');
    assert.deepEqual(store.pendingUpstreamDeletes(INBOX), ['t2']);
    store.markUpstreamDeleted(INBOX, ['t2']);
    assert.deepEqual(store.pendingUpstreamDeletes(INBOX), []);
    assert.equal(await store.purgeTrash(60_000), 0, 'younger than the retention: kept');
    assert.equal(await store.purgeTrash(-1), 1);
    assert.deepEqual(store.list(TRASH), []);
    assert.ok(store.has(INBOX, 't2'), 'still tombstoned after the purge');
  });

  test('a dropped connection, RSET, or QUIT in AUTHORIZATION deletes nothing', async () => {
    const fx = await fixture({ messages: [1, 2, 3].map(sampleMessage) });
    const a = await authenticated(fx.port);
    await a.ask('DELE 1');
    a.close(); // no QUIT
    const b = await authenticated(fx.port).catch(async () => {
      await new Promise((r) => setTimeout(r, 100)); // the lock goes when the server saw the close
      return authenticated(fx.port);
    });
    await b.ask('DELE 2');
    await b.ask('RSET');
    assert.match(await b.ask('QUIT'), /0 messages deleted/);
    const q = await connected(fx.port);
    await q.ask('USER alice');
    assert.match(await q.ask('QUIT'), /^\+OK/);
    assert.equal(fx.cache.account('alice').list(INBOX).length, 3);
  });

  test('a client that disconnects mid-RETR deletes nothing and others keep being served', async () => {
    const big = `Subject: big\r\n\r\n${'0123456789abcdef'.repeat(64)}\r\n`.repeat(2000); // ~2 MB
    const fx = await fixture({ messages: [big, sampleMessage(2)] });
    const a = await authenticated(fx.port);
    await a.ask('DELE 2');
    a.cmd('RETR 1');
    await a.line();
    a.close();
    const other = await authenticated(fx.port, 'bob', 'bobpw');
    assert.equal(await other.ask('STAT'), '+OK 0 0');
    other.close();
    await new Promise((r) => setTimeout(r, 200));
    const b = await authenticated(fx.port);
    assert.match(await b.ask('STAT'), /^\+OK 2 /);
    b.close();
  });

  test('a message file moved to cur/ by another Maildir reader is still served', async () => {
    const fx = await fixture({ messages: [sampleMessage(1)] });
    const m = fx.cache.account('alice').list(INBOX)[0]!;
    const { renameSync } = await import('node:fs');
    renameSync(m.path, path.join(path.dirname(m.path), '../cur', `${path.basename(m.path)}:2,S`));
    assert.ok(!existsSync(m.path));
    const c = await authenticated(fx.port);
    assert.match(await c.ask('RETR 1'), /^\+OK 77 octets/);
    assert.match((await c.body()).toString(), /body 1 line 2/);
    c.close();
  });
});

describe('hostile input', () => {
  test('garbage bytes, a 1 MB line and 1,000 pipelined commands: the server keeps serving', async () => {
    const fx = await fixture({ messages: [1, 2, 3].map(sampleMessage) });
    const g = await connected(fx.port);
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff;
    g.send(garbage);
    g.send(`\r\n${'z'.repeat(1024 * 1024)}\r\n`);
    g.send('NOOP\r\n'.repeat(10));
    const p = await authenticated(fx.port, 'bob', 'bobpw');
    p.send(`${'NOOP\r\n'.repeat(999)}STAT\r\n`);
    for (let i = 0; i < 999; i++) assert.equal(await p.line(), '+OK');
    assert.equal(await p.line(), '+OK 0 0');
    const ok = await authenticated(fx.port);
    assert.equal(await ok.ask('STAT'), '+OK 3 231');
    g.close();
    p.close();
    ok.close();
  });

  test('a client that never reads does not make the server buffer without limit', async () => {
    const fx = await fixture({ messages: [`Subject: x\r\n\r\n${'y'.repeat(1024 * 1024)}\r\n`] });
    const c = await authenticated(fx.port);
    c.socket.pause();
    c.send('RETR 1\r\n'.repeat(200));
    await new Promise((r) => setTimeout(r, 300));
    const other = await authenticated(fx.port, 'bob', 'bobpw');
    assert.equal(await other.ask('STAT'), '+OK 0 0');
    other.close();
    c.close();
  });

  test('idle timeout closes the session without UPDATE', async () => {
    const fx = await fixture({ messages: [sampleMessage(1)], server: { idleTimeoutMs: 200 } });
    const c = await authenticated(fx.port);
    await c.ask('DELE 1');
    assert.match(await c.line(2000), /^-ERR autologout/);
    await c.waitClosed();
    assert.equal(fx.cache.account('alice').list(INBOX).length, 1);
  });

  test('server stop closes idle sessions and does not wait forever', async () => {
    const fx = await startPop3({ messages: [sampleMessage(1)], server: { closeTimeoutMs: 500 } });
    const c = await authenticated(fx.port);
    await c.ask('DELE 1');
    await within(fx.server.stop(), 60_000, 'stop() with an idle session');
    await c.waitClosed();
    assert.equal(fx.cache.account('alice').list(INBOX).length, 1, 'no QUIT, nothing deleted');
    fx.cache.close();
  });
});

describe('login', () => {
  test('wrong password, unknown user, PASS without USER; pull on login runs before the snapshot', async () => {
    let pulls = 0;
    let fx!: Pop3Fixture;
    fx = await fixture({
      messages: [sampleMessage(1)],
      beforeSnapshot: async () => {
        pulls++;
        await fx.add([sampleMessage(2)]);
      },
    });
    const c = await connected(fx.port);
    await c.ask('USER nobody');
    assert.equal(await c.ask('PASS localpw'), '-ERR [AUTH] invalid user name or password');
    assert.equal(await c.ask('PASS localpw'), '-ERR send USER first');
    await c.ask('USER alice');
    assert.equal(await c.ask('PASS wrong'), '-ERR [AUTH] invalid user name or password');
    await c.ask('USER alice');
    assert.equal(
      await c.ask('PASS localpw  '),
      '+OK maildrop has 2 messages (154 octets)',
      'trailing spaces tolerated',
    );
    assert.equal(pulls, 1);
    c.close();
  });

  test('both loopbacks can be served', async () => {
    const fx = await fixture({ server: { hosts: ['127.0.0.1', '::1'] } });
    assert.ok(fx.server.addresses.length >= 1);
    for (const a of fx.server.addresses) {
      const c = await Pop3Conn.open(a.port, a.host);
      assert.match(await c.line(), /^\+OK/);
      c.close();
    }
  });
});
