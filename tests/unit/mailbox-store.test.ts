/**
 * The local IMAP view of the cache (src/cache/mailbox-store.ts and its parts, docs/imap-server.md)
 * against a real Cache in a temp dir: folders, flags and MODSEQ, UIDNEXT/UIDVALIDITY rules,
 * append/copy/move/expunge durable across a reopen, folder changes, the change journal and its
 * re-keying, the upstream mirror, and the events every writer sends.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { identityOfBytes } from '../../src/cache/content-identity.js';
import { matchByIdentity } from '../../src/cache/known-messages.js';
import type { MailboxOptions } from '../../src/cache/mailbox-account.js';
import { type MailboxEvent, NoSuchFolderError } from '../../src/cache/mailboxes.js';
import { isValidKey, maildirPath, parseName } from '../../src/cache/maildir.js';
import { cacheFaults } from '../reliability/invariants.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const IMAP: MailboxOptions = { protocol: 'imap' };
const POP3: MailboxOptions = { protocol: 'pop3', onLocalDelete: 'keep-upstream' };

async function fresh(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'localpost-mbx-'));
  dirs.push(d);
  return d;
}

function open(dataDir: string): Promise<Cache> {
  return Cache.open({ dataDir, accounts: ['a'], log });
}

const body = (n: string) => Buffer.from(`Message-ID: <${n}@x>\r\nSubject: ${n}\r\n\r\nbody of ${n}\r\n`);

/** Pull-style writes of `keys` into `folder`, committed. */
async function pull(cache: Cache, folder: string, keys: string[]) {
  const store = cache.account('a');
  for (const k of keys) {
    const p = await store.begin(folder, k);
    p.stream.write(body(k));
    await p.finish();
  }
  return store.commit();
}

function events(cache: Cache, opts = IMAP): MailboxEvent[] {
  const out: MailboxEvent[] = [];
  cache.mailboxes('a', opts).onChange((e) => out.push(e));
  return out;
}

