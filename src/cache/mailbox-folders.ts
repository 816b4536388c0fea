/**
 * Folder changes of the local IMAP view: CREATE, RENAME, DELETE, SUBSCRIBE (RFC 3501 §6.3,
 * docs/imap-server.md), on Maildir++ directories (`.<encoded>`, one per folder, children
 * being separate directories) and the `folders` rows.
 *
 * Invariants:
 * - CREATE and RENAME create missing parents too; a folder keeps its UIDVALIDITY across a
 *   RENAME (its row is renamed); a folder created again after a DELETE gets a greater one.
 * - RENAME moves the folder's and its children's directories, rows, folder rows and tombstones;
 *   renaming INBOX moves its messages (same UIDs) into the new folder and leaves INBOX empty.
 * - A folder created or renamed here is marked local: it stays in an IMAP account's pulled set
 *   whatever `incoming.folders` says (docs/imap-server.md "Which folders"); CREATE of a hidden
 *   upstream folder brings it back into the set.
 * - Each change records its intent first (`mailbox-intent.ts`): a crash before its transaction
 *   renames back and removes the directories it created; after it, the change stands.
 */
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../shared/durable-fs.js';
import type { MailboxAccountStore, MailboxView } from './mailbox-account.js';
import { clearIntent, removePaths, writeIntent } from './mailbox-intent.js';
import { FolderOperationError, IMAP_DELIMITER, NoSuchFolderError } from './mailboxes.js';
import { encodeFolder, ensureFolder, folderDir, locateFile, normalizeFolder } from './maildir.js';
import { INBOX } from './message-store.js';

/** A folder name as given by a client: trailing delimiter dropped, no empty level. */
function folderName(name: string): string {
  const n = name.endsWith(IMAP_DELIMITER) ? name.slice(0, -1) : name;
  if (n === '' || n.split(IMAP_DELIMITER).some((p) => p === ''))
    throw new FolderOperationError(`invalid folder name ${JSON.stringify(name)}`, 'CANNOT');
  return normalizeFolder(n);
}

/** `a/b/c` → `a`, `a/b`. */
function ancestors(folder: string): string[] {
  const parts = folder.split(IMAP_DELIMITER);
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join(IMAP_DELIMITER));
}

/** Folder changes of one account. */
export class FolderOps {
  constructor(
    private readonly s: MailboxAccountStore,
    private readonly view: MailboxView,
  ) {}

  /** A folder a client sees (a hidden row is none: upstream-mirror.ts). */
  private exists(folder: string): boolean {
    return Boolean(this.s.rows.folder(this.s.accountId, folder)?.shown);
  }

  /** A row of that name, shown or hidden. */
  private known(folder: string): boolean {
    return this.s.rows.folder(this.s.accountId, folder) !== undefined;
  }

  /** `folder` and its missing ancestors, parents first; the directories among them not on disk yet. */
  private missing(folder: string): { names: string[]; dirs: string[] } {
    const names = [...ancestors(folder), folder].filter((n) => n !== INBOX && !this.known(n));
    const dirs = names.filter((n) => !existsSync(folderDir(this.s.deps.maildir, n))).map(encodeFolder);
    return { names, dirs };
  }

  /** Directories of `names` (durable), as part of a change whose intent is recorded. */
  private async makeDirs(names: readonly string[]): Promise<void> {
    for (const n of names) await ensureFolder(this.s.deps.maildir, n);
  }

  create(name: string): Promise<void> {
    const f = folderName(name);
    return this.s.exclusive(async () => {
      if (this.exists(f)) throw new FolderOperationError(`${f} already exists`, 'ALREADYEXISTS');
      if (this.known(f)) return this.unhide(f);
      const { names, dirs } = this.missing(f);
      const { dataDir, ledger } = this.s.deps;
      await writeIntent(dataDir, this.s.accountId, { check: { folder: f, exists: true }, created: dirs });
      await this.makeDirs(names);
      ledger.transaction(() => {
        for (const n of names) {
          this.s.ensureFolderRow(n);
          this.s.rows.markLocal(this.s.accountId, n);
          this.view.journal({ kind: 'create', folder: n });
        }
      });
      await clearIntent(dataDir, this.s.accountId);
      this.s.emit({ kind: 'folders' });
    });
  }

  /**
   * CREATE of an upstream folder outside the pulled set: it joins the set (shown, pulled from
   * the next pull on, its cached mail back); the journaled create is a no-op upstream.
   */
  private unhide(f: string): void {
    this.s.deps.ledger.transaction(() => {
      this.s.rows.markLocal(this.s.accountId, f);
      this.view.journal({ kind: 'create', folder: f });
    });
    this.s.emit({ kind: 'folders' });
  }

  rename(fromName: string, toName: string): Promise<void> {
    const f = normalizeFolder(fromName);
    const t = folderName(toName);
    return this.s.exclusive(async () => {
      if (!this.exists(f)) throw new NoSuchFolderError(fromName);
      if (this.known(t)) throw new FolderOperationError(`${t} already exists`, 'ALREADYEXISTS');
      if (t === INBOX || t.startsWith(`${f}${IMAP_DELIMITER}`))
        throw new FolderOperationError(`cannot rename ${f} to ${t}`, 'CANNOT');
      await this.s.forgetFolderDirs();
      if (f === INBOX) await this.renameInbox(t);
      else await this.renameTree(f, t);
      this.s.forgetFolderKeys();
      await clearIntent(this.s.deps.dataDir, this.s.accountId);
      this.s.emit({ kind: 'folders' });
    });
  }

