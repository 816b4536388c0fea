/**
 * Generates a large, consistent account cache fast, for serving benchmarks: `count` message
 * files in the account's INBOX `new/` (names from `formatName`, so start-up recovery accepts
 * them without a stat each) and their ledger rows, inserted in one transaction. The messages
 * are small synthetic ones of about `size` bytes (CRLF, a header and an empty line).
 *
 * Not durable on purpose (no fsync): a benchmark fixture, not a cache to keep.
 * Run: node --import tsx scripts/gen-maildrop.ts <dataDir> [count=1000000] [account=alice] [size=600] [rows-only]
 * or import `generateMaildrop` (bench and tests). 1M files take minutes (one create each); `rows-only`
 * (or `files: false`) takes seconds, but start-up recovery drops rows without files, so insert them
 * after `Cache.open` (the STAT/UIDL/LIST path reads no files).
 */
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { ensureFolder, formatName, maildirPath } from '../src/cache/maildir.js';
import { INBOX } from '../src/cache/message-store.js';
import { openStateDb } from '../src/cache/state-db.js';
import { systemClock } from '../src/shared/clock.js';

/** Options of `generateMaildrop`. */
export interface GenerateOptions {
  dataDir: string;
  account?: string;
  count: number;
  /** Approximate size of each message in bytes. */
  size?: number;
  /** First local UID (default 1). */
  firstUid?: number;
  /** Write the files too (default true); without them recovery would drop the rows at start-up. */
  files?: boolean;
}

/** The bytes of synthetic message `uid`, about `size` long, ending with CRLF. */
export function syntheticMessage(uid: number, size: number): Buffer {
  const head = `From: gen@example.test\r\nTo: alice@example.test\r\nSubject: message ${uid}\r\nMessage-ID: <${uid}@gen.test>\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog 0123456789.\r\n';
  const body = line.repeat(Math.max(0, Math.floor((size - head.length) / line.length)));
  return Buffer.from(head + body, 'latin1');
}

/** Writes the files and rows (see the module comment); returns the number of messages. */
export async function generateMaildrop(o: GenerateOptions): Promise<number> {
  const account = o.account ?? 'alice';
  const size = o.size ?? 600;
  const first = o.firstUid ?? 1;
  await mkdir(path.join(o.dataDir, 'accounts'), { recursive: true });
  const log = pino({ level: 'silent' });
  const db = await openStateDb({ file: path.join(o.dataDir, 'state.db'), log, clock: systemClock });
  try {
    const dir = await ensureFolder(maildirPath(o.dataDir, account), INBOX);
    const insert = db.prepare(
      `INSERT INTO messages (account, uid, folder, file, size, wsize, key, flags, stored_at, eoh)
       VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, 1)`,
    );
    const storedSec = Math.floor(Date.now() / 1000);
    const rows: Array<[number, string, number, number, string]> = [];
    for (let uid = first; uid < first + o.count; uid++) {
      const bytes = syntheticMessage(uid, size);
      const key = `g${uid}`;
      // every line ends with CRLF already: the wire size is the stored size
      const name = formatName({ storedSec, uid, size: bytes.length, wsize: bytes.length, key });
      if (o.files !== false) writeFileSync(path.join(dir, 'new', name), bytes);
      rows.push([uid, `new/${name}`, bytes.length, bytes.length, key]);
    }
    db.transaction(() => {
      for (const [uid, file, s, w, key] of rows) insert.run(account, uid, INBOX, file, s, w, key, storedSec * 1000);
      db.prepare(
        `INSERT INTO accounts (account, next_uid) VALUES (?, ?)
         ON CONFLICT (account) DO UPDATE SET next_uid = max(next_uid, excluded.next_uid)`,
      ).run(account, first + o.count);
    })();
  } finally {
    db.close();
  }
  return o.count;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dataDir, count = '1000000', account = 'alice', size = '600', mode] = process.argv.slice(2);
  if (!dataDir) throw new Error('usage: gen-maildrop.ts <dataDir> [count] [account] [size] [rows-only]');
  const t0 = performance.now();
  await generateMaildrop({ dataDir, count: Number(count), account, size: Number(size), files: mode !== 'rows-only' });
  console.log(`${count} messages in ${dataDir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