describe('MailboxStore', () => {
  it('lists INBOX, folders with rows, POP3 local folders with special use, parents as non-selectable', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    await pull(cache, 'Lists/node', ['i1_1']);
    const mb = cache.mailboxes('a', POP3);
    const list = mb.folders().map((f) => [f.name, f.specialUse ?? '', f.selectable]);
    assert.deepEqual(list, [
      ['INBOX', '', true],
      ['Drafts', '\\Drafts', true],
      ['Lists', '', false],
      ['Lists/node', '', true],
      ['Sent', '\\Sent', true],
      ['Trash', '\\Trash', true],
    ]);
    assert.equal(mb.folder('inbox')?.name, 'INBOX');
    cache.close();
  });

  it('announces pull commits, moves UIDNEXT only on additions, grows MODSEQ with flag changes', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const seen = events(cache);
    const mb = cache.mailboxes('a');
    const before = mb.select('INBOX').info;
    const [m1, m2] = await pull(cache, 'INBOX', ['i1_1', 'i1_2']);
    assert.deepEqual(
      seen.map((e) => e.kind === 'added' && [e.folder, e.messages.map((m) => m.uid)]),
      [['INBOX', [m1?.uid, m2?.uid]]],
    );
    const s1 = mb.select('INBOX');
    assert.equal(s1.info.uidNext, (m2?.uid ?? 0) + 1);
    assert.ok(s1.info.highestModseq > before.highestModseq);
    assert.equal(s1.info.uidValidity, before.uidValidity);
    assert.equal(s1.info.unseen, 2);

    const r = await mb.setFlags('INBOX', [m1!.uid, 999], { op: 'add', flags: ['\\Seen', 'Junk', '$Forwarded'] });
    assert.deepEqual(r.modified, []);
    assert.deepEqual(r.changed[0]?.flags, ['$Forwarded', 'Junk', '\\Seen']);
    const s2 = mb.select('INBOX');
    assert.equal(s2.info.uidNext, s1.info.uidNext, 'no UIDNEXT move for a flag change');
    assert.ok(s2.info.highestModseq > s1.info.highestModseq);
    assert.equal(s2.info.unseen, 1);
    const mod1 = s2.messages[0]!.modseq;
    assert.equal(mod1, s2.info.highestModseq);
    // UNCHANGEDSINCE below the message's MODSEQ: refused and reported
    const r2 = await mb.setFlags('INBOX', [m1!.uid, m2!.uid], {
      op: 'remove',
      flags: ['junk'],
      unchangedSince: mod1 - 1,
    });
    assert.deepEqual(r2.modified, [m1!.uid]);
    assert.deepEqual(r2.changed, []);
    const r3 = await mb.setFlags('INBOX', [m1!.uid], { op: 'replace', flags: ['\\Flagged'] });
    assert.deepEqual(r3.changed[0]?.flags, ['\\Flagged']);
    assert.ok(r3.changed[0]!.modseq > mod1);
    assert.deepEqual(
      seen.filter((e) => e.kind === 'flags').map((e) => e.kind === 'flags' && e.messages.map((m) => m.flags)),
      [[['$Forwarded', 'Junk', '\\Seen']], [['\\Flagged']]],
    );
    cache.close();
    // flags and keywords are state.db's, kept across a reopen (files are not renamed)
    const again = await open(dataDir);
    const s3 = again.mailboxes('a', IMAP).select('INBOX');
    assert.deepEqual(s3.messages[0]?.flags, ['\\Flagged']);
    assert.equal(s3.info.uidValidity, before.uidValidity);
    again.close();
  });

  it('appends, copies and moves durably with new UIDs and local keys, visible after a reopen', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    await mb.createFolder('Archive');
    const [m1, m2] = await pull(cache, 'INBOX', ['i1_1', 'i1_2']);
    const archNext = mb.folder('Archive')!.uidNext;
    const ap = await mb.append('Archive', body('app'), { flags: ['\\Seen', 'Work'], internalDate: 1_700_000_000_000 });
    assert.equal(ap.uidValidity, mb.folder('Archive')!.uidValidity);
    assert.ok(ap.uid >= archNext);
    const copied = await mb.copy('INBOX', [m1!.uid], 'Archive');
    const moved = await mb.move('INBOX', [m2!.uid], 'Archive');
    assert.ok(copied[0]!.to > ap.uid && moved[0]!.to > copied[0]!.to);
    // the moved-out upstream key is tombstoned: the pull will not fetch it again
    assert.ok(cache.account('a').has('INBOX', 'i1_2'));
    cache.close();

    const again = await open(dataDir);
    const mb2 = again.mailboxes('a', IMAP);
    assert.deepEqual(
      mb2.select('INBOX').messages.map((m) => m.uid),
      [m1!.uid],
    );
    const arch = mb2.select('Archive');
    assert.deepEqual(
      arch.messages.map((m) => m.uid),
      [ap.uid, copied[0]!.to, moved[0]!.to],
    );
    assert.deepEqual(arch.messages[0]?.flags, ['Work', '\\Seen']);
    assert.equal(arch.messages[0]?.internalDate, 1_700_000_000_000);
    assert.equal(arch.info.uidNext, moved[0]!.to + 1);
    assert.deepEqual(await mb2.read('Archive', ap.uid), body('app'));
    assert.deepEqual(await mb2.read('Archive', copied[0]!.to), body('i1_1'));
    assert.deepEqual(await mb2.read('Archive', moved[0]!.to), body('i1_2'));
    await assert.rejects(mb2.read('INBOX', m2!.uid));
    for (const m of again.account('a').list('Archive')) assert.match(m.key, /^l[0-9a-f]+$/);
    assert.ok(
      again
        .account('a')
        .list('Archive')
        .every((m) => isValidKey(m.key)),
    );
    // journal: create, append, copy, move in order, with the source keys
    const kinds = again.journal.pending('a').map((e) => e.change);
    assert.deepEqual(
      kinds.map((c) => c.kind),
      ['create', 'append', 'copy', 'move'],
    );
    assert.deepEqual(kinds[3], { kind: 'move', folder: 'INBOX', to: 'Archive', pairs: moved, keys: ['i1_2'] });
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    again.close();
  });

  it('expunges durably and announces it; a POP3 account writes no journal', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const seen = events(cache, POP3);
    const mb = cache.mailboxes('a');
    const [m1, m2] = await pull(cache, 'INBOX', ['p1', 'p2']);
    const hm = mb.folder('INBOX')!.highestModseq;
    assert.deepEqual(await mb.expunge('INBOX', [m2!.uid, 12345]), [m2!.uid]);
    assert.ok(mb.folder('INBOX')!.highestModseq > hm, 'an expunge bumps HIGHESTMODSEQ');
    assert.ok(cache.account('a').has('INBOX', 'p2'), 'tombstoned, not downloaded again');
    await mb.append('Sent', body('sent'));
    await mb.setFlags('INBOX', [m1!.uid], { op: 'add', flags: ['\\Seen'] });
    assert.deepEqual(cache.journal.list('a'), []);
    assert.ok(seen.some((e) => e.kind === 'expunged' && e.uids[0] === m2!.uid));
    cache.close();
    const again = await open(dataDir);
    assert.deepEqual(
      again
        .mailboxes('a', POP3)
        .select('INBOX')
        .messages.map((m) => m.uid),
      [m1!.uid],
    );
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    again.close();
  });

  it('a POP3 or pull removal moves HIGHESTMODSEQ in the transaction that deletes the rows, never after', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', POP3);
    const [m1] = await pull(cache, 'INBOX', ['p1', 'p2']);
    const hm = mb.folder('INBOX')!.highestModseq;
    // Watch every turn of the event loop while the removal unlinks and fsyncs: a QRESYNC client
    // that sees the message gone must see HIGHESTMODSEQ moved (src/listeners/imap/qresync.ts).
    const states = new Set<string>();
    let done = false;
    const removing = cache
      .account('a')
      .remove([m1!.uid])
      .finally(() => {
        done = true;
      });
    while (!done) {
      const f = mb.folder('INBOX')!;
      states.add(`${f.messages} messages, ${f.highestModseq > hm ? 'raised' : 'not raised'}`);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await removing, 1);
    assert.ok(!states.has('1 messages, not raised'), [...states].join('; '));
    assert.ok(mb.folder('INBOX')!.highestModseq > hm);
    cache.close();
  });

  it('an INBOX expunge of a POP3 account honours onLocalDelete: delete-upstream', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', { protocol: 'pop3', onLocalDelete: 'delete-upstream' });
    const [m1, m2] = await pull(cache, 'INBOX', ['p1', 'p2']);
    await mb.expunge('INBOX', [m1!.uid]);
    assert.deepEqual(cache.account('a').pendingUpstreamDeletes('INBOX'), ['p1']);
    cache.mailboxes('a', { protocol: 'pop3', onLocalDelete: 'keep-upstream' });
    await mb.expunge('INBOX', [m2!.uid]);
    assert.deepEqual(cache.account('a').pendingUpstreamDeletes('INBOX'), ['p1']);
    assert.ok(cache.account('a').has('INBOX', 'p2'));
    cache.close();
  });

  it('creates, renames (children follow, UIDVALIDITY kept) and deletes folders; a new one after delete gets a greater UIDVALIDITY', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    await mb.createFolder('Work/2024/');
    assert.ok(mb.folder('Work') && mb.folder('Work/2024'));
    await assert.rejects(mb.createFolder('Work'), { code: 'ALREADYEXISTS' });
    const ap = await mb.append('Work/2024', body('w'));
    const uv = mb.folder('Work')!.uidValidity;
    const uv2 = mb.folder('Work/2024')!.uidValidity;
    await mb.renameFolder('Work', 'Old/Work');
    assert.equal(mb.folder('Work'), undefined);
    assert.equal(mb.folder('Old/Work')!.uidValidity, uv);
    assert.equal(mb.folder('Old/Work/2024')!.uidValidity, uv2);
    assert.deepEqual(await mb.read('Old/Work/2024', ap.uid), body('w'));
    await assert.rejects(mb.deleteFolder('INBOX'), { code: 'CANNOT' });
    await mb.deleteFolder('Old/Work/2024');
    assert.equal(mb.folder('Old/Work/2024'), undefined);
    await mb.createFolder('Old/Work/2024');
    assert.ok(mb.folder('Old/Work/2024')!.uidValidity > uv2);
    assert.equal(mb.select('Old/Work/2024').messages.length, 0);
    cache.close();
    const again = await open(dataDir);
    const mb2 = again.mailboxes('a', IMAP);
    assert.equal(mb2.folder('Old/Work')!.uidValidity, uv);
    assert.equal(existsSync(path.join(maildirPath(dataDir, 'a'), '.Work')), false);
    assert.deepEqual(
      again.journal.pending('a').map((e) => e.change.kind),
      ['create', 'create', 'append', 'rename', 'delete', 'create'],
    );
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    again.close();
  });

  it('a change that fails midway is undone at once: a rename onto a directory in the way renames nothing', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    await mb.createFolder('A/B');
    const ap = await mb.append('A/B', body('ab'));
    const md = maildirPath(dataDir, 'a');
    // a non-empty directory where the child would go: the second rename fails
    await mkdir(path.join(md, '.Z.B', 'cur'), { recursive: true });
    await writeFile(path.join(md, '.Z.B', 'cur', 'x'), 'x');
    await assert.rejects(mb.renameFolder('A', 'Z'));
    assert.ok(existsSync(path.join(md, '.A')) && existsSync(path.join(md, '.A.B')), 'renamed back');
    assert.equal(existsSync(path.join(md, '.Z')), false);
    assert.equal(existsSync(path.join(dataDir, 'accounts', 'a', 'mailbox-intent')), false);
    assert.deepEqual(await mb.read('A/B', ap.uid), body('ab'));
    assert.equal(mb.folder('Z'), undefined);
    cache.close();
  });

  it('renaming INBOX moves its messages to the new folder and leaves INBOX empty', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', POP3);
    const [m1] = await pull(cache, 'INBOX', ['p1']);
    await mb.renameFolder('INBOX', 'Saved');
    assert.equal(mb.select('INBOX').messages.length, 0);
    assert.deepEqual(await mb.read('Saved', m1!.uid), body('p1'));
    cache.close();
    const again = await open(dataDir);
    assert.deepEqual(
      again
        .mailboxes('a', POP3)
        .select('Saved')
        .messages.map((m) => m.uid),
      [m1!.uid],
    );
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    again.close();
  });
});

