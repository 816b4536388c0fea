/**
 * Folders that change upstream come back into an IMAP account's cache, against the real Dovecot of
 * the testbed (delimiter `.`), with Python's imaplib as another device (docs/imap-server.md "Which
 * folders"): a folder deleted upstream goes locally at the next pull (an upstream expunge wins),
 * unless a local change to it is still to be carried; one renamed upstream shows under its new
 * name only; a journaled DELETE or RENAME of a folder already gone upstream ends done; a folder an
 * older localpost cached under its upstream spelling (`INBOX.Sent`) takes its name (`INBOX/Sent`)
 * without downloading anything again.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { Cache } from '../../src/cache/cache.js';
import { folderDir } from '../../src/cache/maildir.js';
import { createFetcher } from '../../src/daemon/accounts.js';
import { ImapServer } from '../../src/listeners/imap/server.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { journalTestbed, message } from '../support/journal-testbed.js';
import { imaplibState, runPython } from '../support/python.js';

const USERS = ['fla', 'flb', 'flc', 'fld', 'fle', 'flf', 'flg', 'flh'];
const { bed, log, pythonImap, imapAccount, upstreamFolder, accountConfig } = journalTestbed(USERS);

const closers: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** An IMAP account pulling `user`, served by a local IMAP server. */
async function setup(user: string) {
  const acct = await imapAccount(user);
  const { cache } = acct;
  const server = new ImapServer({
    hosts: ['127.0.0.1'],
    port: 0,
    auth: new LocalAuth([{ accountId: 'acct', username: 'acct', password: 'localpw' }], { baseDelayMs: 0 }),
    hooks: { openAccount: () => acct.view },
    log,
  });
  await server.start();
  closers.push(
    () => server.stop(),
    () => cache.close(),
  );
  const pull = (folders: string[] = ['*']) => acct.pull(undefined, folders);
  /** Folder → Message-IDs, as a client of the local IMAP server sees them. */
  const local = async (): Promise<Record<string, string[]>> => {
    const st = await imaplibState(server.port, 'acct', 'localpw');
    return Object.fromEntries(
      Object.entries(st).map(([f, s]) => [f, s.messages.map((m) => m.mid ?? '').sort()] as const),
    );
  };
  /** What a client's SELECT of `folder` on the local server answers (type and text). */
  const select = async (folder: string): Promise<string> =>
    (
      await runPython(
        `import imaplib, sys\nm = imaplib.IMAP4('127.0.0.1', ${server.port})\nm.login('acct', 'localpw')\n` +
          `t, d = m.select('"${folder}"')\nprint(t, d[0].decode())\nm.logout()\n`,
        [],
      )
    ).trim();
  const dir = (folder: string) => folderDir(cache.account('acct').deps.maildir, folder);
  return { ...acct, pull, local, select, dir, port: () => server.port };
}

