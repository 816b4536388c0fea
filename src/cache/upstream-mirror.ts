/**
 * `UpstreamMirror` (mailboxes.ts) of one IMAP account: what a pull learned of changes made
 * upstream by other devices, applied to the local view (docs/imap-server.md).
 *
 * Invariants:
 * - An upstream expunge wins: the rows and files go (durably, as a local expunge does, without a
 *   journal entry) and the keys are tombstoned, so a listing that still shows them for a moment
 *   does not download them again.
 * - Flags merge per flag: a flag touched by a journal entry still to replay keeps its local
 *   state (the local change is the later one); every other flag takes the upstream state.
 *   Letters this view does not know are kept.
 * - Folders: only those the pull downloads are shown (shown = pulled); a folder that leaves the
 *   set is hidden, never deleted: its rows, files and cursor stay, so it returns as it was.
 * - A folder the upstream no longer has (deleted, or renamed: IMAP has no stable folder ids) is
 *   removed with its mail, without a journal entry, unless a local change to it still has to be
 *   carried (a journal entry not done names it, or it holds messages not upstream yet): the replay
 *   then fails it visibly, and once it is dropped the next pull removes the folder.
 * - A folder an older localpost cached under its upstream spelling (`INBOX.Sent`) moves to its
 *   name (`INBOX/Sent`) before it is pulled, so its mail is never downloaded a second time.
 * - Changes are announced like local ones (`flags`, `expunged`, `folders` events).
 */
import { inflightFolders } from './change-journal.js';
import { type MailboxAccountStore, type MailboxView, mailboxMessage } from './mailbox-account.js';
import { imapFlags, sameFlags, sortLetters, storedFlags } from './mailbox-flags.js';
import { FolderOps } from './mailbox-folders.js';
import type { FolderReconcile, JournalEntry, MailboxMessage, SpecialUse, UpstreamMirror } from './mailboxes.js';
import { isLocalKey, normalizeFolder } from './maildir.js';
import { INBOX } from './message-store.js';

const KNOWN_LETTERS = new Set('SRFTDP');

/** The mirror of one account. */
export class UpstreamMirrorImpl implements UpstreamMirror {
  private readonly ops: FolderOps;

  constructor(
    private readonly s: MailboxAccountStore,
    private readonly view: MailboxView,
    private readonly pendingFlags: (account: string) => Map<number, Set<string> | 'all'>,
    /** The account's journal entries not done (queued, inflight, failed). */
    private readonly openEntries: (account: string) => JournalEntry[],
  ) {
    this.ops = new FolderOps(s, view);
  }

  applyUpstreamFlags(folder: string, flags: ReadonlyArray<{ key: string; flags: readonly string[] }>): Promise<number> {
    const f = normalizeFolder(folder);
    return this.s.exclusive(async () => {
      const rows = new Map(this.s.rows.messages(this.s.accountId, f).map((r) => [r.key, r]));
      const touched = this.pendingFlags(this.s.accountId);
      const changed: MailboxMessage[] = [];
      this.s.deps.ledger.transaction(() => {
        let modseq = 0;
        for (const u of flags) {
          const r = rows.get(u.key);
          if (!r) continue;
          const mine = touched.get(r.uid);
          if (mine === 'all') continue;
          const local = new Set(imapFlags(r.flags, r.keywords));
          const up = new Set(imapFlags(storedFlags(u.flags).letters, storedFlags(u.flags).keywords));
          const merged = [...new Set([...local, ...up])].filter((fl) =>
            mine?.has(fl.toLowerCase()) ? local.has(fl) : up.has(fl),
          );
          const next = storedFlags(merged);
          next.letters = sortLetters(next.letters + [...r.flags].filter((l) => !KNOWN_LETTERS.has(l)).join(''));
          if (sameFlags(next, { letters: r.flags, keywords: r.keywords })) continue;
          modseq ||= this.s.rows.nextModseq(this.s.accountId);
          this.s.rows.setFlags(this.s.accountId, r.uid, next.letters, next.keywords, modseq);
          changed.push(mailboxMessage({ ...r, flags: next.letters, keywords: next.keywords, modseq }));
        }
        if (modseq) this.s.rows.raiseFolder(this.s.accountId, f, 0, modseq);
      });
      if (changed.length) this.s.emit({ kind: 'flags', folder: f, messages: changed });
      return changed.length;
    });
  }

  applyUpstreamExpunges(folder: string, keys: readonly string[]): Promise<number> {
    const f = normalizeFolder(folder);
    return this.s.exclusive(async () => {
      const wanted = new Set(keys);
      const rows = this.s.rows.messages(this.s.accountId, f).filter((r) => wanted.has(r.key));
      if (!rows.length) return 0;
      await this.view.removeRows(f, rows, () => undefined);
      this.s.emit({ kind: 'expunged', folder: f, uids: rows.map((r) => r.uid) });
      return rows.length;
    });
  }

