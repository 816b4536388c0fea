/**
 * Ad-hoc probe (not a bench section): SELECT and `UID FETCH 1:* (FLAGS)` of the local IMAP
 * server over a cache of N messages built by `buildCache`. Prints milliseconds, best of 5.
 *   node --import tsx bench/imap-probe.ts [N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { ImapServer } from '../src/listeners/imap/server.js';
import { LocalAuth } from '../src/listeners/local-auth.js';
import { ImapTestClient } from '../tests/support/imap-client.js';
import { buildCache } from './big-cache.js';

const n = Number(process.argv[2] ?? 100_000);
const dataDir = mkdtempSync(join(tmpdir(), 'lp-imap-probe-'));
const log = pino({ level: 'silent' });
await buildCache(dataDir, ['alice'], n);
const cache = await Cache.open({ dataDir, accounts: ['alice'], log });
const store = cache.mailboxes('alice', { protocol: 'pop3' });
const server = new ImapServer({
  hosts: ['127.0.0.1'],
  port: 0,
  auth: new LocalAuth([{ accountId: 'alice', username: 'alice', password: 'pw' }], { baseDelayMs: 0 }),
  hooks: { openAccount: () => store },
  log,
});
await server.start();
const c = await ImapTestClient.open(server.port, ['alice', 'pw']);
/** Sends a command and resolves when its tagged reply arrived, looking only at the tail of the input. */
let tagN = 0;
function timed(cmd: string): Promise<number> {
  const tag = `z${++tagN}`;
  const sock = c.conn.socket;
  sock.removeAllListeners('data');
  const t = performance.now();
  return new Promise((resolve) => {
    let tail = '';
    sock.on('data', (b: Buffer) => {
      tail = (tail + b.toString('latin1', Math.max(0, b.length - 200))).slice(-400);
      if (tail.includes(`\r\n${tag} OK`) || tail.startsWith(`${tag} OK`)) resolve(performance.now() - t);
    });
    sock.write(`${tag} ${cmd}\r\n`);
  });
}
const best = { select: Infinity, fetch: Infinity, search: Infinity };
const s = await c.run('SELECT INBOX', 60_000);
const f = await c.run('UID FETCH 1:* (FLAGS)', 60_000);
console.log(
  s.find((l) => l.endsWith('EXISTS')),
  f.length - 1,
  'FETCH lines',
);
for (let i = 0; i < 5; i++) {
  best.select = Math.min(best.select, await timed('SELECT INBOX'));
  best.fetch = Math.min(best.fetch, await timed('UID FETCH 1:* (FLAGS)'));
  best.search = Math.min(best.search, await timed('UID SEARCH UNSEEN'));
}
console.log(JSON.stringify({ n, ms: Object.fromEntries(Object.entries(best).map(([k, v]) => [k, Math.round(v)])) }));
c.close();
await server.stop();
cache.close();
rmSync(dataDir, { recursive: true, force: true });
