/**
 * Which folders an IMAP account shows through the local IMAP server and pulls, against the real
 * Dovecot of the testbed (its Sent, Drafts, Trash and Junk carry special use once created, Archive
 * is \Archive): shown = pulled. The special-use folders come with the default `folders: [INBOX]`,
 * with their upstream content; Archive and other folders only through a matching pattern; a folder
 * created upstream by another device appears at the next pull when it matches; a folder created
 * locally is pulled after its replay; a configured folder missing upstream leaves the others
 * pulled, does not block the journal, and shows in `status`. One LIST per pull (commands counted).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { Cache } from '../../src/cache/cache.js';
import { formatStatus } from '../../src/cli/status.js';
import { parseConfigText } from '../../src/config/load.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { readStatus } from '../../src/daemon/status-report.js';
import { SyncService } from '../../src/daemon/sync.js';
import { ImapServer } from '../../src/listeners/imap/server.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { type ImapTap, startImapTap } from '../support/imap-tap.js';
import { journalTestbed, message } from '../support/journal-testbed.js';
import { makeConfig } from '../support/localpost.js';
import { imaplibState } from '../support/python.js';

const USERS = ['fsa', 'fsb', 'fsc', 'fsd'];
const { bed, log, pythonImap, imapAccount } = journalTestbed(USERS);

const closers: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Create `folder` upstream (as another device) and append messages with these Message-IDs. */
function upstreamFolder(user: string, folder: string, mids: string[]): void {
  const appends = mids
    .map((mid) => `m.append('"${folder}"', None, None, ${JSON.stringify(message(mid).toString('latin1'))}.encode())`)
    .join('\n');
  pythonImap(user, `m.create('"${folder}"')\n${appends}`);
}

/** A cache with one IMAP account pulled through a counting tap, served by a local IMAP server. */
async function setup(user: string) {
  const { cache, pull: pullFrom } = await imapAccount(user);
  const tap: ImapTap = await startImapTap(bed().imapPort);
  const pull = (folders: string[]) => pullFrom(tap.port, folders);
  const view = cache.mailboxes('acct');
  const server = new ImapServer({
    hosts: ['127.0.0.1'],
    port: 0,
    auth: new LocalAuth([{ accountId: 'acct', username: 'acct', password: 'localpw' }], { baseDelayMs: 0 }),
    hooks: { openAccount: () => view },
    log,
  });
  await server.start();
  closers.push(
    () => tap.close(),
    () => server.stop(),
    () => cache.close(),
  );
  /** Folder → Message-IDs, as a client of the local IMAP server sees them. */
  const local = async (): Promise<Record<string, string[]>> => {
    const st = await imaplibState(server.port, 'acct', 'localpw');
    return Object.fromEntries(
      Object.entries(st).map(([f, s]) => [f, s.messages.map((m) => m.mid ?? '').sort()] as const),
    );
  };
  return { pull, view, tap, local, journal: cache.journal };
}

