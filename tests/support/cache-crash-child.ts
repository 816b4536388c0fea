/**
 * Child process for the SIGKILL crash test (tests/unit/cache-recovery.test.ts). It behaves like a
 * fetcher: walks the key sequence p0, p1, ... skipping keys `has()` already knows, writes each
 * message (overlapping finish() calls), commits in batches of 1–10, and prints `<folder>\t<key>`
 * for every committed message only after commit() resolved. It runs until it is killed.
 *
 * Usage: node --import tsx tests/support/cache-crash-child.ts <dataDir>
 */
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';

/** Deterministic body of a key, so the parent can verify the bytes. */
export function crashBody(key: string): Buffer {
  const n = Number(key.slice(1));
  const line = `line of ${key} with a bare LF\n`;
  return Buffer.from(`Subject: ${key}\r\n\r\n${line.repeat(1 + ((n * 37) % 300))}`);
}

/** Folder of a key (every third goes to a Maildir++ folder). */
export function crashFolder(key: string): string {
  return Number(key.slice(1)) % 3 === 0 ? 'Lists/node' : 'INBOX';
}

async function main(dataDir: string): Promise<void> {
  const cache = await Cache.open({ dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
  const store = cache.account('a');
  process.stdout.write('ready\n');
  for (let i = 0; ; ) {
    const n = 1 + Math.floor(Math.random() * 10);
    const finishing: Promise<unknown>[] = [];
    while (finishing.length < n) {
      const key = `p${i++}`;
      const folder = crashFolder(key);
      if (store.has(folder, key)) continue;
      const p = await store.begin(folder, key);
      const body = crashBody(key);
      p.stream.write(body.subarray(0, 7));
      p.stream.write(body.subarray(7));
      finishing.push(p.finish());
    }
    await Promise.all(finishing);
    const committed = await store.commit();
    process.stdout.write(committed.map((m) => `${m.folder}\t${m.key}\n`).join(''));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2] ?? '').catch((err) => {
    process.stderr.write(`${String(err?.stack ?? err)}\n`);
    process.exit(1);
  });
}
