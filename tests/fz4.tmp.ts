import { mkdtempSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { serveCache } from './support/imap-cache.js';
import { sampleMessage } from './support/pop3-server.js';
import { drive, sessionSeed } from './reliability/fuzz-targets.js';
import { generateImapCase } from './reliability/fuzz-imap-cases.js';
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-x-'));
const srv = await serveCache(dataDir, { protocol: 'pop3', accounts: ['alice', 'bob'], log: pino({ level: 'silent' }) });
for (let i = 1; i <= 3; i++) await srv.store().append('INBOX', Buffer.from(sampleMessage(i)));
const server = (srv.imap as any).servers[0].server as net.Server;
const conns = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
const from = Number(process.argv[2] ?? 0), to = Number(process.argv[3] ?? 600);
for (let n = from; n < to; n++) {
  const seed = sessionSeed(20260601, n);
  const c = generateImapCase(seed);
  const flood = `${' '.repeat(140 * 1024)}\r\nz2 LOGOUT\r\n`;
  await drive(srv.imap.port, c, /^\* OK[^\r\n]*\r\n/, c.abort ? [] : [`${' '.repeat(c.owed)}\r\nDONE\r\nz1 LOGOUT\r\n`, flood]);
  let k = 0;
  while ((await conns()) > 0 && k++ < 100) await new Promise((r) => setTimeout(r, 20));
  if ((await conns()) > 0) { console.log('LEAK', n, seed, c.abort, srv.imap.sessionCount); }
}
console.log('done');
process.exit(0);
