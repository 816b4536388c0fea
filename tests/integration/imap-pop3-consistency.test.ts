/**
 * The local IMAP and POP3 servers over one cache stay consistent both ways: a message deleted
 * over POP3 (poplib DELE + QUIT) leaves the IMAP session that has INBOX selected (untagged
 * EXPUNGE at its next NOOP) and shows in Trash, under a new UID at or above Trash's UIDNEXT (a
 * session with Trash selected gets EXISTS, `UID FETCH UIDNEXT:*` finds it); a message expunged
 * over IMAP is gone from the next POP3 session.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { INBOX } from '../../src/cache/message-store.js';
import { cacheFaults } from '../reliability/invariants.js';
import { type CacheServers, serveCache } from '../support/imap-cache.js';
import { Pop3Conn, sampleMessage } from '../support/pop3-server.js';
import { poplibDele, poplibUidls } from '../support/python.js';

/** Untagged lines up to the tagged answer of `tag`, which must be OK. */
async function ask(c: Pop3Conn, tag: string, command: string): Promise<string[]> {
  c.cmd(`${tag} ${command}`);
  const out: string[] = [];
  for (;;) {
    const l = await c.line(10_000);
    if (l.startsWith(`${tag} `)) {
      assert.match(l, new RegExp(`^${tag} OK`), `${command}: ${l}`);
      return out;
    }
    out.push(l);
  }
}

/**
 * A cache served over POP3 and IMAP with `n` messages in alice's INBOX; `fn` gets the servers and
 * an IMAP connection past its greeting. Afterwards the on-disk invariants must hold.
 */
async function withServers(n: number, fn: (srv: CacheServers, imap: Pop3Conn) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-imappop-'));
  const srv = await serveCache(dataDir, { protocol: 'pop3', pop3: true });
  try {
    const account = srv.cache.account('alice');
    for (let i = 1; i <= n; i++) {
      const p = await account.begin(INBOX, `k${i}`);
      p.stream.end(Buffer.from(sampleMessage(i)));
      await p.finish();
    }
    await account.commit();
    const imap = await Pop3Conn.open(srv.imap.port);
    try {
      assert.match(await imap.line(), /^\* OK/);
      await fn(srv, imap);
    } finally {
      imap.close();
    }
    // the temp pool's files made ahead of need (UID 0) may wait in tmp/ while the cache is open
    assert.deepEqual(cacheFaults(dataDir, 'alice', { tmpMayHoldFiles: true }), []);
  } finally {
    await srv.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('POP3 DELE leaves the selected IMAP INBOX and lands in Trash; an IMAP EXPUNGE is gone from the next POP3 session', async () => {
  await withServers(4, async (srv, imap) => {
    const pop3Port = srv.pop3!.port;
    const uidls = await poplibUidls(pop3Port, 'alice', 'localpw');
    assert.equal(uidls.length, 4);

    await ask(imap, 'a1', 'LOGIN alice localpw');
    const sel = await ask(imap, 'a2', 'SELECT INBOX');
    assert.ok(sel.includes('* 4 EXISTS'), sel.join('\n'));
    const uids = (await ask(imap, 'a3', 'UID SEARCH ALL'))[0]!.split(' ').slice(2).map(Number);
    assert.equal(uids.length, 4);

    // POP3 deletes message 2 (the second UID): the IMAP session learns it at its next command
    await poplibDele(pop3Port, 'alice', 'localpw', [2]);
    const noop = await ask(imap, 'a4', 'NOOP');
    assert.deepEqual(
      noop.filter((l) => / EXPUNGE$/.test(l)),
      ['* 2 EXPUNGE'],
      noop.join('\n'),
    );
    const left = (await ask(imap, 'a5', 'UID SEARCH ALL'))[0]!.split(' ').slice(2).map(Number);
    assert.deepEqual(left, [uids[0], uids[2], uids[3]]);
    const status = await ask(imap, 'a6', 'STATUS Trash (MESSAGES)');
    assert.deepEqual(status, ['* STATUS Trash (MESSAGES 1)']);
    const trash = srv.store().select('Trash');
    assert.equal(trash.messages.length, 1);
    const inTrash = await srv.store().read('Trash', trash.messages[0]!.uid);
    assert.ok(inTrash.equals(Buffer.from(sampleMessage(2))), 'the deleted message is the one in Trash');

    // IMAP expunges the first message: the next POP3 session no longer lists it
    await ask(imap, 'a7', `UID STORE ${uids[0]} +FLAGS.SILENT (\\Deleted)`);
    const ex = await ask(imap, 'a8', 'EXPUNGE');
    assert.deepEqual(ex, ['* 1 EXPUNGE']);
    assert.deepEqual(await poplibUidls(pop3Port, 'alice', 'localpw'), [uidls[2], uidls[3]]);
    await ask(imap, 'a9', 'LOGOUT');
  });
});

test('a POP3 deletion lands in Trash at or above its UIDNEXT: a session with Trash selected and a UIDNEXT:* fetch see it', async () => {
  await withServers(3, async (srv, imap) => {
    const pop3Port = srv.pop3!.port;
    await poplibDele(pop3Port, 'alice', 'localpw', [3]); // the highest INBOX UID goes first
    await ask(imap, 'b1', 'LOGIN alice localpw');
    const sel = await ask(imap, 'b2', 'SELECT Trash');
    assert.ok(sel.includes('* 1 EXISTS'), sel.join('\n'));
    const uidNext = Number(/UIDNEXT (\d+)/.exec(sel.join('\n'))?.[1]);
    await poplibDele(pop3Port, 'alice', 'localpw', [1]); // a lower INBOX UID
    const noop = await ask(imap, 'b3', 'NOOP');
    assert.ok(noop.includes('* 2 EXISTS'), `the selected session is told: ${noop.join(' | ')}`);
    const fetched = (await ask(imap, 'b4', `UID FETCH ${uidNext}:* (UID)`)).map((l) =>
      Number(/UID (\d+)/.exec(l)?.[1]),
    );
    assert.equal(fetched.length, 1);
    assert.ok(fetched[0]! >= uidNext, `UID ${fetched[0]} at or above UIDNEXT ${uidNext}`);
    const body = await srv.store().read('Trash', fetched[0]!);
    assert.ok(body.equals(Buffer.from(sampleMessage(1))), 'the message deleted second');
    await ask(imap, 'b5', 'LOGOUT');
  });
});
