/**
 * Fixtures for the local IMAP server: `startImap()` runs an `ImapServer` on 127.0.0.1:0 whose
 * logins (alice/localpw, bob/bobpw) open in-memory stores (`memory-mailboxes.ts`) or, with
 * `realCache`, the cache's own MailboxStore; INBOX holds the given messages.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { MailboxStore } from '../../src/cache/mailboxes.js';
import { ImapServer, type ImapServerOptions } from '../../src/listeners/imap/server.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { MemoryMailboxes } from './memory-mailboxes.js';

export interface ImapFixture {
  server: ImapServer;
  port: number;
  /** The store of each account. */
  stores: Map<string, MailboxStore>;
  /** The real cache, with `realCache`. */
  cache?: Cache;
  close(): Promise<void>;
}

export interface StartImapOptions {
  messages?: Array<Buffer | string>;
  server?: Partial<ImapServerOptions>;
  /** Serve a real Cache in a temp dir (POP3-protocol accounts: INBOX, Sent, Drafts, Trash) instead of memory. */
  realCache?: boolean;
  logLevel?: string;
  /** Log lines (JSON) go here instead of nowhere. */
  logLines?: string[];
}

export async function startImap(o: StartImapOptions = {}): Promise<ImapFixture> {
  const lines = o.logLines;
  const log = lines
    ? pino({ level: o.logLevel ?? 'trace' }, { write: (l: string) => void lines.push(l) })
    : pino({ level: o.logLevel ?? 'silent' });
  const stores = new Map<string, MailboxStore>();
  let cache: Cache | undefined;
  let dataDir: string | undefined;
  if (o.realCache) {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'lp-imap-'));
    cache = await Cache.open({ dataDir, accounts: ['alice', 'bob'], log });
    for (const a of ['alice', 'bob']) stores.set(a, cache.mailboxes(a, { protocol: 'pop3' }));
    const when = Date.UTC(2024, 0, 2, 3, 4, 5);
    for (const m of o.messages ?? [])
      await stores.get('alice')?.append('INBOX', Buffer.from(m), { internalDate: when });
  } else {
    for (const a of ['alice', 'bob']) stores.set(a, new MemoryMailboxes(a));
    const alice = stores.get('alice') as MemoryMailboxes;
    for (const m of o.messages ?? []) alice.deliver('INBOX', m);
  }
  const server = new ImapServer({
    hosts: ['127.0.0.1'],
    port: 0,
    auth: new LocalAuth(
      [
        { accountId: 'alice', username: 'alice', password: 'localpw' },
        { accountId: 'bob', username: 'bob', password: 'bobpw' },
      ],
      { baseDelayMs: 0 },
    ),
    hooks: { openAccount: (id) => stores.get(id) as MailboxStore },
    log,
    ...o.server,
  });
  await server.start();
  const close = async (): Promise<void> => {
    await server.stop();
    cache?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
  return { server, port: server.port, stores, ...(cache ? { cache } : {}), close };
}