describe('the folder set of an IMAP account', () => {
  test('default folders: INBOX plus the special-use folders with their content; Archive only by pattern; one LIST', async () => {
    const user = 'fsa';
    await bed().appendMessage(user, message('in1@fs'));
    upstreamFolder(user, 'Sent', ['sent1@fs']);
    upstreamFolder(user, 'Drafts', ['draft1@fs']);
    upstreamFolder(user, 'Trash', ['trash1@fs']);
    upstreamFolder(user, 'Junk', ['junk1@fs']);
    upstreamFolder(user, 'Archive', ['arch1@fs']);
    upstreamFolder(user, 'Projects', ['proj1@fs']);
    const { pull, tap, local } = await setup(user);

    tap.reset();
    const r = await pull(['INBOX']);
    assert.equal(r.newMessages, 5);
    assert.deepEqual(
      tap.commands.filter((c) => /^LIST\b/i.test(c)),
      [tap.commands.find((c) => /^LIST\b/i.test(c))],
      'one LIST',
    );
    assert.deepEqual(await local(), {
      INBOX: ['in1@fs'],
      Sent: ['sent1@fs'],
      Drafts: ['draft1@fs'],
      Trash: ['trash1@fs'],
      Junk: ['junk1@fs'],
    });

    // a pattern brings Archive; `Proj%` matches Projects but not Projects/2026
    upstreamFolder(user, 'Projects.2026', ['proj2@fs']); // Dovecot's delimiter is `.`; the cache's name is Projects/2026
    tap.reset();
    const r2 = await pull(['INBOX', 'Arch*', 'Proj%']);
    assert.equal(r2.newMessages, 2);
    assert.equal(tap.commands.filter((c) => /^LIST\b/i.test(c)).length, 1, 'one LIST per pull');
    const seen = await local();
    assert.deepEqual(seen.Archive, ['arch1@fs']);
    assert.deepEqual(seen.Projects, ['proj1@fs']);
    assert.equal(seen['Projects/2026'], undefined);

    // `*` takes everything, nested folders included
    const r3 = await pull(['*']);
    assert.equal(r3.newMessages, 1);
    assert.deepEqual((await local())['Projects/2026'], ['proj2@fs']);

    // back to the default: the folders outside the set are not shown; their cached mail stays
    await pull(['INBOX']);
    assert.deepEqual(Object.keys(await local()).sort(), ['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    const again = await pull(['*']);
    assert.equal(again.newMessages, 0, 'nothing downloaded again when they come back');
    assert.deepEqual((await local()).Archive, ['arch1@fs']);
  });

  test('a folder created upstream appears at the next pull when it matches', async () => {
    const user = 'fsb';
    await bed().appendMessage(user, message('b1@fs'));
    const { pull, local } = await setup(user);
    await pull(['*']);
    assert.deepEqual(Object.keys(await local()).sort(), ['Archive', 'INBOX']);
    upstreamFolder(user, 'Receipts', ['rc1@fs']);
    upstreamFolder(user, 'Sent', ['s1@fs']);
    const r = await pull(['*']);
    assert.equal(r.newMessages, 2);
    const seen = await local();
    assert.deepEqual(seen.Receipts, ['rc1@fs']);
    assert.deepEqual(seen.Sent, ['s1@fs']);
  });

  test('a folder created through the local IMAP server is pulled after its replay', async () => {
    const user = 'fsc';
    await bed().appendMessage(user, message('c1@fs'));
    const { pull, view, local } = await setup(user);
    await pull(['INBOX']);
    await view.createFolder('Local');
    const r = await pull(['INBOX']);
    assert.equal(r.replayed, 1);
    // another device files a message in it: it comes down at the next pull
    pythonImap(user, `m.append('Local', None, None, ${JSON.stringify(message('lc1@fs').toString('latin1'))}.encode())`);
    const r2 = await pull(['INBOX']);
    assert.equal(r2.newMessages, 1);
    assert.deepEqual((await local()).Local, ['lc1@fs']);
  });

  test('a configured folder missing upstream: the others are pulled, the journal drains, status names it', async () => {
    const user = 'fsd';
    await bed().appendMessage(user, message('d1@fs'));
    upstreamFolder(user, 'Work', ['w1@fs']);
    const c = makeConfig([
      {
        id: 'acct',
        protocol: 'imap',
        port: bed().imapPort,
        username: user,
        password: `${user}pw`,
        folders: ['INBOX', 'Nope', 'Work'],
      },
    ]);
    closers.push(() => c.cleanup());
    const cfg = parseConfigText(readFileSync(c.configFile, 'utf8'));
    const acc = cfg.accounts[0] as AccountConfig;
    const cache = await Cache.open({ dataDir: cfg.dataDir, accounts: ['acct'], log });
    closers.push(() => cache.close());
    const sync = new SyncService({ accounts: cfg.accounts, cache, log, changes: () => imapChangesOf(cache, acc) });
    closers.push(() => sync.stop());
    const first = await sync.sync('acct');
    assert.equal(first.result, 'ok', first.error);
    assert.equal(first.newMessages, 2, 'INBOX and Work pulled');
    assert.deepEqual(first.missingFolders, ['Nope']);
    assert.equal(sync.backoff('acct'), undefined, 'no backoff');
    // a local change replays promptly (not held by a backoff)
    await cache.mailboxes('acct').append('INBOX', message('up@fs'));
    await sync.replayNow('acct');
    assert.equal(cache.journal.pending('acct').length, 0, 'the journal drained');
    cache.close();
    const report = await readStatus(cfg);
    assert.deepEqual(report.accounts[0]?.lastPull?.missingFolders, ['Nope']);
    assert.match(formatStatus(report), /acct: configured folder not found upstream, not pulled: Nope/);
  });
});
