/**
 * The durable change journal (`ChangeJournal` of `mailboxes.ts`) over state.db's `journal`
 * table: written by the local IMAP view in the same transaction as the change it carries
 * (`addJournalEntry`), drained in id order by the upstream replay.
 *
 * Invariants:
 * - An entry moves queued → inflight → done, or → failed (permanent) / back to queued
 *   (temporary); `drop` ends any entry not done; nothing is ever deleted.
 * - `complete` gives local messages their upstream keys in the SAME transaction as the entry's
 *   `done`: the file is renamed to the new `K=` first (durably), so a crash in between leaves a
 *   file whose name already has the upstream key (recovery re-keys the row from it) and an
 *   entry still inflight (the replay finds the change landed and completes it again).
 *   Later entries of the account that name the old local key get the upstream one
 *   (`journal-keys.ts`, which also follows the keys a UIDVALIDITY re-key moves).
 */
import type { Clock } from '../shared/clock.js';
import { JournalKeys } from './journal-keys.js';
import type { MailboxAccountStore } from './mailbox-account.js';
import type { ChangeJournal, JournalChange, JournalEntry, JournalState, KeyAssignment } from './mailboxes.js';
import { localKey } from './maildir.js';
import type { StateDb } from './state-db.js';

interface Row {
  id: number;
  account: string;
  change: string;
  state: JournalState;
  createdAt: number;
  tries: number;
  nextAttempt: number | null;
  lastError: string | null;
  inflightNote: string | null;
}

const COLS = `id, account, change, state, created_at AS createdAt, tries, next_attempt AS nextAttempt,
  last_error AS lastError, inflight_note AS inflightNote`;
const OPEN = `state IN ('queued', 'inflight')`;
const NOT_DONE = `state IN ('queued', 'inflight', 'failed')`;

function prepare(db: StateDb) {
  return {
    add: db.prepare<[string, string, number]>(
      `INSERT INTO journal (account, change, state, created_at) VALUES (?, ?, 'queued', ?)`,
    ),
    byId: db.prepare<[number], Row>(`SELECT ${COLS} FROM journal WHERE id = ?`),
    pending: db.prepare<[string], Row>(`SELECT ${COLS} FROM journal WHERE account = ? AND ${OPEN} ORDER BY id`),
    listAll: db.prepare<[], Row>(`SELECT ${COLS} FROM journal WHERE ${NOT_DONE} ORDER BY id`),
    listOne: db.prepare<[string], Row>(`SELECT ${COLS} FROM journal WHERE account = ? AND ${NOT_DONE} ORDER BY id`),
    counts: db.prepare<[], { account: string; pending: number; failed: number }>(
      `SELECT account, sum(${OPEN}) AS pending, sum(state = 'failed') AS failed FROM journal
       WHERE ${NOT_DONE} GROUP BY account`,
    ),
    inflight: db.prepare<[string | null, number]>(
      `UPDATE journal SET state = 'inflight', tries = tries + 1, inflight_note = coalesce(?, inflight_note)
       WHERE id = ? AND ${OPEN}`,
    ),
    done: db.prepare<[number, number]>(`UPDATE journal SET state = 'done', done_at = ? WHERE id = ? AND ${NOT_DONE}`),
    fail: db.prepare<[string, string, number | null, number]>(
      `UPDATE journal SET state = ?, last_error = ?, next_attempt = ? WHERE id = ? AND ${NOT_DONE}`,
    ),
    retry: db.prepare<[number]>(
      `UPDATE journal SET state = 'queued', next_attempt = NULL WHERE id = ? AND state = 'failed'`,
    ),
    drop: db.prepare<[number]>(`UPDATE journal SET state = 'dropped' WHERE id = ? AND ${NOT_DONE}`),
    inflightOf: db.prepare<[string], { change: string }>(
      `SELECT change FROM journal WHERE account = ? AND state = 'inflight'`,
    ),
  };
}

type Statements = ReturnType<typeof prepare>;
const cache = new WeakMap<StateDb, Statements>();
function statements(db: StateDb): Statements {
  let s = cache.get(db);
  if (!s) {
    s = prepare(db);
    cache.set(db, s);
  }
  return s;
}

/** Queue a change (call inside the transaction that makes it). */
export function addJournalEntry(db: StateDb, account: string, change: JournalChange, now: number): void {
  statements(db).add.run(account, JSON.stringify(change), now);
}