describe('recovery and the IMAP columns', () => {
  it('a row rebuilt at start-up keeps its keywords, MODSEQ and INTERNALDATE; flags from state.db unless a reader renamed the file', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', POP3);
    const a = await mb.append('INBOX', body('a'), { flags: ['Work'], internalDate: 1_600_000_000_000 });
    const b = await mb.append('INBOX', body('b'), { flags: ['\\Flagged'] });
    await mb.setFlags('INBOX', [b.uid], { op: 'remove', flags: ['\\Flagged'] });
    const before = mb.select('INBOX').messages;
    cache.close(); // no clean-shutdown record: a full recovery reads every name
    // another Maildir reader marks `a` seen, moving it to cur/
    const md = maildirPath(dataDir, 'a');
    const name = (await readdir(path.join(md, 'new'))).find((n) => parseName(n)?.uid === a.uid)!;
    await rename(path.join(md, 'new', name), path.join(md, 'cur', `${name}:2,S`));
    const again = await open(dataDir);
    assert.ok(again.recovery.get('a')!.rebuilt >= 1);
    const after = again.mailboxes('a', POP3).select('INBOX').messages;
    assert.deepEqual(after[0], { ...before[0], flags: ['Work', '\\Seen'] });
    assert.deepEqual(after[1], before[1], 'no flag comes back from the file name');
    again.close();
  });
});

