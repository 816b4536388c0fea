/**
 * Fixtures for the local IMAP server: `startImap()` runs an `ImapServer` on 127.0.0.1:0 whose
 * logins (alice/localpw, bob/bobpw) open in-memory stores (`memory-mailboxes.ts`), INBOX
 * holding the given messages.
 */
import { pino } from 'pino';
import type { MailboxStore } from '../../src/cache/mailboxes.js';
import { ImapServer, type ImapServerOptions } from '../../src/listeners/imap/server.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { MemoryMailboxes } from './memory-mailboxes.js';

export interface ImapFixture {
  server: ImapServer;
  port: number;
  /** The store of each account. */
  stores: Map<string, MemoryMailboxes>;
  close(): Promise<void>;
}

export interface StartImapOptions {
  messages?: Array<Buffer | string>;
  server?: Partial<ImapServerOptions>;
  /** Replaces the in-memory store (e.g. a real Cache's). */
  openAccount?: (accountId: string) => MailboxStore | Promise<MailboxStore>;
  logLevel?: string;
}

export async function startImap(o: StartImapOptions = {}): Promise<ImapFixture> {
  const log = pino({ level: o.logLevel ?? 'silent' });
  const stores = new Map<string, MemoryMailboxes>();
  for (const a of ['alice', 'bob']) stores.set(a, new MemoryMailboxes(a));
  const alice = stores.get('alice') as MemoryMailboxes;
  for (const m of o.messages ?? []) alice.deliver('INBOX', m);
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
    hooks: { openAccount: o.openAccount ?? ((id) => stores.get(id) as MemoryMailboxes) },
    log,
    ...o.server,
  });
  await server.start();
  return { server, port: server.port, stores, close: () => server.stop() };
}
