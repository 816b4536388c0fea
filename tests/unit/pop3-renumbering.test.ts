/**
 * POP3 UIDL renumbering (docs/pitfalls.md#pop3-uidl-renumbering): the detection rule as a pure
 * function, the status line, and the fetcher against the fake for a server without TOP (the
 * identity comes from the RETR bytes, which are kept for the new messages: one RETR each).
 * The real-server round is tests/integration/pop3-uidl-renumbering.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import { keyChangeText } from '../../src/cli/status.js';
import { Pop3Fetcher } from '../../src/upstream/pop3/fetcher.js';
import { type ListingSigns, looksRenumbered, MIN_VANISHED } from '../../src/upstream/pop3/renumbering.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const keep = (s: Omit<ListingSigns, 'keepOnServer'>): ListingSigns => ({ ...s, keepOnServer: true });

test('detection: a renumbered listing is recognised', () => {
  assert.ok(looksRenumbered(keep({ listed: 3000, unknown: 3000, held: 3000, vanished: 3000 })));
  // with new mail and local deletions around it
  assert.ok(looksRenumbered(keep({ listed: 3019, unknown: 3019, held: 2900, vanished: 2900 })));
  // most of the mailbox deleted locally: the tombstoned messages are still listed upstream
  assert.ok(looksRenumbered(keep({ listed: 3000, unknown: 3000, held: 600, vanished: 600 })));
  assert.ok(looksRenumbered(keep({ listed: 12, unknown: 12, held: 10, vanished: MIN_VANISHED })));
});

test("detection: a normal day's mail, webmail deletions, a window of new mail never trigger it", () => {
  // new mail only: nothing held vanished
  assert.ok(!looksRenumbered(keep({ listed: 3020, unknown: 20, held: 3000, vanished: 0 })));
  // a first pull: nothing held
  assert.ok(!looksRenumbered(keep({ listed: 3000, unknown: 3000, held: 0, vanished: 0 })));
  // the user deleted 2000 on the webmail and 50 arrived
  assert.ok(!looksRenumbered(keep({ listed: 1050, unknown: 50, held: 3000, vanished: 2000 })));
  // a busy day: 150 arrived, 100 deleted on the webmail
  assert.ok(!looksRenumbered(keep({ listed: 450, unknown: 150, held: 400, vanished: 100 })));
  // a server that lists only mail not downloaded yet (Gmail's POP3): a window of new mail
  assert.ok(!looksRenumbered(keep({ listed: 250, unknown: 250, held: 3000, vanished: 3000 })));
  // too small to tell
  assert.ok(!looksRenumbered(keep({ listed: 9, unknown: 9, held: 9, vanished: MIN_VANISHED - 1 })));
  assert.ok(!looksRenumbered(keep({ listed: 0, unknown: 0, held: 3000, vanished: 3000 })));
  // delete mode: held keys are gone upstream by design
  assert.ok(!looksRenumbered({ listed: 3000, unknown: 3000, held: 3000, vanished: 3000, keepOnServer: false }));
});

test('status line', () => {
  const at = Date.UTC(2026, 11, 6, 12);
  const base = { folder: INBOX, kind: 'uidl' as const, detectedAt: at, matched: 2981, fresh: 19 };
  assert.equal(
    keyChangeText({ ...base, finishedAt: at }),
    'provider renumbered its UIDLs on 2026-12-06: 2,981 matched, 19 new',
  );
  assert.equal(
    keyChangeText({ ...base, matched: 100, fresh: 0 }),
    'provider renumbered its UIDLs on 2026-12-06: matching by content, 100 matched, 0 new',
  );
});

function message(i: number, withId = true): Buffer {
  const id = withId ? `Message-ID: <r${i}@test>\r\n` : '';
  return Buffer.from(`${id}Subject: ${i}\r\n\r\nbody ${i}\r\n${'y'.repeat(i * 7)}\r\n`);
}

test('a server without TOP: identity from the RETR bytes, new messages RETRieved once, deletions kept', async () => {
  const msgs = Array.from({ length: 14 }, (_, i) => message(i + 1, i % 5 !== 0));
  let prefix = 'old';
  const fake = await startFakePop3({
    user: 'alice',
    pass: 'pw',
    messages: msgs,
    capa: ['USER', 'UIDL', 'PIPELINING'],
    onCommand: (verb) =>
      verb === 'UIDL'
        ? { reply: `+OK\r\n${msgs.map((_, i) => `${i + 1} ${prefix}-${i + 1}\r\n`).join('')}.\r\n` }
        : undefined,
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-renum-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  cleanups.push(async () => {
    cache.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const store = cache.account('a');
  const pull = () =>
    new Pop3Fetcher({
      endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'pw' },
      store,
      log,
      keepOnServer: true,
      maxMessageSize: 1024 * 1024,
    }).pull();
  // the first 12 are known; the user deletes two of them (one without a Message-ID)
  msgs.splice(12);
  assert.equal((await pull()).newMessages, 12);
  const first = store.list(INBOX);
  const deleted = [first[0], first[3]].map((m) => m!.uid);
  assert.equal(await store.trash(deleted, { deleteUpstream: false }), 2);
  msgs.push(message(13, false), message(14));
  prefix = 'new';
  const retrBefore = fake.log.filter((l) => l.startsWith('C: RETR')).length;
  const r = await pull();
  const retrs = fake.log.filter((l) => l.startsWith('C: RETR')).length - retrBefore;
  assert.equal(r.newMessages, 2, 'only the two new messages are stored');
  assert.equal(retrs, 14, 'each listed message RETRieved once (for its identity), the new ones not again');
  const live = store.list(INBOX);
  assert.equal(live.length, 12);
  assert.deepEqual(
    live.slice(0, 10).map((m) => m.uid),
    first.filter((m) => !deleted.includes(m.uid)).map((m) => m.uid),
    'local UIDs kept',
  );
  const change = store.unfinishedKeyChange(INBOX);
  assert.equal(change, undefined, 'the adoption finished');
  const again = await pull();
  assert.equal(again.newMessages, 0);
});