describe('ChangeJournal', () => {
  it('complete() gives local messages their upstream keys in rows and file names', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    const [m1] = await pull(cache, 'INBOX', ['i7_1']);
    await mb.createFolder('Archive');
    const [pair] = await mb.copy('INBOX', [m1!.uid], 'Archive');
    await mb.expunge('Archive', [pair!.to]);
    const [create, copy, expunge] = cache.journal.pending('a');
    assert.deepEqual(expunge?.change, {
      kind: 'expunge',
      folder: 'Archive',
      uids: [pair!.to],
      keys: [`l${pair!.to.toString(16)}`],
    });
    const [ap] = [await mb.append('Archive', body('x'))];
    cache.journal.markInflight(create!.id);
    assert.equal(cache.mirror('a').unresolvedChanges('Archive'), true);
    cache.journal.complete(create!.id);
    cache.journal.markInflight(copy!.id, 'UIDNEXT 5');
    assert.equal(cache.journal.list('a').find((e) => e.id === copy!.id)?.inflightNote, 'UIDNEXT 5');
    // the copy landed upstream as UID 5 of Archive (UIDVALIDITY 9)
    cache.journal.complete(copy!.id, [{ uid: pair!.to, key: 'i9_5' }]);
    assert.ok(cache.account('a').has('Archive', 'i9_5'), 'expunged before its key was known: tombstoned');
    assert.deepEqual(cache.journal.pending('a')[0]?.change, { ...expunge!.change, keys: ['i9_5'] });
    const append = cache.journal.pending('a')[1]!;
    cache.journal.fail(append.id, 'NO [OVERQUOTA]', { permanent: true });
    assert.deepEqual(cache.journal.counts().get('a'), { pending: 1, failed: 1 });
    assert.equal(cache.journal.retry(append.id), true);
    assert.equal(cache.journal.drop(append.id), true);
    cache.journal.complete(cache.journal.pending('a')[0]!.id, []);
    assert.deepEqual(cache.journal.list('a'), []);
    assert.ok(ap.uid > 0);
    cache.close();

    // a rebuild from the Maildir alone keeps the upstream key of the appended-then-rekeyed message
    const dataDir2 = await fresh();
    const c2 = await open(dataDir2);
    const mb2 = c2.mailboxes('a', IMAP);
    const a2 = await mb2.append('INBOX', body('y'));
    const entry = c2.journal.pending('a')[0]!;
    c2.journal.markInflight(entry.id);
    c2.journal.complete(entry.id, [{ uid: a2.uid, key: 'i3_40' }]);
    assert.ok(c2.account('a').has('INBOX', 'i3_40'));
    c2.close();
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) await rm(path.join(dataDir2, f), { force: true });
    const c3 = await open(dataDir2);
    assert.ok(c3.account('a').has('INBOX', 'i3_40'), 'a fresh has() sees the upstream key');
    const names = await readdir(path.join(maildirPath(dataDir2, 'a'), 'new'));
    assert.deepEqual(
      names.map((n) => parseName(n)?.key),
      ['i3_40'],
    );
    c3.close();
  });
});

