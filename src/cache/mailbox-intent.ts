/**
 * The intent record of a local IMAP change that touches files (copy, move, append, expunge,
 * folder rename and delete), so that a crash at any step leaves the account as before the change
 * or as after it (docs/imap-server.md).
 *
 * Each such change, one at a time per account (the store's serial queue): 1. writes
 * `accounts/<id>/mailbox-intent` durably, saying which files and directories it creates or
 * renames, which it will remove, and how to tell whether its transaction committed; 2. does
 * the file steps that come before the rows (new names durable); 3. ONE transaction writes the
 * rows (and the journal entry); 4. removes what is obsolete; 5. removes the record (durably).
 * Start-up recovery calls `settleIntent` before it reads any name: committed → the removals
 * are finished; not committed → what was created is removed and what was renamed is renamed
 * back. Both are idempotent, so a crash during recovery is recovered the same way.
 */
import { constants, existsSync } from 'node:fs';
import { copyFile, link, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileDurable } from '../shared/durable-fs.js';
import type { Ledger } from './ledger.js';
import { accountDir } from './maildir.js';

/** File name of the record in the account directory. */
const INTENT_FILE = 'mailbox-intent';

/** How recovery tells whether the change's transaction committed. */
export type IntentCheck =
  /** Rows with these UIDs exist (the first one is checked). */
  | { rows: number[] }
  /** Rows with these UIDs are gone. */
  | { gone: number[] }
  /** The folders row of `folder` exists (`exists` true) or not. */
  | { folder: string; exists: boolean };

/** One change in progress; paths are relative to the account's Maildir. */
export interface MailboxIntent {
  check: IntentCheck;
  /** Files created before the transaction: removed when it did not commit. */
  created?: string[];
  /** Renames done before the transaction, in order: undone (in reverse) when it did not commit. */
  renamed?: Array<[string, string]>;
  /** Files and directories to remove once it committed. */
  obsolete?: string[];
}

const recordPath = (dataDir: string, account: string): string => path.join(accountDir(dataDir, account), INTENT_FILE);

/** Step 1: record the intent durably. */
export async function writeIntent(dataDir: string, account: string, intent: MailboxIntent): Promise<void> {
  await writeFileDurable(recordPath(dataDir, account), JSON.stringify(intent));
}

/** Step 5: the change is complete; drop the record (durably: a stale one must never come back). */
export async function clearIntent(dataDir: string, account: string): Promise<void> {
  await rm(recordPath(dataDir, account), { force: true });
  await fsyncDir(accountDir(dataDir, account));
}

/** Remove files or directories (recursively) and fsync their parents. */
export async function removePaths(maildir: string, rels: readonly string[]): Promise<void> {
  const parents = new Set<string>();
  for (const rel of rels) {
    const full = path.join(maildir, rel);
    await rm(full, { force: true, recursive: true });
    parents.add(path.dirname(full));
  }
  for (const dir of parents) if (existsSync(dir)) await fsyncDir(dir);
}

/** A hard link of an immutable message file, or a fsynced copy where links are refused. */
export async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
    await copyFile(src, dst, constants.COPYFILE_EXCL);
    const fh = await open(dst, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

function committed(ledger: Ledger, account: string, c: IntentCheck): boolean {
  if ('rows' in c) return c.rows.length > 0 && ledger.message(account, c.rows[0] as number) !== undefined;
  if ('gone' in c) return c.gone.length > 0 && ledger.message(account, c.gone[0] as number) === undefined;
  const row = ledger.db.prepare('SELECT 1 FROM folders WHERE account = ? AND folder = ?').get(account, c.folder);
  return (row !== undefined) === c.exists;
}

/** Start-up: finish or undo the change a crash interrupted; returns what was done, if anything. */
export async function settleIntent(
  dataDir: string,
  account: string,
  ledger: Ledger,
  maildir: string,
): Promise<'finished' | 'undone' | undefined> {
  let intent: MailboxIntent;
  try {
    intent = JSON.parse(await readFile(recordPath(dataDir, account), 'utf8')) as MailboxIntent;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const done = committed(ledger, account, intent.check);
  if (done) await removePaths(maildir, intent.obsolete ?? []);
  else {
    // renames first: a created directory may hold files renamed into it
    for (const [from, to] of [...(intent.renamed ?? [])].reverse()) {
      const a = path.join(maildir, from);
      const b = path.join(maildir, to);
      if (existsSync(b) && !existsSync(a)) {
        await rename(b, a);
        await fsyncDir(path.dirname(a));
        await fsyncDir(path.dirname(b));
      }
    }
    await removePaths(maildir, intent.created ?? []);
  }
  await clearIntent(dataDir, account);
  return done ? 'finished' : 'undone';
}
