/**
 * Hostile clients of the local IMAP listener, the cases the fuzz (fuzz-imap.ts) found, replayed
 * deterministically: a session closed on a fatal protocol error while its socket was paused
 * (input over the high-water mark behind a running command) must not leave the connection
 * open (a leak, and `stop()` waiting forever); an empty mailbox name is refused, not a server
 * bug; a RENAME whose children collide with existing directories is no server bug either.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type CacheServers, serveCache } from '../support/imap-cache.js';
import { sampleMessage } from '../support/pop3-server.js';
import { generateImapCase } from './fuzz-imap-cases.js';
import { drive } from './fuzz-targets.js';

let dataDir: string;
let srv: CacheServers;
before(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-imaph-'));
  srv = await serveCache(dataDir, { protocol: 'pop3' });
  for (let i = 1; i <= 3; i++) await srv.store().append('INBOX', Buffer.from(sampleMessage(i)));
});
after(async () => {
  await srv?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Open TCP connections of the listener (sessions or not). */
function connections(): Promise<number> {
  const server = (srv.imap as unknown as { servers: Array<{ server: net.Server }> }).servers[0]!.server;
  return new Promise((r) => server.getConnections((_e, n) => r(n)));
}

async function settled(): Promise<number> {
  for (let i = 0; i < 100 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return connections();
}

test('a fatal error while the socket is paused closes the connection for good', async () => {
  // fuzz session imap:2778941483: commands that take a while (SELECT, UID FETCH * ALL), then
  // more than the input high-water mark (256 KiB) queued behind them in ~3 KiB writes, with a
  // line over the limit (64 KiB) in it: fatal, BYE, close, while the socket is paused
  const c = generateImapCase(2778941483);
  for (let round = 0; round < 3; round++) {
    const r = await drive(srv.imap.port, c, /^\* OK[^\r\n]*\r\n/, ['\r\nDONE\r\nz1 LOGOUT\r\n']);
    assert.match(r.received, /\* BYE protocol error\r\n$/);
  }
  assert.equal(srv.imap.sessionCount, 0);
  assert.equal(await settled(), 0, 'every connection closed');
});

test('an empty mailbox name is refused with NO, never an internal error', async () => {
  const r = await drive(
    srv.imap.port,
    {
      segments: [
        Buffer.from(
          'a LOGIN alice localpw\r\nb1 SELECT ""\r\nb2 STATUS "" (MESSAGES)\r\nb3 CREATE ""\r\nb4 DELETE ""\r\n' +
            'b5 RENAME INBOX ""\r\nb6 SUBSCRIBE ""\r\nb7 APPEND "" {1+}\r\nx\r\nb8 SELECT INBOX\r\nb9 COPY 1 ""\r\nb10 MOVE 1 ""\r\n',
        ),
      ],
    },
    /^\* OK[^\r\n]*\r\n/,
    ['z LOGOUT\r\n'],
  );
  for (const tag of ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b9', 'b10'])
    assert.match(r.received, new RegExp(`\\r\\n${tag} (NO|BAD) (?!\\[SERVERBUG\\])`), `${tag}: ${r.received}`);
  assert.equal(srv.store().folder('INBOX')?.messages, 3, 'nothing moved or lost');
});

test('RENAME onto a name whose child folder exists is refused, not a server bug', async () => {
  // fuzz session imap:4141379521 and others: the children's directories collide (ENOTEMPTY)
  const r = await drive(
    srv.imap.port,
    {
      segments: [
        Buffer.from(
          'a LOGIN alice localpw\r\nb1 CREATE b/sub\r\nb2 DELETE b\r\nb3 CREATE a/sub\r\nb4 RENAME a b\r\nb5 LIST "" *\r\n',
        ),
      ],
    },
    /^\* OK[^\r\n]*\r\n/,
    ['z LOGOUT\r\n'],
  );
  assert.match(r.received, /\r\nb4 (OK|NO) (?!\[SERVERBUG\])/, r.received);
  assert.match(r.received, /\r\n\* LIST [^\r\n]* "?b\/sub"?\r\n/, r.received);
});