describe('ChangeJournal and a UIDVALIDITY re-key', () => {
  it("adoptKeys() moves the keys of the folder's entries not done (expunged and moved-out messages too)", async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    const [m1, m2, m3] = await pull(cache, 'INBOX', ['i1_1', 'i1_2', 'i1_3']);
    const [a1] = await pull(cache, 'Archive', ['i8_1']);
    await mb.setFlags('INBOX', [m3!.uid], { op: 'add', flags: ['\\Flagged'] });
    await mb.expunge('INBOX', [m1!.uid]);
    await mb.move('INBOX', [m2!.uid], 'Archive');
    await mb.expunge('Archive', [a1!.uid]); // another folder: untouched
    const failed = cache.journal.pending('a')[1]!;
    cache.journal.fail(failed.id, 'UIDVALIDITY of INBOX changed upstream', { permanent: true });
    const store = cache.account('a');
    const known = await store.known('INBOX', (k) => k.startsWith('i1_'));
    assert.deepEqual(known.map((k) => [k.key, k.kind]).sort(), [
      ['i1_1', 'deleted'],
      ['i1_2', 'deleted'],
      ['i1_3', 'live'],
    ]);
    const listed = ['i1_3', 'i1_1', 'i1_2'].map((k, i) => ({ key: `i2_${i + 1}`, ident: identityOfBytes(body(k)) }));
    assert.equal(await store.adoptKeys('INBOX', matchByIdentity(known, listed)), 3);
    assert.deepEqual(
      cache.journal.list('a').map((e) => [e.change.kind, e.change.folder, 'keys' in e.change ? e.change.keys : []]),
      [
        ['flags', 'INBOX', ['i2_1']],
        ['expunge', 'INBOX', ['i2_2']],
        ['move', 'INBOX', ['i2_3']],
        ['expunge', 'Archive', ['i8_1']],
      ],
    );
    cache.close();
  });
});

