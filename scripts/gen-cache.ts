/**
 * Fills a data directory with a large cache for start-up and idle measurements:
 * `node --import tsx scripts/gen-cache.ts --data-dir DIR --messages N [--accounts a,b,c]`.
 * Each account gets N/accounts small messages in INBOX `new/`, named as `maildir.ts` names
 * stored messages, and their state.db rows written in one transaction, so the cache is
 * consistent (what a daemon leaves after a clean stop, without its clean-shutdown record).
 * Never used by the daemon or the tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Ledger, type MessageRow } from '../src/cache/ledger.js';
import { ensureFolder, formatName, maildirPath } from '../src/cache/maildir.js';
import { INBOX } from '../src/cache/message-store.js';
import { openStateDb } from '../src/cache/state-db.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    messages: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: 'a' },
  },
});
const dataDir = path.resolve(values['data-dir'] ?? 'gen-cache-data');
const total = Number(values.messages);
const accounts = (values.accounts ?? 'a').split(',');
const body = (i: number): string =>
  `From: gen@example.test\r\nSubject: message ${i}\r\nMessage-ID: <${i}@gen.example.test>\r\n\r\nbody ${i}\r\n`;

mkdirSync(path.join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
const db = await openStateDb({ file: path.join(dataDir, 'state.db'), log: pino({ level: 'silent' }) });
const ledger = new Ledger(db);
const storedSec = Math.floor(Date.now() / 1000) - 3600;
for (const [a, account] of accounts.entries()) {
  const maildir = maildirPath(dataDir, account);
  const inbox = await ensureFolder(maildir, INBOX);
  const n = Math.floor(total / accounts.length) + (a < total % accounts.length ? 1 : 0);
  const rows: MessageRow[] = [];
  for (let uid = 1; uid <= n; uid++) {
    const text = body(uid);
    const size = Buffer.byteLength(text);
    const key = `p${uid.toString(16).padStart(8, '0')}`;
    const name = formatName({ storedSec, uid, size, wsize: size, key });
    writeFileSync(path.join(inbox, 'new', name), text);
    rows.push({
      account,
      uid,
      folder: INBOX,
      file: `new/${name}`,
      size,
      wsize: size,
      key,
      flags: '',
      storedAt: storedSec * 1000,
    });
  }
  ledger.transaction(() => {
    for (const r of rows) ledger.insertMessage(r);
    ledger.raiseNextUid(account, n + 1);
  });
  process.stdout.write(`${account}: ${n} messages\n`);
}
db.close();
