/**
 * What the user has in a folder or has already dealt with, by content identity
 * (`content-identity.ts`): the folder's live rows, its tombstones, and the Trash rows of messages
 * deleted from it. When a folder's upstream keys all change (an IMAP UIDVALIDITY change, a POP3
 * provider renumbering its UIDLs), these records are matched to the new upstream listing by
 * identity and moved to the new keys (`AccountStoreImpl.adoptKeys`), so a message is neither
 * downloaded again nor brought back after the user deleted it.
 *
 * Identities missing from the ledger are computed from the files once and stored. A tombstone
 * whose file is gone and whose identity was never recorded (deleted by a localpost older than
 * identities) cannot be matched; it keeps its old key.
 */
import path from 'node:path';
import { identityOfFile } from './content-identity.js';
import type { Ledger, MessageRow } from './ledger.js';
import { folderDir, locateFile } from './maildir.js';
import { type KnownMessage, type ListedMessage, TRASH } from './message-store.js';

export type { KnownMessage, ListedMessage };

/** The known messages of `folder` whose key passes `keep` (default: all). */
export async function knownMessages(
  ledger: Ledger,
  account: string,
  maildir: string,
  folder: string,
  keep: (key: string) => boolean = () => true,
): Promise<KnownMessage[]> {
  const out: KnownMessage[] = [];
  const identOf = async (rowFolder: string, file: string): Promise<string | undefined> =>
    identityOfFile(path.join(folderDir(maildir, rowFolder), file)).catch(() => undefined);
  for (const r of ledger.folderMessages(account, folder)) {
    if (!keep(r.key)) continue;
    let ident = r.ident ?? undefined;
    if (!ident) {
      ident = await identOf(r.folder, r.file);
      if (ident) ledger.setMessageIdent(account, r.uid, ident);
    }
    if (ident) out.push({ key: r.key, ident, kind: 'live' });
  }
  const tombs = ledger.folderTombstones(account, folder).filter((t) => keep(t.key));
  if (tombs.some((t) => !t.ident)) {
    const trashed = new Map(ledger.folderMessages(account, TRASH).map((r) => [r.key, r]));
    for (const t of tombs) {
      const row = t.ident ? undefined : trashed.get(t.key);
      if (!row) continue;
      const ident = row.ident ?? (await identOf(row.folder, row.file));
      if (!ident) continue;
      t.ident = ident;
      ledger.setTombstoneIdent(account, folder, t.key, ident);
    }
  }
  for (const t of tombs) if (t.ident) out.push({ key: t.key, ident: t.ident, kind: 'deleted' });
  return out;
}

/**
 * Pair known messages with listed ones of the same identity, one to one, in listing order (two
 * copies of one message upstream match two known copies, never one twice). Known messages
 * already under their listed key are left alone. Returns the key moves to make.
 */
export function matchByIdentity(
  known: readonly KnownMessage[],
  listed: readonly ListedMessage[],
): Array<{ from: string; to: string; kind: KnownMessage['kind'] }> {
  const listedKeys = new Set(listed.map((l) => l.key));
  const byIdent = new Map<string, KnownMessage[]>();
  for (const k of known) {
    if (listedKeys.has(k.key)) continue; // still under a current key
    const list = byIdent.get(k.ident);
    if (list) list.push(k);
    else byIdent.set(k.ident, [k]);
  }
  const knownKeys = new Set(known.map((k) => k.key));
  const moves: Array<{ from: string; to: string; kind: KnownMessage['kind'] }> = [];
  for (const l of listed) {
    if (knownKeys.has(l.key)) continue; // already known under this key
    const k = byIdent.get(l.ident)?.shift();
    if (k) moves.push({ from: k.key, to: l.key, kind: k.kind });
  }
  return moves;
}

/**
 * Content identities of rows about to be deleted, for their tombstones (undefined where the file
 * is gone). `located[i]`, when given, is row i's file as the caller already found it (a path
 * relative to its folder), so it is not looked up twice.
 */
export async function identitiesOf(
  maildir: string,
  rows: ReadonlyArray<Pick<MessageRow, 'uid' | 'folder' | 'file' | 'ident'>>,
  located: ReadonlyArray<string | undefined> = [],
): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = [];
  for (const [i, r] of rows.entries()) {
    const file = r.ident ? undefined : (located[i] ?? (await locateFile(maildir, r)));
    const full = file && path.join(folderDir(maildir, r.folder), file);
    out.push(r.ident ?? (full ? await identityOfFile(full).catch(() => undefined) : undefined));
  }
  return out;
}