describe('ChangeJournal after a crash inside complete()', () => {
  it('a file re-keyed before the crash gives its row the upstream key; complete() again finishes the entry', async () => {
    const dataDir = await fresh();
    const c2 = await open(dataDir);
    const m2 = c2.mailboxes('a', IMAP);
    const a2 = await m2.append('INBOX', body('w'));
    await m2.setFlags('INBOX', [a2.uid], { op: 'add', flags: ['\\Seen'] });
    await m2.copy('INBOX', [a2.uid], 'INBOX');
    const [e1, , e3] = c2.journal.pending('a');
    c2.journal.markInflight(e1!.id, 'UIDNEXT 8');
    // the crash: the file has its new K=, the transaction rolls back
    const db = c2.account('a').deps.ledger.db;
    const real = db.transaction.bind(db);
    db.transaction = ((fn: () => unknown) =>
      real(() => {
        fn();
        throw new Error('killed after the rename, before the commit');
      })) as unknown as typeof db.transaction;
    assert.throws(() => c2.journal.complete(e1!.id, [{ uid: a2.uid, key: 'i5_8' }]), /killed/);
    db.transaction = real;
    assert.equal(c2.journal.pending('a')[0]?.state, 'inflight', 'not done');
    c2.close();
    const c3 = await open(dataDir);
    assert.equal(c3.account('a').message(a2.uid)?.key, 'i5_8', 'recovery took the key from the file name');
    assert.deepEqual(c3.mailboxes('a', IMAP).select('INBOX').messages[0]?.flags, ['\\Seen']);
    c3.journal.complete(e1!.id, [{ uid: a2.uid, key: 'i5_8' }]);
    const left = c3.journal.pending('a');
    assert.deepEqual(
      left.map((e) => e.change.kind),
      ['flags', 'copy'],
    );
    assert.equal(left[1]?.id, e3!.id);
    assert.deepEqual(left[1]?.change.kind === 'copy' && left[1].change.keys, ['i5_8']);
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    c3.close();
  });
});

describe('UpstreamMirror', () => {
  it('merges upstream flags (a pending local change wins for its flags) and applies upstream expunges', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    const seen = events(cache);
    const [m1, m2] = await pull(cache, 'INBOX', ['i1_1', 'i1_2']);
    await mb.setFlags('INBOX', [m1!.uid], { op: 'add', flags: ['\\Flagged'] }); // still queued
    const mirror = cache.mirror('a');
    const n = await mirror.applyUpstreamFlags('INBOX', [
      { key: 'i1_1', flags: ['\\Seen'] }, // \Flagged is pending locally: kept
      { key: 'i1_2', flags: ['\\Answered', 'Later'] },
      { key: 'i1_99', flags: ['\\Seen'] },
    ]);
    assert.equal(n, 2);
    const msgs = mb.select('INBOX').messages;
    assert.deepEqual(msgs[0]?.flags, ['\\Flagged', '\\Seen']);
    assert.deepEqual(msgs[1]?.flags, ['Later', '\\Answered']);
    assert.equal(await mirror.applyUpstreamExpunges('INBOX', ['i1_2']), 1);
    assert.deepEqual(
      mb.select('INBOX').messages.map((m) => m.uid),
      [m1!.uid],
    );
    assert.ok(cache.account('a').has('INBOX', 'i1_2'), 'a removed key is not fetched again');
    assert.ok(seen.some((e) => e.kind === 'expunged' && e.uids[0] === m2!.uid));
    await mirror.noteUpstreamFolders([{ name: 'Sent Items', specialUse: '\\Sent', pulled: true }]);
    assert.equal(mb.folder('Sent Items')?.specialUse, '\\Sent');
    // an upstream folder outside the pulled set is hidden, its mail kept; a local CREATE brings it back
    await mirror.noteUpstreamFolders([
      { name: 'INBOX', pulled: false },
      { name: 'Sent Items', pulled: false },
    ]);
    assert.equal(mb.folder('Sent Items'), undefined);
    assert.deepEqual(
      mb.folders().map((f) => f.name),
      ['INBOX'],
      'INBOX is always shown',
    );
    assert.throws(() => mb.select('Sent Items'), NoSuchFolderError);
    await mb.createFolder('Sent Items');
    assert.equal(mb.folder('Sent Items')?.specialUse, '\\Sent', 'the same folder, back');
    assert.deepEqual(mirror.localFolders(), ['Sent Items']);
    await mirror.noteUpstreamFolders([{ name: 'Sent Items', pulled: false }]);
    assert.ok(mb.folder('Sent Items'), 'a folder created locally stays shown');
    assert.equal(mirror.unresolvedChanges('INBOX'), false);
    await cache.account('a').releaseSpares();
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    cache.close();
  });
});