  /** `f` and every folder below it move under `t`. */
  private async renameTree(f: string, t: string): Promise<void> {
    const { maildir, dataDir, ledger } = this.s.deps;
    const below = (n: string) => n === f || n.startsWith(`${f}${IMAP_DELIMITER}`);
    const names = new Set([
      ...this.s.rows.folders(this.s.accountId).map((r) => r.folder),
      ...this.s.rows.usedFolders(this.s.accountId),
    ]);
    // a child of `t` may exist without `t` (DELETE keeps a deleted folder's children)
    const clash = [...names]
      .filter(below)
      .map((n) => t + n.slice(f.length))
      .find((n) => this.known(n) || existsSync(path.join(maildir, encodeFolder(n))));
    if (clash) throw new FolderOperationError(`${clash} already exists`, 'ALREADYEXISTS');
    const renamed: Array<[string, string]> = [...names]
      .filter(below)
      .map((n): [string, string] => [encodeFolder(n), encodeFolder(t + n.slice(f.length))])
      .filter(([a]) => existsSync(path.join(maildir, a)));
    const parents = this.missing(t);
    parents.names.pop(); // `t` itself arrives by the rename
    parents.dirs = parents.dirs.filter((d) => d !== encodeFolder(t));
    await writeIntent(dataDir, this.s.accountId, {
      check: { folder: t, exists: true },
      renamed,
      created: parents.dirs,
    });
    await this.makeDirs(parents.names);
    for (const [a, b] of renamed) await rename(path.join(maildir, a), path.join(maildir, b));
    await fsyncDir(maildir);
    ledger.transaction(() => {
      for (const n of parents.names) {
        this.s.ensureFolderRow(n);
        this.s.rows.markLocal(this.s.accountId, n);
      }
      this.s.rows.renameFolder(this.s.accountId, f, t);
      this.s.rows.markLocal(this.s.accountId, t);
      this.view.journal({ kind: 'rename', folder: f, to: t });
    });
  }

  /** RFC 3501 §6.3.5: INBOX's messages move to a new folder `t` (keeping their UIDs); INBOX stays, empty. */
  private async renameInbox(t: string): Promise<void> {
    const { maildir, dataDir, ledger } = this.s.deps;
    const { names, dirs } = this.missing(t);
    const rows = ledger.folderMessages(this.s.accountId, INBOX);
    const moves: Array<{ uid: number; file: string; flags: string }> = [];
    const renamed: Array<[string, string]> = [];
    const tdir = encodeFolder(t);
    for (const r of rows) {
      const file = await locateFile(maildir, r);
      if (!file) continue;
      moves.push({ uid: r.uid, file, flags: r.flags });
      renamed.push([file, path.join(tdir, file)]);
    }
    await writeIntent(dataDir, this.s.accountId, { check: { folder: t, exists: true }, renamed, created: dirs });
    await this.makeDirs(names);
    for (const [a, b] of renamed) await rename(path.join(maildir, a), path.join(maildir, b));
    for (const sub of ['new', 'cur']) {
      await fsyncDir(path.join(maildir, sub));
      await fsyncDir(path.join(maildir, tdir, sub));
    }
    ledger.transaction(() => {
      for (const n of names) {
        this.s.ensureFolderRow(n);
        this.s.rows.markLocal(this.s.accountId, n);
      }
      const modseq = this.s.rows.nextModseq(this.s.accountId);
      for (const m of moves) ledger.moveMessage(this.s.accountId, m.uid, t, m.file, m.flags);
      const top = moves.reduce((a, m) => Math.max(a, m.uid), 0);
      this.s.rows.raiseFolder(this.s.accountId, t, top + 1, modseq);
      this.s.rows.raiseFolder(this.s.accountId, INBOX, 0, modseq);
      this.view.journal({ kind: 'rename', folder: INBOX, to: t });
    });
    if (moves.length) this.s.emit({ kind: 'expunged', folder: INBOX, uids: moves.map((m) => m.uid) });
  }

  delete(name: string): Promise<void> {
    const f = normalizeFolder(name);
    return this.s.exclusive(async () => {
      if (f === INBOX) throw new FolderOperationError('INBOX cannot be deleted', 'CANNOT');
      if (!this.exists(f)) throw new NoSuchFolderError(name);
      await this.s.forgetFolderDirs();
      const rows = this.s.rows.messages(this.s.accountId, f);
      const drop = () => {
        this.s.rows.deleteFolder(this.s.accountId, f);
        this.view.journal({ kind: 'delete', folder: f });
      };
      if (rows.length) await this.view.removeRows(f, rows, drop);
      else this.s.deps.ledger.transaction(drop);
      // a directory left by a crash here holds no message and no row names it: harmless
      await removePaths(this.s.deps.maildir, [encodeFolder(f)]);
      this.s.forgetFolderKeys();
      if (rows.length) this.s.emit({ kind: 'expunged', folder: f, uids: rows.map((r) => r.uid) });
      this.s.emit({ kind: 'folders' });
    });
  }

  async subscribe(name: string, subscribed: boolean): Promise<void> {
    const f = normalizeFolder(name);
    if (!this.exists(f)) throw new NoSuchFolderError(name);
    this.s.rows.subscribe(this.s.accountId, f, subscribed);
    this.s.emit({ kind: 'folders' });
  }
}
