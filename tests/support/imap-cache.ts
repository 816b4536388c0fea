/**
 * A local IMAP server (and, on demand, the POP3 server) over a real cache: `serveCache()` opens
 * the Cache of a data dir (filled by a real pull, or empty) in this process and serves its
 * accounts as alice/localpw (bob/bobpw) on 127.0.0.1:0, as the daemon would. `cachedByUid()`
 * reads a cached folder's files by local UID (the `L<hex>` of their names), to compare what a
 * client got with the files themselves.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Logger, pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { MailboxStore } from '../../src/cache/mailboxes.js';
import { ImapServer } from '../../src/listeners/imap/server.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { CacheBackend } from '../../src/listeners/pop3/backend.js';
import { Pop3Server } from '../../src/listeners/pop3/server.js';
import { maildirFiles } from './localpost.js';

export interface CacheServers {
  cache: Cache;
  imap: ImapServer;
  pop3?: Pop3Server;
  store(account?: string): MailboxStore;
  close(): Promise<void>;
}

const USERS = [
  { accountId: 'alice', username: 'alice', password: 'localpw' },
  { accountId: 'bob', username: 'bob', password: 'bobpw' },
];

/** Serve the cache of `dataDir` over IMAP (and POP3 with `pop3`); accounts of the given upstream protocol. */
export async function serveCache(
  dataDir: string,
  o: { protocol: 'imap' | 'pop3'; accounts?: string[]; pop3?: boolean; log?: Logger },
): Promise<CacheServers> {
  const log = o.log ?? pino({ level: 'silent' });
  const accounts = o.accounts ?? ['alice'];
  const cache = await Cache.open({ dataDir, accounts, log });
  const store = (a = 'alice'): MailboxStore => cache.mailboxes(a, { protocol: o.protocol });
  for (const a of accounts) store(a);
  const users = USERS.filter((u) => accounts.includes(u.accountId));
  const imap = new ImapServer({
    hosts: ['127.0.0.1'],
    port: 0,
    auth: new LocalAuth(users, { baseDelayMs: 0 }),
    hooks: { openAccount: (id) => store(id) },
    log,
  });
  await imap.start();
  let pop3: Pop3Server | undefined;
  if (o.pop3) {
    const backend = new CacheBackend({ stores: cache, log, onLocalDelete: () => 'keep-upstream' });
    pop3 = new Pop3Server({
      hosts: ['127.0.0.1'],
      port: 0,
      auth: new LocalAuth(users, { baseDelayMs: 0 }),
      backend,
      log,
    });
    await pop3.start();
  }
  return {
    cache,
    imap,
    ...(pop3 ? { pop3 } : {}),
    store,
    close: async () => {
      await imap.stop();
      await pop3?.stop();
      cache.close();
    },
  };
}

/** A cached folder's message files by local UID (`dir` is the folder's Maildir directory). */
export function cachedByUid(dir: string): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const f of maildirFiles(dir)) {
    const m = /\.L([0-9A-F]+)\.localpost,/.exec(path.basename(f));
    if (m) out.set(Number.parseInt(m[1]!, 16), readFileSync(f));
  }
  return out;
}

/** CRLF line ends, as the IMAP server serves a file with bare LFs. */
export function crlf(b: Buffer): Buffer {
  return Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}
