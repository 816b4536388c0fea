/**
 * What the journal tests against Dovecot share (tests/integration/journal-*.test.ts): a testbed
 * with their users, temp directories, the endpoint of a user, messages with a Message-ID, the
 * upstream state read with Python's imaplib, imaplib changes made as another device would, and a
 * cache with one IMAP account whose pull carries changes both ways.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import pino, { type Logger } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import type { UpstreamEndpoint } from '../../src/upstream/types.js';
import { imaplibState, PYTHON } from './python.js';
import { startTestbed, type Testbed } from './testbed.js';

/** Dovecot 2.3's capabilities after login without QRESYNC (CONDSTORE stays): `IMAP_CAPABILITY` for an upstream without it. */
export const NO_QRESYNC =
  'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS ' +
  'THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED ' +
  'I18NLEVEL=1 CONDSTORE ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY ' +
  'PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE';

/** A message with a Message-ID (and CRLF lines, as an upstream stores it). */
export function message(mid: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@example.test\r\nSubject: ${mid}\r\nMessage-ID: <${mid}>\r\n\r\n${body}\r\n`);
}

/**
 * Start Dovecot with these users (`name` / `namepw`) for the file's tests, stopped after them;
 * `env`: more testbed knobs (tests/testbed/README.md).
 */
export function journalTestbed(users: string[], env: Record<string, string> = {}) {
  let tb: Testbed | undefined;
  const dirs: string[] = [];
  before(async () => {
    tb = await startTestbed({
      postfix: false,
      env: { ...env, EXTRA_USERS: users.map((u) => `${u}:${u}pw`).join(' ') },
    });
  });
  after(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await tb?.stop();
  });
  const bed = (): Testbed => {
    if (!tb) throw new Error('testbed not started');
    return tb;
  };
  const helpers = {
    bed,
    log: pino({ level: process.env.LP_TEST_LOG ?? 'silent' }),
    /** A temp directory removed after the tests. */
    tmp(): string {
      const d = mkdtempSync(path.join(tmpdir(), 'lp-journal-'));
      dirs.push(d);
      return d;
    },
    endpoint(user: string, port = bed().imapPort): UpstreamEndpoint {
      return { host: '127.0.0.1', port, tls: 'none', username: user, password: `${user}pw`, connectTimeoutMs: 3000 };
    },
    /** The user's folders upstream; count and flags of a message by Message-ID in a folder. */
    async upstream(user: string) {
      const st = await imaplibState(bed().imapPort, user, `${user}pw`);
      const count = (folder: string, mid: string) => (st[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
      const flags = (folder: string, mid: string) => st[folder]?.messages.find((m) => m.mid === mid)?.flags ?? [];
      return { st, count, flags };
    },
    /** `imapAccount` for a user of this testbed, its data directory removed after the tests. */
    imapAccount(user: string) {
      return imapAccount(helpers.tmp(), helpers.endpoint(user), helpers.log);
    },
    /** imaplib, as another device would (`m` is the logged-in IMAP4). */
    pythonImap(user: string, code: string): void {
      const script = `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${bed().imapPort})\nm.login('${user}', '${user}pw')\n${code}\nm.logout()\n`;
      execFileSync(PYTHON, ['-c', script]);
    },
  };
  return helpers;
}

/**
 * A cache in `dataDir` with one IMAP account (`acct`, pulling `endpoint`) and a pull of `folders`
 * (default INBOX) that carries changes both ways (through `port` when given: a tap in front of
 * the upstream).
 */
export async function imapAccount(dataDir: string, endpoint: UpstreamEndpoint, log: Logger) {
  const cache = await Cache.open({ dataDir, accounts: ['acct'], log });
  const acc = {
    id: 'acct',
    incoming: { protocol: 'imap', onLocalDelete: 'keep-upstream' },
  } as unknown as AccountConfig;
  const changes = imapChangesOf(cache, acc);
  assert.ok(changes);
  const pull = (port = endpoint.port, folders: string[] = ['INBOX']) =>
    new ImapFetcher({
      endpoint: { ...endpoint, port },
      store: cache.account('acct'),
      cursors: cache,
      log,
      folders,
      maxMessageSize: 10_000_000,
      changes,
    }).pull();
  const view = cache.mailboxes('acct');
  const uidOf = (folder: string, mid: string) => {
    const rows = cache.account('acct').list(folder);
    const row = rows.find((r) => readFileSync(r.path, 'latin1').includes(`<${mid}>`));
    assert.ok(row, `${mid} in ${folder} locally`);
    return row.uid;
  };
  return { cache, changes, pull, view, uidOf, journal: cache.journal };
}
