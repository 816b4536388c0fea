/**
 * Message keys named by journal entries not done yet (queued, inflight, failed), rewritten when
 * the keys change: a local message learns its upstream key (`ChangeJournal.complete`: entries
 * after the completed one), or a folder's keys move after an upstream UIDVALIDITY change
 * (`AccountStoreImpl.adoptKeys`: entries of that folder). An entry names keys of its source
 * folder only (`keys` of flags, expunge, copy, move; a target's messages are named by local UID),
 * and a gone message is known upstream only by the key its entry recorded, so the rewrite runs in
 * the transaction that moves the key: a crash leaves both old or both new.
 *
 * Entries are read and parsed once per `load`; each `rename` writes only the entries it changes.
 */
import type { JournalChange } from './mailboxes.js';
import type { StateDb } from './state-db.js';

type Keyed = JournalChange & { keys?: string[] };

const statements = new WeakMap<StateDb, ReturnType<typeof prepare>>();
function prepare(db: StateDb) {
  return {
    notDone: db.prepare<[string], { id: number; change: string }>(
      `SELECT id, change FROM journal WHERE account = ? AND state IN ('queued', 'inflight', 'failed') ORDER BY id`,
    ),
    setChange: db.prepare<[string, number]>('UPDATE journal SET change = ? WHERE id = ?'),
  };
}

/** The keyed entries of an account, optionally only those after an id or of one folder. */
export class JournalKeys {
  private readonly entries = new Map<number, Keyed>();
  /** key → ids of the entries naming it. */
  private readonly byKey = new Map<string, Set<number>>();
  private readonly s: ReturnType<typeof prepare>;

  constructor(db: StateDb, account: string, only: { after?: number; folder?: string } = {}) {
    let s = statements.get(db);
    if (!s) {
      s = prepare(db);
      statements.set(db, s);
    }
    this.s = s;
    for (const r of s.notDone.all(account)) {
      if (only.after !== undefined && r.id <= only.after) continue;
      const c = JSON.parse(r.change) as Keyed;
      if (!c.keys?.length || (only.folder !== undefined && c.folder !== only.folder)) continue;
      this.entries.set(r.id, c);
      this.index(r.id, c.keys);
    }
  }

  /** Entries naming an old key name the new one (call inside the transaction that moves the keys). */
  rename(keys: ReadonlyMap<string, string>): void {
    const touched = new Set<number>();
    for (const from of keys.keys()) for (const id of this.byKey.get(from) ?? []) touched.add(id);
    for (const id of touched) {
      const c = this.entries.get(id);
      if (!c?.keys) continue;
      const next = c.keys.map((k) => keys.get(k) ?? k);
      if (next.every((k, i) => k === c.keys?.[i])) continue;
      for (const k of c.keys) this.byKey.get(k)?.delete(id);
      c.keys = next;
      this.index(id, next);
      this.s.setChange.run(JSON.stringify(c), id);
    }
  }

  private index(id: number, keys: readonly string[]): void {
    for (const k of keys) {
      const ids = this.byKey.get(k) ?? new Set<number>();
      ids.add(id);
      this.byKey.set(k, ids);
    }
  }
}
