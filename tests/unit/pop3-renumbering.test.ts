/**
 * POP3 UIDL renumbering (docs/pitfalls.md#pop3-uidl-renumbering): the detection rule as a pure
 * function, and the status line. A server without TOP is in pop3-fetcher.test.ts; the
 * real-server rounds are in tests/integration/pop3-uidl-renumbering.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INBOX } from '../../src/cache/message-store.js';
import { keyChangeText } from '../../src/cli/status.js';
import { type ListingSigns, looksRenumbered, MIN_VANISHED } from '../../src/upstream/pop3/renumbering.js';

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