describe('UpstreamMirror: folders gone upstream', () => {
  it('kept while they hold mail not upstream or the listing lacks INBOX, else removed with cursor and tombstones', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    await pull(cache, 'Work', ['i3_1', 'i3_2']);
    cache.setCursor('a', 'Work', { uidValidity: '3', lastUid: 2 });
    await mb.expunge('Work', [mb.select('Work').messages[0]!.uid]); // a tombstone
    const { uid } = await mb.append('Work', body('local'));
    for (const e of cache.journal.pending('a')) cache.journal.drop(e.id); // no entry names it now
    const mirror = cache.mirror('a');
    assert.deepEqual(await mirror.reconcileUpstreamFolders([]), { adopted: [], removed: [], kept: [], waiting: [] });
    const inbox = [{ name: 'INBOX', path: 'INBOX' }];
    const kept = await mirror.reconcileUpstreamFolders(inbox);
    assert.deepEqual(kept.kept, [{ folder: 'Work', why: '1 message(s) created locally are not upstream yet' }]);
    assert.equal(mb.select('Work').messages.length, 2);
    await mb.expunge('Work', [uid]);
    for (const e of cache.journal.pending('a')) cache.journal.drop(e.id);
    const stillThere = await mirror.reconcileUpstreamFolders(inbox, async () => false); // STATUS answered
    assert.deepEqual(stillThere.kept, [
      { folder: 'Work', why: 'not in the LIST but still there upstream (STATUS answered)' },
    ]);
    assert.equal(mb.select('Work').messages.length, 1);
    const seen = events(cache);
    assert.deepEqual((await mirror.reconcileUpstreamFolders(inbox, async () => true)).removed, ['Work']);
    assert.equal(mb.folder('Work'), undefined);
    assert.equal(cache.getCursor('a', 'Work'), undefined);
    assert.equal(cache.account('a').has('Work', 'i3_1'), false, 'a folder of that name later is another one');
    assert.deepEqual(
      seen.map((e) => e.kind),
      ['expunged', 'folders'],
    );
    assert.equal(cache.journal.pending('a').length, 0, 'no journal entry');
    await cache.account('a').releaseSpares();
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    cache.close();
  });
});

describe('UpstreamMirror: a folder cached under its upstream spelling', () => {
  it('takes its name once no journal entry names it; until then the new name waits and the old one stays', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    const [m] = await pull(cache, 'INBOX.Sent', ['i7_1']);
    cache.setCursor('a', 'INBOX.Sent', { uidValidity: '7', lastUid: 1 });
    await mb.setFlags('INBOX.Sent', [m!.uid], { op: 'add', flags: ['\\Seen'] }); // still queued
    const mirror = cache.mirror('a');
    const listed = [
      { name: 'INBOX', path: 'INBOX' },
      { name: 'INBOX/Sent', path: 'INBOX.Sent' },
    ];
    const r = await mirror.reconcileUpstreamFolders(listed);
    assert.deepEqual(
      r.waiting.map((w) => w.folder),
      ['INBOX/Sent'],
    );
    assert.deepEqual(
      r.kept.map((k) => k.folder),
      ['INBOX.Sent'],
    );
    assert.equal(mb.select('INBOX.Sent').messages.length, 1);
    for (const e of cache.journal.pending('a')) cache.journal.complete(e.id);
    const r2 = await mirror.reconcileUpstreamFolders(listed);
    assert.deepEqual(r2.adopted, [{ from: 'INBOX.Sent', to: 'INBOX/Sent' }]);
    assert.deepEqual(r2.removed, []);
    assert.deepEqual(
      mb.select('INBOX/Sent').messages.map((x) => x.flags),
      [['\\Seen']],
    );
    assert.equal(mb.folder('INBOX.Sent'), undefined);
    assert.equal(cache.getCursor('a', 'INBOX/Sent')?.lastUid, 1);
    assert.ok(cache.account('a').has('INBOX/Sent', 'i7_1'));
    await cache.account('a').releaseSpares();
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    cache.close();
  });
});

describe('state.db schema 10 (the folder set)', () => {
  it('folders created locally before the upgrade are found in the journal', async () => {
    const dataDir = await fresh();
    let cache = await open(dataDir);
    const mb = cache.mailboxes('a', IMAP);
    await mb.createFolder('Mine');
    await mb.createFolder('Old');
    await mb.renameFolder('Old', 'Renamed');
    cache.close();
    // the database as schema 9 left it
    const db = new Database(path.join(dataDir, 'state.db'));
    db.exec(`ALTER TABLE folders DROP COLUMN local; ALTER TABLE folders DROP COLUMN shown;
      ALTER TABLE sync_history DROP COLUMN missing_folders; PRAGMA user_version = 9;`);
    db.close();
    cache = await open(dataDir);
    const names = cache
      .mailboxes('a', IMAP)
      .folders()
      .map((f) => f.name);
    assert.deepEqual(names, ['INBOX', 'Mine', 'Renamed']);
    assert.deepEqual(cache.mirror('a').localFolders(), ['Mine', 'Renamed']);
    cache.close();
  });
});

