/**
 * The mirror's expunges from QRESYNC (src/upstream/imap/mirror.ts) against a scripted imapflow
 * stand-in: VANISHED naming UIDs never cached is ignored, the UID set is the cached UIDs of the
 * current UIDVALIDITY, no listing is asked, the 'expunge' listener does not outlive the FETCH.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import pino from 'pino';
import { type MirrorStore, mirrorFolder } from '../../src/upstream/imap/mirror.js';

/** What mirrorFolder uses of imapflow; `fetch` reports `vanished` as imapflow does, before its last row. */
class ScriptedClient extends EventEmitter {
  enabled = new Set(['CONDSTORE', 'QRESYNC']);
  mailbox = { uidValidity: 7n, highestModseq: 20n, exists: 3 };
  commands: string[] = [];
  constructor(
    private readonly vanished: number[],
    private readonly rows: Array<{ uid: number; flags: Set<string> }>,
  ) {
    super();
  }
  async getMailboxLock() {
    return { release: () => undefined };
  }
  async search() {
    this.commands.push('UID SEARCH ALL');
    return [1, 3, 4];
  }
  async *fetch(range: string, _query: unknown, opts: { changedSince?: bigint }) {
    this.commands.push(`UID FETCH ${range} CHANGEDSINCE ${opts.changedSince}`);
    for (const uid of this.vanished) this.emit('expunge', { path: 'INBOX', uid, vanished: true, earlier: true });
    yield* this.rows;
  }
}

function fakeStore() {
  const applied = { expunged: [] as string[], flags: [] as Array<{ key: string; flags: readonly string[] }> };
  const store = {
    accountId: 'acct',
    list: () => [
      { uid: 10, key: 'i7_1' },
      { uid: 11, key: 'i7_2' },
      { uid: 12, key: 'i7_3' },
      { uid: 13, key: 'i7_4' },
      { uid: 14, key: 'i6_2' }, // an older UIDVALIDITY: not this folder's UID 2
    ],
    applyUpstreamExpunges: async (_f: string, keys: readonly string[]) => {
      applied.expunged.push(...keys);
      return keys.length;
    },
    applyUpstreamFlags: async (_f: string, flags: ReadonlyArray<{ key: string; flags: readonly string[] }>) => {
      applied.flags.push(...flags);
      return flags.length;
    },
  } as unknown as MirrorStore;
  return { store, applied };
}

const log = pino({ level: 'silent' });

test('QRESYNC: VANISHED of cached UIDs expunges them, UIDs never cached are ignored, no listing', async () => {
  const client = new ScriptedClient(
    [2, 99, 100],
    [
      { uid: 1, flags: new Set(['\\Seen', '\\Recent']) },
      { uid: 50, flags: new Set(['\\Seen']) }, // not cached: ignored
    ],
  );
  const { store, applied } = fakeStore();
  const counts = await mirrorFolder(client as unknown as ImapFlow, store, log, 'INBOX', '15');
  assert.deepEqual(client.commands, ['UID FETCH 1:4 CHANGEDSINCE 15']);
  assert.deepEqual(applied.expunged, ['i7_2']);
  assert.deepEqual(applied.flags, [{ key: 'i7_1', flags: ['\\Seen'] }]);
  assert.deepEqual(counts, { flags: 1, expunged: 1 });
  assert.equal(client.listenerCount('expunge'), 0);
});

test('without QRESYNC, or without a stored HIGHESTMODSEQ: one UID SEARCH ALL', async () => {
  for (const [enabled, since] of [
    [['CONDSTORE'], '15'],
    [['CONDSTORE', 'QRESYNC'], undefined],
  ] as const) {
    const client = new ScriptedClient([], []);
    client.enabled = new Set(enabled);
    const { store, applied } = fakeStore();
    await mirrorFolder(client as unknown as ImapFlow, store, log, 'INBOX', since);
    assert.equal(client.commands[0], 'UID SEARCH ALL');
    assert.deepEqual(applied.expunged, ['i7_2']);
  }
});
