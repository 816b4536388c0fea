/**
 * Group commit of acceptances: the messages whose files are fsynced by the same turn of the
 * event loop are committed together — their index rows in one SQLite transaction, then each
 * one's renames out of `tmp/`, then one fsync of `outbox/` for all of them. Each caller is
 * answered only after that fsync, so each 250 still follows its own data, name and row
 * (accept.ts); what is shared is the cost, not the promise.
 *
 * Failures stay per message where they can: a rename that fails rejects that message alone
 * (its row and files are removed by its caller); a failed transaction or directory fsync
 * rejects every message of the group.
 */
import type { DirSyncer } from '../../shared/durable-fs.js';
import type { OutboxEntry } from './entry.js';
import type { OutboxIo } from './io.js';
import type { OutboxIndex } from './rows.js';

/** One acceptance waiting for its commit. */
export interface PendingCommit {
  entry: OutboxEntry;
  dedupe: string | null;
  /** Renames to make, in order (`tmp/<id>.eml` → `<id>.eml` first). */
  moves: (readonly [from: string, to: string])[];
  /** Files the caller must remove on a failure: a moved file's name is replaced by its new one. */
  created: string[];
  /** Set once the row is written (the caller removes it on a failure). */
  rowWritten?: boolean;
}

interface Waiting {
  item: PendingCommit;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Commits acceptances in groups (see the module comment). */
export class CommitGroup {
  private waiting: Waiting[] = [];

  constructor(private readonly c: { io: OutboxIo; dirSync: DirSyncer; index: OutboxIndex }) {}

  /** Resolves once the item's row is written and its files are renamed and their directory fsynced. */
  commit(item: PendingCommit): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.waiting.length) setImmediate(() => void this.flush());
      this.waiting.push({ item, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const group = this.waiting;
    this.waiting = [];
    try {
      this.c.index.db.transaction(() => {
        for (const { item } of group) this.c.index.put(item.entry, item.dedupe);
      })();
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    const renamed: Waiting[] = [];
    for (const w of group) {
      w.item.rowWritten = true;
      try {
        for (const [from, to] of w.item.moves) {
          await this.c.io.rename(from, to);
          w.item.created[w.item.created.indexOf(from)] = to;
        }
        renamed.push(w);
      } catch (err) {
        w.reject(err);
      }
    }
    if (!renamed.length) return;
    try {
      await this.c.dirSync.sync();
    } catch (err) {
      for (const w of renamed) w.reject(err);
      return;
    }
    for (const w of renamed) w.resolve();
  }
}
