/**
 * Child process for the local IMAP kill test (tests/reliability/mailbox-kill.test.ts): opens the
 * cache, runs ONE change of the local IMAP view (or the POP3 move to Trash) and SIGKILLs itself
 * right before or right after the change's SQLite transaction (its files durable, its rows not /
 * its rows written, the old files not removed yet), or at a file step: `link` when the first hard
 * link is made (intent recorded, nothing linked), `clear` when the intent record is removed (old
 * files unlinked). Exits 0 if it was never killed.
 *
 * Usage: node --import tsx tests/support/mailbox-crash-child.ts <dataDir> <op> <before|after|link|clear|never>
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';

/**
 * The changes the test runs, on INBOX (3 messages) and Archive (1 message). `gone`: the pull's
 * LIST no longer has Archive (deleted upstream); `adopt`: Archive is the old local spelling of
 * the upstream folder the LIST names `Old/Archive` (both local only, no journal entry).
 */
export const CRASH_OPS = ['append', 'copy', 'move', 'expunge', 'rename', 'delete', 'flags', 'gone', 'adopt'] as const;

/** Kill points of the move to Trash, in the order its steps run. */
export const TRASH_POINTS = ['link', 'before', 'after', 'clear'] as const;

/** Kill at the first call of a `node:fs/promises` function whose first argument passes `when`. */
function killAt(fn: 'link' | 'rm', when: (p: string) => boolean): void {
  const fsp = createRequire(import.meta.url)('node:fs/promises') as Record<string, (...a: unknown[]) => unknown>;
  const orig = fsp[fn] as (...a: unknown[]) => unknown;
  fsp[fn] = (...a: unknown[]) => {
    if (when(String(a[0]))) process.kill(process.pid, 'SIGKILL');
    return orig(...a);
  };
  syncBuiltinESMExports(); // the named imports of the cache's modules see it
}

async function main(dataDir: string, op: string, point: string): Promise<void> {
  const cache = await Cache.open({ dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
  const mb = cache.mailboxes('a', { protocol: 'imap' });
  const ledger = cache.account('a').deps.ledger;
  const transaction = ledger.transaction.bind(ledger);
  ledger.transaction = <T>(fn: () => T): T => {
    if (point === 'before') process.kill(process.pid, 'SIGKILL');
    const r = transaction(fn);
    if (point === 'after') process.kill(process.pid, 'SIGKILL');
    return r;
  };
  if (op === 'gone' || op === 'adopt') cache.setCursor('a', 'Archive', { uidValidity: '2', lastUid: 1 });
  if (op === 'adopt') {
    // the new name's empty row an older listing left (hidden, so "before" lists the same folders)
    cache.account('a').ensureFolderRow('Old/Archive');
    cache.account('a').rows.setShown('a', 'Old/Archive', false);
  }
  if (point === 'link') killAt('link', () => true);
  if (point === 'clear') killAt('rm', (p) => p.endsWith('mailbox-intent'));
  const inbox = mb.select('INBOX').messages.map((m) => m.uid);
  const first = inbox[0] as number;
  if (op === 'append') await mb.append('Archive', Buffer.from('Message-ID: <new@x>\r\n\r\nappended\r\n'));
  else if (op === 'copy') await mb.copy('INBOX', [first], 'Archive');
  else if (op === 'move') await mb.move('INBOX', [first], 'Archive');
  else if (op === 'expunge') await mb.expunge('INBOX', [first]);
  else if (op === 'rename') await mb.renameFolder('Archive', 'Old/Archive');
  else if (op === 'delete') await mb.deleteFolder('Archive');
  else if (op === 'gone') await cache.mirror('a').reconcileUpstreamFolders([{ name: 'INBOX', path: 'INBOX' }]);
  else if (op === 'adopt')
    await cache.mirror('a').reconcileUpstreamFolders([
      { name: 'INBOX', path: 'INBOX' },
      { name: 'Old/Archive', path: 'Archive' },
    ]);
  else if (op === 'flags') await mb.setFlags('INBOX', [first], { op: 'add', flags: ['\\Seen', 'Done'] });
  else if (op === 'trash') await cache.account('a').trash([first], { deleteUpstream: true });
  cache.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2] ?? '', process.argv[3] ?? '', process.argv[4] ?? '').catch((err) => {
    process.stderr.write(`${String(err?.stack ?? err)}\n`);
    process.exit(1);
  });
}