/** Folders an inflight entry of the account touches (source and target). */
export function inflightFolders(db: StateDb, account: string): Set<string> {
  const out = new Set<string>();
  for (const r of statements(db).inflightOf.all(account)) {
    const c = JSON.parse(r.change) as JournalChange;
    out.add(c.folder);
    if ('to' in c) out.add(c.to);
  }
  return out;
}

/** Per UID, the flags (lower case) that flag entries still to replay touch; `all` for a replace. */
export function pendingFlagTouches(db: StateDb, account: string): Map<number, Set<string> | 'all'> {
  const out = new Map<number, Set<string> | 'all'>();
  for (const r of statements(db).pending.all(account)) {
    const c = JSON.parse(r.change) as JournalChange;
    if (c.kind !== 'flags') continue;
    for (const uid of c.uids) {
      const cur = out.get(uid);
      if (cur === 'all') continue;
      if (c.op === 'replace') out.set(uid, 'all');
      else out.set(uid, new Set([...(cur ?? []), ...c.flags.map((f) => f.toLowerCase())]));
    }
  }
  return out;
}

function entryOf(r: Row): JournalEntry {
  return {
    id: r.id,
    account: r.account,
    change: JSON.parse(r.change) as JournalChange,
    state: r.state,
    createdAt: r.createdAt,
    tries: r.tries,
    ...(r.nextAttempt === null ? {} : { nextAttempt: r.nextAttempt }),
    ...(r.lastError === null ? {} : { lastError: r.lastError }),
    ...(r.inflightNote === null ? {} : { inflightNote: r.inflightNote }),
  };
}

/** The journal of every account of one state.db. */
export class ChangeJournalImpl implements ChangeJournal {
  private readonly s: Statements;

  constructor(
    private readonly db: StateDb,
    private readonly storeOf: (account: string) => MailboxAccountStore | undefined,
    private readonly clock: Clock,
  ) {
    this.s = statements(db);
  }

  pending(account: string): JournalEntry[] {
    return this.s.pending.all(account).map(entryOf);
  }

  list(account?: string): JournalEntry[] {
    return (account === undefined ? this.s.listAll.all() : this.s.listOne.all(account)).map(entryOf);
  }

  counts(): Map<string, { pending: number; failed: number }> {
    return new Map(this.s.counts.all().map((r) => [r.account, { pending: r.pending, failed: r.failed }]));
  }

  markInflight(id: number, note?: string): void {
    this.s.inflight.run(note ?? null, id);
  }

  complete(id: number, keys: readonly KeyAssignment[] = []): void {
    const row = this.s.byId.get(id);
    if (!row || row.state === 'done') return;
    const store = this.storeOf(row.account);
    const renames: Array<{ apply: () => void; after: () => void }> = [];
    const rekeyed = new Map<string, string>();
    const change = JSON.parse(row.change) as JournalChange;
    const target = change.kind === 'append' ? change.folder : 'to' in change ? change.to : undefined;
    const gone: string[] = [];
    for (const k of keys) {
      const old = store?.deps.ledger.message(row.account, k.uid)?.key;
      const r = store?.rekeyLocal(k.uid, k.key);
      if (r) renames.push(r);
      else if (old === undefined && target) gone.push(k.key);
      // later entries may name the local key, or the row's key if a crash left it re-keyed already
      rekeyed.set(localKey(k.uid), k.key);
      if (old !== undefined) rekeyed.set(old, k.key);
    }
    const now = this.clock.now();
    this.db.transaction(() => {
      for (const r of renames) r.apply();
      // expunged locally before its upstream key was known: the pull must not bring it back
      for (const key of gone) store?.deps.ledger.addTombstone(row.account, target as string, key, now);
      this.s.done.run(now, id);
      if (rekeyed.size) new JournalKeys(this.db, row.account, { after: id }).rename(rekeyed);
    })();
    for (const r of renames) r.after();
    if (gone.length && target) store?.noteKeys(target, { tombed: gone });
  }

  fail(id: number, error: string, opts: { permanent: boolean; nextAttempt?: number }): void {
    this.s.fail.run(opts.permanent ? 'failed' : 'queued', error, opts.nextAttempt ?? null, id);
  }

  retry(id: number): boolean {
    return this.s.retry.run(id).changes > 0;
  }

  drop(id: number): boolean {
    return this.s.drop.run(id).changes > 0;
  }
}
