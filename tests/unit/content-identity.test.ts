/**
 * Content identity (src/cache/content-identity.ts) and matching by it (src/cache/known-messages.ts):
 * the Message-ID of a folded header, brackets, the digest when there is none; one-to-one pairing
 * of duplicates; and the store's `known()` + `adoptKeys()` carrying a live row, a tombstone with
 * its Trash row, and a purged tombstone to new keys.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import {
  identityOf,
  identityOfBytes,
  identityOfDigest,
  identityOfFile,
  messageIdOfHeader,
} from '../../src/cache/content-identity.js';
import { type KnownMessage, matchByIdentity } from '../../src/cache/known-messages.js';
import { parseName } from '../../src/cache/maildir.js';
import { storeWholeMessage, TRASH } from '../../src/cache/message-store.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'localpost-ident-'));
  dirs.push(d);
  return d;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('content identity', () => {
  it('takes the Message-ID of a folded header, with or without brackets, and the size', async () => {
    const folded = Buffer.from(
      'Subject: x\r\nMessage-ID:\r\n  <abc.1@Example.test>\r\nX: y\r\n\r\nMessage-ID: <body@x>\r\n',
    );
    assert.equal(messageIdOfHeader(folded), '<abc.1@Example.test>');
    assert.equal(identityOfBytes(folded), `mid:abc.1@Example.test:${folded.length}`);
    assert.equal(identityOf('<abc.1@Example.test>', 7), identityOf(' abc.1@Example.test ', 7));
    assert.notEqual(identityOf('<a@x>', 7), identityOf('<A@x>', 7), 'the local part is case-sensitive');
    assert.notEqual(identityOf('<a@x>', 7), identityOf('<a@x>', 8), 'the size is part of it');
    assert.equal(messageIdOfHeader(Buffer.from('message-id: bare@x\n\n')), 'bare@x');
    assert.equal(identityOf('<>', 5), undefined);
    const dir = await tempDir();
    await writeFile(path.join(dir, 'm'), folded);
    assert.equal(await identityOfFile(path.join(dir, 'm')), identityOfBytes(folded));
  });

  it('is the digest of the bytes when there is no Message-ID (a Message-ID in the body does not count)', async () => {
    const raw = Buffer.from('Subject: none\r\n\r\nMessage-ID: <in.body@x>\r\n');
    assert.equal(messageIdOfHeader(raw), undefined);
    assert.equal(identityOfBytes(raw), identityOfDigest(sha(raw)));
    const dir = await tempDir();
    await writeFile(path.join(dir, 'm'), raw);
    assert.equal(await identityOfFile(path.join(dir, 'm')), identityOfDigest(sha(raw)));
  });
});

describe('matchByIdentity', () => {
  it('pairs duplicates one to one, in listing order', () => {
    const known: KnownMessage[] = [
      { key: 'i1_1', ident: 'mid:a:1', kind: 'live' },
      { key: 'i1_2', ident: 'mid:a:1', kind: 'deleted' },
      { key: 'i1_3', ident: 'mid:b:1', kind: 'live' },
    ];
    const listed = [
      { key: 'i2_10', ident: 'mid:a:1' },
      { key: 'i2_11', ident: 'mid:a:1' },
      { key: 'i2_12', ident: 'mid:a:1' },
      { key: 'i2_13', ident: 'mid:c:1' },
    ];
    assert.deepEqual(matchByIdentity(known, listed), [
      { from: 'i1_1', to: 'i2_10', kind: 'live' },
      { from: 'i1_2', to: 'i2_11', kind: 'deleted' },
    ]);
  });

  it('leaves known messages already under a listed key alone', () => {
    const known: KnownMessage[] = [
      { key: 'i2_10', ident: 'mid:a:1', kind: 'live' },
      { key: 'i1_5', ident: 'mid:a:1', kind: 'deleted' },
    ];
    assert.deepEqual(matchByIdentity(known, [{ key: 'i2_10', ident: 'mid:a:1' }]), []);
    assert.deepEqual(
      matchByIdentity(known, [
        { key: 'i2_10', ident: 'mid:a:1' },
        { key: 'i2_11', ident: 'mid:a:1' },
      ]),
      [{ from: 'i1_5', to: 'i2_11', kind: 'deleted' }],
    );
  });
});

describe('known() and adoptKeys()', () => {
  it('moves a live row, a tombstone with its Trash row, and a purged tombstone to the new keys', async () => {
    const dataDir = await tempDir();
    const cache = await Cache.open({ dataDir, accounts: ['a'], log });
    const store = cache.account('a');
    const msg = (n: number, id = true) =>
      Buffer.from(`${id ? `Message-ID: <m${n}@x>\r\n` : ''}Subject: ${n}\r\n\r\nbody ${n}\r\n`);
    for (const n of [1, 2, 3]) await storeWholeMessage(store, 'INBOX', `i1_${n}`, msg(n, n !== 2));
    const [m1, m2, m3] = store.list('INBOX');
    assert.equal(await store.trash([m2!.uid, m3!.uid], { deleteUpstream: true }), 2);
    const inTrash = new Map(store.list(TRASH).map((m) => [m.key, m.uid])); // new UIDs there
    assert.equal(await store.remove([inTrash.get('i1_3') as number]), 1); // purged from Trash: tombstone only

    const known = await store.known('INBOX', (k) => k.startsWith('i1_'));
    assert.deepEqual(known.map((k) => [k.key, k.kind, k.ident]).sort(), [
      ['i1_1', 'live', identityOfBytes(msg(1))],
      ['i1_2', 'deleted', identityOfBytes(msg(2, false))],
      ['i1_3', 'deleted', identityOfBytes(msg(3))],
    ]);
    assert.ok(identityOfBytes(msg(2, false)).startsWith('sha256:'));
    const listed = [3, 1, 2].map((n, i) => ({ key: `i2_${i + 1}`, ident: identityOfBytes(msg(n, n !== 2)) }));
    const moves = matchByIdentity(known, listed);
    assert.equal(await store.adoptKeys('INBOX', moves), 3);
    assert.equal(await store.adoptKeys('INBOX', moves), 0, 'idempotent');

    const live = store.list('INBOX');
    assert.deepEqual(
      live.map((m) => [m.uid, m.key]),
      [[m1!.uid, 'i2_2']],
    );
    assert.equal(parseName(path.basename(live[0]!.path))?.key, 'i2_2');
    assert.deepEqual(await readFile(live[0]!.path), msg(1));
    const trash = store.list(TRASH);
    assert.deepEqual(
      trash.map((m) => [m.uid, m.key]),
      [[inTrash.get('i1_2'), 'i2_3']],
    );
    assert.ok(existsSync(trash[0]!.path) && parseName(path.basename(trash[0]!.path))?.key === 'i2_3');
    for (const k of ['i2_1', 'i2_2', 'i2_3']) assert.ok(store.has('INBOX', k), `${k} known`);
    for (const k of ['i1_1', 'i1_2', 'i1_3']) assert.ok(!store.has('INBOX', k), `${k} moved`);
    assert.deepEqual(store.pendingUpstreamDeletes('INBOX').sort(), ['i2_1', 'i2_3'], 'upstream deletions follow');
    assert.deepEqual(await store.known('INBOX', (k) => k.startsWith('i1_')), []);
    cache.close();

    // The moves survive a restart (recovery reads the renamed files).
    const again = await Cache.open({ dataDir, accounts: ['a'], log });
    const s2 = again.account('a');
    assert.deepEqual(
      s2.list('INBOX').map((m) => m.key),
      ['i2_2'],
    );
    assert.deepEqual(
      s2.list(TRASH).map((m) => m.key),
      ['i2_3'],
    );
    assert.ok(s2.has('INBOX', 'i2_1') && s2.has('INBOX', 'i2_3'));
    again.close();
  });
});
