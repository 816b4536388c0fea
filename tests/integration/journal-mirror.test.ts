/**
 * Expunges made upstream by another device come back at the pull: from QRESYNC's `VANISHED
 * (EARLIER)` when Dovecot offers it (no listing of every UID), from one `UID SEARCH ALL` when it
 * does not (Dovecot with an `imap_capability` without QRESYNC). Counted on the wire, never timed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startImapTap } from '../support/imap-tap.js';
import { journalTestbed, NO_QRESYNC } from '../support/journal-testbed.js';

const qresync = journalTestbed(['quinn', 'rita', 'sam']);
const plain = journalTestbed(['nora'], { IMAP_CAPABILITY: NO_QRESYNC });

type Bed = typeof qresync;

/** As another device: flag `flag` and expunge `gone` (upstream UIDs) in INBOX. */
function changeUpstream(tb: Bed, user: string, gone: number[], flag?: number): void {
  const flagIt = flag === undefined ? '' : `m.uid('STORE', '${flag}', '+FLAGS', '(\\\\Flagged)')\n`;
  tb.pythonImap(
    user,
    `m.select('INBOX')\n${flagIt}m.uid('STORE', '${gone.join(',')}', '+FLAGS', '(\\\\Deleted)')\nm.expunge()`,
  );
}

/** A cache holding `n` seeded messages of `user`, pulled once; its rows' upstream UIDs and keys. */
async function pulledAccount(tb: Bed, user: string, n: number) {
  await tb.bed().seed(user, n, 300, { archiveN: 0 });
  const acct = await tb.imapAccount(user);
  assert.equal((await acct.pull()).newMessages, n);
  const keys = () =>
    new Set(
      acct.cache
        .account('acct')
        .list('INBOX')
        .map((r) => r.key),
    );
  const upstreamUid = (key: string) => Number(key.split('_')[1]);
  return { ...acct, keys, upstreamUid };
}

describe('upstream expunges with QRESYNC', () => {
  test('a pull after another device expunged 2 of 1,000 sends no UID SEARCH ALL and expunges exactly those 2', async () => {
    const a = await pulledAccount(qresync, 'quinn', 1000);
    const tap = await startImapTap(qresync.bed().imapPort);
    try {
      const all = [...a.keys()];
      const gone = [all[100], all[700]] as string[];
      const flagged = all[500] as string;
      changeUpstream(qresync, 'quinn', gone.map(a.upstreamUid), a.upstreamUid(flagged));
      const r = await a.pull(tap.port);
      assert.equal(r.upstreamExpunges, 2);
      assert.equal(r.upstreamFlags, 1);
      assert.ok(
        tap.commands.some((c) => /^ENABLE .*QRESYNC/.test(c)),
        tap.commands.join(' | '),
      );
      assert.deepEqual(
        tap.commands.filter((c) => c.startsWith('UID SEARCH ALL')),
        [],
        'no listing of every UID',
      );
      const fetches = tap.commands.filter((c) => c.startsWith('UID FETCH'));
      assert.equal(fetches.length, 1, fetches.join(' | '));
      assert.match(
        fetches[0] ?? '',
        /^UID FETCH 1:1000 .*FLAGS.*\(CHANGEDSINCE \d+ VANISHED\)$/,
        'the cached UIDs as ranges',
      );
      const left = a.keys();
      assert.equal(left.size, 998);
      for (const k of gone) assert.ok(!left.has(k), `${k} expunged locally`);
      const local = a.cache
        .account('acct')
        .list('INBOX')
        .find((m) => m.key === flagged)?.uid;
      const row = a.view.select('INBOX').messages.find((m) => m.uid === local);
      assert.deepEqual(row?.flags, ['\\Flagged']);

      tap.reset();
      const again = await a.pull(tap.port);
      assert.equal(again.upstreamExpunges ?? 0, 0);
      assert.deepEqual(
        tap.commands.filter((c) => /^UID (SEARCH|FETCH)/.test(c)),
        [],
        'HIGHESTMODSEQ stored after the mirror: nothing asked',
      );
    } finally {
      a.cache.close();
      await tap.close();
    }
  });

  test('a mirror cut short leaves the old HIGHESTMODSEQ: the next pull still learns the expunges', async () => {
    const a = await pulledAccount(qresync, 'rita', 20);
    try {
      const gone = [...a.keys()].slice(3, 5);
      changeUpstream(qresync, 'rita', gone.map(a.upstreamUid));
      const store = a.changes.store;
      const real = store.applyUpstreamExpunges;
      store.applyUpstreamExpunges = async () => {
        throw new Error('crash while applying');
      };
      await assert.rejects(a.pull(), /crash while applying/);
      store.applyUpstreamExpunges = real;
      assert.equal(a.keys().size, 20);
      const r = await a.pull();
      assert.equal(r.upstreamExpunges, 2);
      assert.equal(a.keys().size, 18);
    } finally {
      a.cache.close();
    }
  });

  test("the pull's own delete-upstream EXPUNGE (answered by VANISHED) and a later mirror", async () => {
    const a = await pulledAccount(qresync, 'sam', 10);
    try {
      const rows = a.cache.account('acct').list('INBOX');
      assert.equal(await a.cache.account('acct').trash([rows[0]?.uid as number], { deleteUpstream: true }), 1);
      changeUpstream(qresync, 'sam', [a.upstreamUid(rows[1]?.key as string)]);
      const r = await a.pull();
      assert.equal(r.deletedUpstream, 1);
      assert.equal(r.upstreamExpunges, 1, 'the other device expunged one');
      assert.equal(qresync.bed().countUpstream('sam'), 8);
      assert.deepEqual(a.cache.account('acct').pendingUpstreamDeletes('INBOX'), []);
      changeUpstream(qresync, 'sam', [a.upstreamUid(rows[2]?.key as string)]);
      const next = await a.pull();
      assert.equal(next.upstreamExpunges, 1, 'our own deletion is not counted again');
      assert.equal(a.keys().size, 7);
    } finally {
      a.cache.close();
    }
  });
});

describe('upstream expunges without QRESYNC', () => {
  test('an upstream that does not offer QRESYNC: one UID SEARCH ALL, the same 2 expunged', async () => {
    const a = await pulledAccount(plain, 'nora', 1000);
    const tap = await startImapTap(plain.bed().imapPort);
    try {
      const all = [...a.keys()];
      const gone = [all[100], all[700]] as string[];
      changeUpstream(plain, 'nora', gone.map(a.upstreamUid));
      const r = await a.pull(tap.port);
      assert.equal(r.upstreamExpunges, 2);
      assert.ok(!tap.commands.some((c) => /QRESYNC|VANISHED/.test(c)), tap.commands.join(' | '));
      assert.equal(tap.commands.filter((c) => c.startsWith('UID SEARCH ALL')).length, 1);
      const left = a.keys();
      assert.equal(left.size, 998);
      for (const k of gone) assert.ok(!left.has(k), `${k} expunged locally`);
    } finally {
      a.cache.close();
      await tap.close();
    }
  });
});