  noteUpstreamFolders(
    folders: ReadonlyArray<{ name: string; specialUse?: SpecialUse; pulled: boolean }>,
  ): Promise<void> {
    const account = this.s.accountId;
    return this.s.exclusive(async () => {
      let changed = false;
      this.s.deps.ledger.transaction(() => {
        for (const u of folders) {
          const name = normalizeFolder(u.name);
          const row = this.s.rows.folder(account, name);
          if (!u.pulled) {
            // out of the set: hidden, mail kept (it shows again when the folder comes back)
            if (row?.shown && !row.local && name !== INBOX) {
              this.s.rows.setShown(account, name, false);
              changed = true;
            }
            continue;
          }
          if (this.s.ensureFolderRow(name)) changed = true;
          else if (row && !row.shown) {
            this.s.rows.setShown(account, name, true);
            changed = true;
          }
          const use = u.specialUse ? u.specialUse.slice(1) : null;
          if (use && this.s.rows.folder(account, name)?.specialUse !== use) {
            this.s.rows.setSpecialUse(account, name, use);
            changed = true;
          }
        }
      });
      if (changed) this.s.emit({ kind: 'folders' });
    });
  }

  async reconcileUpstreamFolders(
    listed: ReadonlyArray<{ name: string; path: string }>,
    gone?: (folder: string) => Promise<boolean>,
  ): Promise<FolderReconcile> {
    const out: FolderReconcile = { adopted: [], removed: [], kept: [], waiting: [] };
    const account = this.s.accountId;
    const names = new Set(listed.map((u) => normalizeFolder(u.name)));
    const pulled = new Set(this.s.rows.cursorFolders(account));
    for (const u of listed) {
      const from = normalizeFolder(u.path);
      const to = normalizeFolder(u.name);
      if (from === to || names.has(from) || !pulled.has(from) || pulled.has(to)) continue;
      const r = await this.ops.adopt(from, to, () => this.journalNames([from, to]));
      if (r?.wait) out.waiting.push({ folder: to, why: r.wait });
      if (r) continue; // skipped: a copy under `to` exists, the old one goes below as gone
      out.adopted.push({ from, to });
      pulled.delete(from);
      pulled.add(to);
    }
    // renamed or deleted locally, not yet upstream: pulling it would bring its mail back
    for (const e of this.openEntries(account)) {
      const c = e.change;
      if ((c.kind !== 'rename' && c.kind !== 'delete') || c.folder === INBOX) continue; // INBOX keeps its cursor
      for (const n of names)
        if (n === c.folder || n.startsWith(`${c.folder}/`))
          out.waiting.push({ folder: n, why: `journal entry ${e.id} (${c.kind}, ${e.state}) is not done` });
    }
    if (!names.has(INBOX)) return out; // not a complete listing: nothing is taken for gone
    for (const folder of this.s.rows.cursorFolders(account)) {
      if (names.has(folder) || folder === INBOX) continue;
      if (gone && !(await gone(folder))) {
        out.kept.push({ folder, why: 'not in the LIST but still there upstream (STATUS answered)' });
        continue;
      }
      const why = await this.ops.dropGone(folder, () => this.journalNames([folder]) ?? this.notUpstream(folder));
      if (why) out.kept.push({ folder, why });
      else out.removed.push(folder);
    }
    return out;
  }

  /** Why to wait: a journal entry not done names one of `folders` (or a folder below one). */
  private journalNames(folders: readonly string[]): string | undefined {
    const hit = (n: string | undefined) => n !== undefined && folders.some((f) => n === f || n.startsWith(`${f}/`));
    const e = this.openEntries(this.s.accountId).find((x) => hit(x.change.folder) || hit(targetOf(x)));
    return e && `journal entry ${e.id} (${e.change.kind}, ${e.state}) is not done`;
  }

  /** Why to keep: messages created in `folder` locally that are not upstream yet. */
  private notUpstream(folder: string): string | undefined {
    const n = this.s.rows.messages(this.s.accountId, folder).filter((r) => isLocalKey(r.key)).length;
    return n ? `${n} message(s) created locally are not upstream yet` : undefined;
  }

  localFolders(): string[] {
    return this.s.rows.localFolders(this.s.accountId);
  }

  unresolvedChanges(folder: string): boolean {
    return inflightFolders(this.s.deps.ledger.db, this.s.accountId).has(normalizeFolder(folder));
  }
}

/** The second folder of a change (copy, move, rename), if any. */
function targetOf(e: JournalEntry): string | undefined {
  return 'to' in e.change ? e.change.to : undefined;
}