describe('upstream folder changes in the cache', () => {
  test('a folder deleted upstream goes locally, with its files; a session with it selected gets BYE; SELECT answers NONEXISTENT', {
    timeout: 60_000,
  }, async () => {
    const user = 'fla';
    await bed().appendMessage(user, message('a1@fl'));
    upstreamFolder(user, 'Projects', ['p1@fl', 'p2@fl']);
    const { pull, local, select, view, dir, cache, port } = await setup(user);
    assert.equal((await pull()).newMessages, 3);
    assert.deepEqual((await local()).Projects, ['p1@fl', 'p2@fl']);
    assert.ok(existsSync(dir('Projects')));
    const events: string[] = [];
    view.onChange((e) => events.push(e.kind === 'folders' ? 'folders' : `${e.kind} ${e.folder}`));
    // a client with it selected is told: BYE (as Dovecot does for a folder deleted elsewhere)
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: port(),
      secure: false,
      doSTARTTLS: false,
      auth: { user: 'acct', pass: 'localpw' },
      logger: false,
    });
    await client.connect();
    await client.mailboxOpen('Projects');
    const closed = new Promise((resolve) => client.once('close', resolve));

    pythonImap(user, `m.delete('Projects')`);
    const r = await pull();
    await closed;
    assert.equal(r.newMessages, 0);
    assert.deepEqual(Object.keys(await local()).sort(), ['Archive', 'INBOX'], 'the testbed has an empty Archive');
    assert.match(await select('Projects'), /^NO \[NONEXISTENT\]/);
    assert.equal(existsSync(dir('Projects')), false, 'its Maildir folder is gone');
    assert.equal(cache.getCursor('acct', 'Projects'), undefined, 'its cursor is gone');
    assert.deepEqual(events, ['expunged Projects', 'folders']);
    assert.equal(cache.journal.list('acct').length, 0, 'no journal entry: it happened upstream');

    // created again upstream by another device: a new folder, pulled in full
    upstreamFolder(user, 'Projects', ['p3@fl']);
    assert.equal((await pull()).newMessages, 1);
    assert.deepEqual((await local()).Projects, ['p3@fl']);
  });

  test('a folder with a local change not carried upstream is kept until the change is dropped', async () => {
    const user = 'flb';
    upstreamFolder(user, 'Keep', ['k1@fl']);
    const { pull, local, view, journal } = await setup(user);
    await pull();
    const uid = view.select('Keep').messages[0]?.uid as number;
    await view.setFlags('Keep', [uid], { op: 'add', flags: ['\\Flagged'] });
    pythonImap(user, `m.delete('Keep')`);
    await pull();
    const failed = journal.list('acct');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.state, 'failed', 'the replay fails it visibly');
    assert.deepEqual((await local()).Keep, ['k1@fl'], 'kept while its change is not done');
    journal.drop(failed[0]?.id as number);
    await pull();
    assert.equal((await local()).Keep, undefined, 'removed once the change is dropped');
  });

  test('a folder renamed upstream shows under its new name only', async () => {
    const user = 'flc';
    upstreamFolder(user, 'Old', ['o1@fl', 'o2@fl']);
    const { pull, local } = await setup(user);
    await pull();
    pythonImap(user, `m.rename('Old', 'New')`);
    await pull();
    const seen = await local();
    assert.equal(seen.Old, undefined);
    assert.deepEqual(seen.New, ['o1@fl', 'o2@fl']);
  });

  test('a journaled DELETE or RENAME of a folder already deleted upstream ends done', async () => {
    const user = 'fld';
    upstreamFolder(user, 'Gone', ['g1@fl']);
    upstreamFolder(user, 'Moved', ['m1@fl']);
    const { pull, local, view, journal } = await setup(user);
    await pull();
    await view.deleteFolder('Gone');
    await view.renameFolder('Moved', 'Elsewhere');
    pythonImap(user, `m.delete('Gone')\nm.delete('Moved')`);
    const r = await pull();
    assert.equal(r.replayed, 2);
    assert.deepEqual(journal.list('acct'), [], 'both done, none failed');
    // the renamed folder's upstream copy is gone: an upstream expunge wins
    assert.deepEqual(Object.keys(await local()).sort(), ['Archive', 'INBOX']);
  });

  test('a folder renamed locally whose RENAME the upstream refuses is not pulled again under its old name', async () => {
    const user = 'flh';
    upstreamFolder(user, 'Work', ['w1@fl', 'w2@fl']);
    const { pull, local, view, journal } = await setup(user);
    await pull();
    upstreamFolder(user, 'Done', []); // another device takes the name first: the RENAME is refused
    await view.renameFolder('Work', 'Done');
    const r = await pull();
    assert.equal(journal.pending('acct').length, 1, 'the rename still waits');
    assert.equal(r.newMessages, 0, 'the old name is not downloaded again');
    const seen = await local();
    assert.equal(seen.Work, undefined);
    assert.deepEqual(seen.Done, ['w1@fl', 'w2@fl']);
  });

  test('upgrade: a folder cached as INBOX.Sent by an older localpost becomes INBOX/Sent, nothing downloaded again', async () => {
    const user = 'fle';
    upstreamFolder(user, 'INBOX.Sent', ['s1@fl', 's2@fl']);
    const acct = await setup(user);
    const { pull, local, cache, dir } = acct;
    // the older localpost's state: the folder's mail and cursor under `INBOX.Sent`, and the
    // empty `INBOX/Sent` row its folder listing added
    const last = await cachedAs(acct, user, 'INBOX.Sent');
    cache.account('acct').ensureFolderRow('INBOX/Sent');
    assert.ok(existsSync(dir('INBOX.Sent')));

    const r = await pull(['INBOX.Sent']);
    assert.equal(r.newMessages, 0, 'nothing downloaded again');
    const seen = await local();
    assert.deepEqual(Object.keys(seen).sort(), ['INBOX', 'INBOX/Sent'], 'listed once, under its name');
    assert.deepEqual(seen['INBOX/Sent'], ['s1@fl', 's2@fl']);
    assert.equal(existsSync(dir('INBOX.Sent')), false);
    assert.equal(cache.getCursor('acct', 'INBOX.Sent'), undefined);
    assert.equal(cache.getCursor('acct', 'INBOX/Sent')?.lastUid, last, 'the cursor moved with it');
    assert.ok(existsSync(path.join(dir('INBOX/Sent'), 'cur')) || existsSync(path.join(dir('INBOX/Sent'), 'new')));
    // and later pulls stay at zero
    assert.equal((await pull(['INBOX.Sent'])).newMessages, 0);
  });

  test('upgrade: a second copy a version in between downloaded is removed under the old spelling', async () => {
    const user = 'flf';
    upstreamFolder(user, 'INBOX.Sent', ['d1@fl']);
    const acct = await setup(user);
    await cachedAs(acct, user, 'INBOX.Sent');
    await cachedAs(acct, user, 'INBOX/Sent');
    assert.deepEqual(Object.keys(await acct.local()).sort(), ['INBOX', 'INBOX.Sent', 'INBOX/Sent']);
    assert.equal((await acct.pull(['INBOX.Sent'])).newMessages, 0);
    assert.deepEqual(await acct.local(), { INBOX: [], 'INBOX/Sent': ['d1@fl'] });
  });

  test('upgrade with the local IMAP server off: the pull of createFetcher downloads nothing again either', async () => {
    const user = 'flg';
    upstreamFolder(user, 'INBOX.Sent', ['g1@fl', 'g2@fl']);
    const { cfg, acc } = accountConfig(user, ['INBOX.Sent']);
    const cache = await Cache.open({ dataDir: cfg.dataDir, accounts: ['acct'], log });
    closers.push(() => cache.close());
    await cachedAs({ cache }, user, 'INBOX.Sent');
    const r = await (await createFetcher(acc, cache, log)).pull(); // no `changes`: the listener is off
    assert.equal(r.newMessages, 0);
    assert.equal(cache.account('acct').list('INBOX/Sent').length, 2);
    assert.equal(cache.account('acct').list('INBOX.Sent').length, 0);
  });
});

/** Cache the upstream `INBOX.Sent` of `user` under the local name `as`, with its cursor, as an older localpost did; returns the cursor's UID. */
async function cachedAs(acct: { cache: Cache }, user: string, as: string): Promise<number> {
  const { cache } = acct;
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: bed().imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass: `${user}pw` },
    logger: false,
  });
  await client.connect();
  const mb = await client.mailboxOpen('INBOX.Sent', { readOnly: true });
  const store = cache.account('acct');
  let last = 0;
  for await (const m of client.fetch('1:*', { uid: true, source: true })) {
    const p = await store.begin(as, `i${mb.uidValidity}_${m.uid}`);
    p.stream.write(m.source);
    await p.finish();
    last = Math.max(last, m.uid);
  }
  await client.logout();
  await store.commit(() => cache.setCursor('acct', as, { uidValidity: String(mb.uidValidity), lastUid: last }));
  return last;
}
