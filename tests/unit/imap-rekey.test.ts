/**
 * The IMAP re-key after a UIDVALIDITY change (src/upstream/imap/rekey.ts) against a scripted
 * client: it resumes after a crash without pairing a duplicate twice, and fetches message bodies
 * only for listed messages without a Message-ID and only when a known record has a digest
 * identity. The real-server rounds are in tests/integration/uidvalidity.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { storeWholeMessage, TRASH } from '../../src/cache/message-store.js';
import { rekeyFolder } from '../../src/upstream/imap/rekey.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function openStore() {
  const d = await mkdtemp(path.join(os.tmpdir(), 'localpost-rekey-'));
  dirs.push(d);
  const cache = await Cache.open({ dataDir: d, accounts: ['a'], log });
  return { cache, store: cache.account('a') };
}

/** A folder of `messages` (UID → bytes) answering imapflow's fetch(); records each query. */
function scripted(messages: Map<number, Buffer>) {
  const queries: string[] = [];
  const client = {
    mailbox: { exists: messages.size },
    async *fetch(range: string, q: { headers?: string[]; source?: boolean }) {
      queries.push(q.source ? `source ${range}` : `list ${range}`);
      const uids = range === '1:*' ? [...messages.keys()] : range.split(',').map(Number);
      for (const uid of uids) {
        const raw = messages.get(uid);
        if (!raw) continue;
        if (q.source) yield { uid, source: raw };
        else {
          const head = /^Message-ID:.*\r\n/im.exec(raw.toString('latin1'))?.[0] ?? '';
          yield { uid, size: raw.length, headers: Buffer.from(`${head}\r\n`, 'latin1') };
        }
      }
    },
    async download(uid: string) {
      queries.push(`download ${uid}`);
      const raw = messages.get(Number(uid));
      return raw ? { content: Readable.from([raw.subarray(0, 1000), raw.subarray(1000)]) } : {};
    },
  };
  return { client: client as unknown as ImapFlow, queries };
}

const withId = (n: number) => Buffer.from(`Message-ID: <m${n}@x>\r\nSubject: ${n}\r\n\r\nbody\r\n`);
const noId = (n: number) => Buffer.from(`Subject: ${n}\r\n\r\nbody ${n}\r\n`);

describe('IMAP re-key', () => {
  it('resumes after a crash: two copies of one message end up under the two new keys', async () => {
    const { cache, store } = await openStore();
    for (const k of ['i1_1', 'i1_2']) await storeWholeMessage(store, 'INBOX', k, withId(7));
    // the first copy was adopted before the crash; the cursor still names UIDVALIDITY 1
    assert.equal(await store.adoptKeys('INBOX', [{ from: 'i1_1', to: 'i2_5' }]), 1);
    const { client } = scripted(
      new Map([
        [5, withId(7)],
        [6, withId(7)],
      ]),
    );
    assert.equal(await rekeyFolder(client, store, log, 'INBOX', '1', '2'), 1);
    assert.deepEqual(
      store.list('INBOX').map((m) => m.key),
      ['i2_5', 'i2_6'],
    );
    cache.close();
  });

  it('digests bodies only of listed messages without a Message-ID, and only when a known record needs it', async () => {
    const { cache, store } = await openStore();
    await storeWholeMessage(store, 'INBOX', 'i1_1', withId(1));
    await storeWholeMessage(store, 'INBOX', 'i1_2', noId(2));
    const upstream = new Map([
      [10, withId(1)],
      [11, noId(2)],
      [12, noId(3)],
    ]);
    const first = scripted(upstream);
    assert.equal(await rekeyFolder(first.client, store, log, 'INBOX', '1', '2'), 2);
    assert.deepEqual(first.queries, ['list 1:*', 'source 11,12']);
    assert.deepEqual(
      store.list('INBOX').map((m) => m.key),
      ['i2_10', 'i2_11'],
    );

    cache.close();

    // Only Message-ID identities known (one of them deleted, in Trash): no body is fetched.
    const { cache: c2, store: s2 } = await openStore();
    await storeWholeMessage(s2, 'INBOX', 'i1_1', withId(1));
    await s2.trash(
      s2.list('INBOX').map((m) => m.uid),
      { deleteUpstream: false },
    );
    const again = scripted(
      new Map([
        [20, withId(1)],
        [21, noId(3)],
      ]),
    );
    assert.equal(await rekeyFolder(again.client, s2, log, 'INBOX', '1', '3'), 1);
    assert.deepEqual(again.queries, ['list 1:*']);
    assert.ok(s2.has('INBOX', 'i3_20') && !s2.has('INBOX', 'i3_21'));
    assert.deepEqual(
      s2.list(TRASH).map((m) => m.key),
      ['i3_20'],
    );
    c2.close();
  });
});
