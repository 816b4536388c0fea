/**
 * What the journal tests against Dovecot share (tests/integration/journal-*.test.ts): a testbed
 * with their users, temp directories, the endpoint of a user, messages with a Message-ID, the
 * upstream state read with Python's imaplib, and imaplib changes made as another device would.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import type { UpstreamEndpoint } from '../../src/upstream/types.js';
import { imaplibState, PYTHON } from './python.js';
import { startTestbed, type Testbed } from './testbed.js';

/** A message with a Message-ID (and CRLF lines, as an upstream stores it). */
export function message(mid: string, body = 'hello'): Buffer {
  return Buffer.from(`From: a@example.test\r\nSubject: ${mid}\r\nMessage-ID: <${mid}>\r\n\r\n${body}\r\n`);
}

/** Start Dovecot with these users (`name` / `namepw`) for the file's tests, stopped after them. */
export function journalTestbed(users: string[]) {
  let tb: Testbed | undefined;
  const dirs: string[] = [];
  before(async () => {
    tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: users.map((u) => `${u}:${u}pw`).join(' ') } });
  });
  after(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await tb?.stop();
  });
  const bed = (): Testbed => {
    if (!tb) throw new Error('testbed not started');
    return tb;
  };
  const log = pino({ level: process.env.LP_TEST_LOG ?? 'silent' });
  /** A temp directory removed after the tests. */
  const tmp = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), 'lp-journal-'));
    dirs.push(d);
    return d;
  };
  const endpoint = (user: string, port = bed().imapPort): UpstreamEndpoint => {
    return { host: '127.0.0.1', port, tls: 'none', username: user, password: `${user}pw`, connectTimeoutMs: 3000 };
  };
  return {
    bed,
    log,
    tmp,
    endpoint,
    /**
     * A cache (in a temp directory) with one IMAP account `acct` pulling as `user`, its changes
     * carried both ways: `pull()` of `folders` (default INBOX) through `port` (default Dovecot's).
     */
    async imapAccount(user: string) {
      const cache = await Cache.open({ dataDir: tmp(), accounts: ['acct'], log });
      const acc = { id: 'acct', incoming: { protocol: 'imap', onLocalDelete: 'keep-upstream' } };
      const changes = imapChangesOf(cache, acc as unknown as AccountConfig);
      if (!changes) throw new Error('no IMAP changes for an IMAP account');
      const pull = (o: { port?: number; folders?: string[] } = {}) =>
        new ImapFetcher({
          endpoint: endpoint(user, o.port),
          store: cache.account('acct'),
          cursors: cache,
          log,
          folders: o.folders ?? ['INBOX'],
          maxMessageSize: 10_000_000,
          changes,
        }).pull();
      return { cache, changes, pull };
    },
    /** The user's folders upstream; count and flags of a message by Message-ID in a folder. */
    async upstream(user: string) {
      const st = await imaplibState(bed().imapPort, user, `${user}pw`);
      const count = (folder: string, mid: string) => (st[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
      const flags = (folder: string, mid: string) => st[folder]?.messages.find((m) => m.mid === mid)?.flags ?? [];
      return { st, count, flags };
    },
    /** imaplib, as another device would (`m` is the logged-in IMAP4). */
    pythonImap(user: string, code: string): void {
      const script = `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${bed().imapPort})\nm.login('${user}', '${user}pw')\n${code}\nm.logout()\n`;
      execFileSync(PYTHON, ['-c', script]);
    },
  };
}
