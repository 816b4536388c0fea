/**
 * A large cached maildrop built fast, for rows 4, 6 and 10: small message files written straight
 * into the account's Maildir `new/` under the names `formatName` gives (src/cache/maildir.ts), and
 * their ledger rows inserted in one transaction, exactly as start-up recovery (src/cache/recovery.ts)
 * would describe them (plus `eoh`, which storing a message records), so the daemon's recovery finds every file known and has nothing to rebuild.
 * The state.db itself is created by `Cache.open` (schema and migrations are the code's own).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { Ledger, type MessageRow } from '../src/cache/ledger.js';
import { formatName, maildirPath } from '../src/cache/maildir.js';

/** Write `n` messages for each of `accounts` under `dataDir` (a new data dir). */
export async function buildCache(dataDir: string, accounts: string[], n: number): Promise<void> {
  const log = pino({ level: 'silent' });
  const cache = await Cache.open({ dataDir, accounts, log });
  try {
    const ledger = new Ledger(cache.stateDb);
    const storedSec = Math.floor(Date.now() / 1000);
    for (const account of accounts) {
      const dir = path.join(maildirPath(dataDir, account), 'new');
      const rows: MessageRow[] = [];
      for (let uid = 1; uid <= n; uid++) {
        const body = Buffer.from(
          `From: bench@example.test\r\nTo: ${account}@example.test\r\nSubject: cached ${uid}\r\n` +
            `Message-ID: <${account}.${uid}@bench.example.test>\r\n\r\nCached message ${uid} of ${n}.\r\n`,
        );
        const key = `p${Buffer.from(`${account}-${uid}`).toString('hex')}`;
        const name = formatName({ storedSec, uid, size: body.length, wsize: body.length, key });
        writeFileSync(path.join(dir, name), body);
        rows.push({
          account,
          uid,
          folder: 'INBOX',
          file: `new/${name}`,
          size: body.length,
          wsize: body.length,
          key,
          flags: '',
          storedAt: storedSec * 1000,
          eoh: 1, // recorded when a message is stored (account-store.ts); the body follows a blank line
          uidl: null,
        });
      }
      ledger.transaction(() => {
        for (const r of rows) ledger.insertMessage(r);
        ledger.raiseNextUid(account, n + 1);
      });
    }
  } finally {
    cache.close();
  }
}
