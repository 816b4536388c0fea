/**
 * The selected folder vanishing between commands when the session was not told (a store whose
 * 'folders' events do not reach it): every command on it answers OK or NO, never SERVERBUG, and
 * the session goes on (docs/imap-server.md "Sessions"). The told case is in the transcript
 * `selected-gone.txt` (BYE).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { MailboxEvent, MailboxStore } from '../../src/cache/mailboxes.js';
import { ImapTestClient } from '../support/imap-client.js';
import { type ImapFixture, startImap } from '../support/imap-server.js';
import { sampleMessage } from '../support/pop3-server.js';

/** The store as the session sees it, minus the folder events. */
function deaf(store: MailboxStore): MailboxStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'onChange')
        return (l: (ev: MailboxEvent) => void) => target.onChange((ev) => ev.kind !== 'folders' && l(ev));
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const fixtures: ImapFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

for (const realCache of [false, true]) {
  describe(`a selected folder deleted under a session that was not told (${realCache ? 'real cache' : 'in-memory store'})`, () => {
    test('FETCH, STORE, EXPUNGE, COPY, MOVE, SEARCH answer OK or NO; no SERVERBUG, no close', async () => {
      const logLines: string[] = [];
      let stores: Map<string, MailboxStore> | undefined;
      const fx = await startImap({
        realCache,
        logLines,
        logLevel: 'warn',
        server: { hooks: { openAccount: (id) => deaf(stores?.get(id) as MailboxStore) } },
      });
      fixtures.push(fx);
      stores = fx.stores;
      const store = fx.stores.get('alice') as MailboxStore;
      await store.createFolder('Box');
      for (const n of [1, 2]) await store.append('Box', Buffer.from(sampleMessage(n)));
      const c = await ImapTestClient.open(fx.port, ['alice', 'localpw']);
      const sel = await c.run('SELECT Box');
      assert.ok(sel.includes('* 2 EXISTS'), sel.join('\n'));
      await store.deleteFolder('Box');
      const replies: string[] = [];
      for (const cmd of [
        'FETCH 1:* (FLAGS)',
        'FETCH 1:* (BODY.PEEK[])',
        'FETCH 1 (BODY[])',
        'STORE 1:2 +FLAGS (\\Deleted)',
        'UID STORE 1:* FLAGS (\\Seen)',
        'EXPUNGE',
        'UID EXPUNGE 1:*',
        'COPY 1 INBOX',
        'MOVE 2 INBOX',
        'SEARCH TEXT hello',
        'STATUS Box (MESSAGES)',
        'NOOP',
      ]) {
        const r = await c.run(cmd);
        const tagged = r.at(-1) as string;
        replies.push(tagged);
        // the real store announces the messages' expunge: once reported, sequence numbers past the end are BAD
        assert.match(tagged, /^t\d+ (OK|NO|BAD no such message)/, `${cmd}: ${r.join(' | ')}`);
        assert.doesNotMatch(tagged, /SERVERBUG/, cmd);
      }
      const close = await c.run('CLOSE');
      assert.match(close.at(-1) as string, /^t\d+ (OK|NO) /);
      assert.match((await c.run('SELECT INBOX')).at(-1) as string, /OK \[READ-WRITE\]/);
      assert.deepEqual(
        logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50),
        [],
      );
      c.conn.close();
    });
  });
}