describe('events from the POP3 side', () => {
  it('trash() announces expunged in the folder (old UID) and added in Trash (new UID)', async () => {
    const dataDir = await fresh();
    const cache = await open(dataDir);
    const seen = events(cache, POP3);
    const [m1] = await pull(cache, 'INBOX', ['p1']);
    seen.length = 0;
    const hm = cache.mailboxes('a').folder('Trash')!.highestModseq;
    await cache.account('a').trash([m1!.uid], { deleteUpstream: false });
    assert.ok(cache.mailboxes('a').folder('Trash')!.highestModseq > hm, 'an addition to Trash takes a MODSEQ');
    const trash = cache.mailboxes('a').select('Trash');
    const t1 = trash.messages[0]?.uid as number;
    assert.ok(t1 > m1!.uid, 'a new UID in Trash');
    assert.deepEqual(seen, [
      { kind: 'expunged', folder: 'INBOX', uids: [m1!.uid] },
      { kind: 'added', folder: 'Trash', messages: trash.messages },
    ]);
    assert.deepEqual(
      trash.messages.map((m) => [m.uid, m.flags]),
      [[t1, ['\\Seen']]],
    );
    assert.ok(trash.info.uidNext > t1);
    seen.length = 0;
    await cache.account('a').remove([t1]);
    assert.deepEqual(seen, [{ kind: 'expunged', folder: 'Trash', uids: [t1] }]);
    cache.close();
  });

  it('a message moved to Trash gets a UID at or above its UIDNEXT; name, key, flags, keywords and date follow', async () => {
    const dataDir = await fresh();
    let cache = await open(dataDir);
    const mb = cache.mailboxes('a', POP3);
    const [m1, m2] = await pull(cache, 'INBOX', ['p1', 'p2']);
    await mb.setFlags('INBOX', [m1!.uid], { op: 'add', flags: ['\\Flagged', 'Work'] });
    const date1 = mb.select('INBOX').messages[0]?.internalDate;
    await cache.account('a').trash([m2!.uid], { deleteUpstream: true });
    const next = mb.folder('Trash')!.uidNext;
    await cache.account('a').trash([m1!.uid], { deleteUpstream: true });
    const trash = mb.select('Trash').messages;
    assert.equal(trash.length, 2);
    const t1 = trash[1]!;
    assert.ok(t1.uid >= next, `UID ${t1.uid} at or above the UIDNEXT ${next} a client saw`);
    assert.deepEqual([...t1.flags].sort(), ['Work', '\\Flagged', '\\Seen']);
    assert.equal(t1.internalDate, date1);
    assert.ok(mb.folder('Trash')!.uidNext > t1.uid);
    const names = await readdir(path.join(maildirPath(dataDir, 'a'), '.Trash', 'cur'));
    const parsed = names.map((n) => parseName(n)!).sort((a, b) => a.uid - b.uid);
    assert.deepEqual(
      parsed.map((p) => [p.uid, p.key, p.flags]),
      [
        [trash[0]!.uid, 'p2', 'S'],
        [t1.uid, 'p1', 'FS'],
      ],
    );
    assert.deepEqual(await readdir(path.join(maildirPath(dataDir, 'a'), 'new')), [], 'the INBOX files are gone');
    const store = cache.account('a');
    assert.ok(store.has('INBOX', 'p1') && store.has('INBOX', 'p2'), 'tombstoned: never fetched again');
    assert.deepEqual(store.pendingUpstreamDeletes('INBOX'), ['p1', 'p2']);
    await store.releaseSpares();
    assert.deepEqual(cacheFaults(dataDir, 'a'), []);
    cache.close();
    cache = await open(dataDir); // a full recovery agrees with the names
    assert.deepEqual(
      cache
        .mailboxes('a', POP3)
        .select('Trash')
        .messages.map((m) => m.uid),
      trash.map((m) => m.uid),
    );
    cache.close();
  });
});
