/**
 * The selected mailbox of one session (RFC 3501 §5.2): the message sequence as this client
 * knows it, and the changes it has not been told of yet.
 *
 * Invariants:
 * - `uids` ascending and `msgs` parallel to it; message N is index N-1. The view changes only
 *   when the client is told: added messages are appended when EXISTS is sent, expunged ones
 *   removed when their EXPUNGE is sent (so a sequence number never means two messages between
 *   two responses).
 * - Changes from `onChange` (any writer) are queued, never sent from here; the session decides
 *   when (RFC 3501 §7: EXPUNGE not during FETCH, STORE, SEARCH; everything at once during IDLE).
 * - `\Recent` (`recent.ts`): a read-write view claims what is unclaimed when it is created and
 *   each message as it is announced (first listener first); a read-only one only looks. `recent`
 *   holds the UIDs recent in this session; `* n RECENT` follows each EXISTS.
 */
import type { MailboxEvent, MailboxMessage, MailboxSnapshot, MailboxStore } from '../../cache/mailboxes.js';
import type { RecentFloors } from './recent.js';
import { flagsFetchLine } from './responses.js';
import { formatNumbers, type RangeList, type SequenceSet } from './sequence-set.js';

export class SelectedMailbox {
  readonly name: string;
  readonly uidValidity: number;
  uids: number[];
  msgs: MailboxMessage[];
  private addedPending: MailboxMessage[] = [];
  private flagsPending = new Map<number, MailboxMessage>();
  private expungedPending = new Set<number>();
  /** UIDs that are `\Recent` in this session. */
  private readonly recent = new Set<number>();

  constructor(
    snapshot: MailboxSnapshot,
    readonly readOnly: boolean,
    private readonly floors: RecentFloors,
  ) {
    this.name = snapshot.info.name;
    this.uidValidity = snapshot.info.uidValidity;
    this.msgs = snapshot.messages;
    this.uids = snapshot.messages.map((m) => m.uid);
    this.takeRecent(this.uids, snapshot.info.uidNext);
  }

  /** Marks the UIDs still unclaimed as recent here; a read-write view claims them (below `uidNext`). */
  private takeRecent(uids: readonly number[], uidNext: number): void {
    const from = this.readOnly ? this.floors.floor(this.uidValidity) : this.floors.claim(this.uidValidity, uidNext);
    // ascending: only the tail can be recent
    for (let i = uids.length - 1; i >= 0 && (uids[i] as number) >= from; i--) this.recent.add(uids[i] as number);
  }

  isRecent(uid: number): boolean {
    return this.recent.has(uid);
  }

  /** Messages of the view that are recent in this session. */
  get recentCount(): number {
    return this.recent.size;
  }

  get exists(): number {
    return this.uids.length;
  }

  /** Index of `uid` in the view, or -1. */
  indexOf(uid: number): number {
    const u = this.uids;
    let lo = 0;
    let hi = u.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = u[mid] as number;
      if (v < uid) lo = mid + 1;
      else if (v > uid) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  /** Indexes (ascending) of the messages a sequence set names, by UID or by sequence number. */
  select(set: SequenceSet, byUid: boolean): number[] {
    const n = this.uids.length;
    const out: number[] = [];
    if (byUid) {
      // `*` is the largest UID in use; with no message, RFC 3501 §6.4.8 still matches nothing.
      const ranges: RangeList = set.resolve(n ? (this.uids[n - 1] as number) : 0);
      for (const i of ranges.indexesIn(this.uids)) out.push(i);
    } else {
      if (n === 0) return out;
      for (const seq of set.resolve(n).numbersUpTo(n)) out.push(seq - 1);
    }
    return out;
  }

  /** A sequence set naming a message that does not exist (RFC 3501 §9: BAD for sequence numbers). */
  outOfRange(set: SequenceSet): boolean {
    if (this.uids.length === 0 && set.usesStar) return false; // `1:*` of an empty mailbox: nothing, as mox and Dovecot
    const r = set.resolve(this.uids.length);
    return r.length > 0 && (r.ends[r.length - 1] as number) > this.uids.length;
  }

  /**
   * The BYE text when this folder is no longer there under its name and UIDVALIDITY, else undefined.
   * A RENAME ends the session too, as Dovecot does at its next sync (RFC 3501 allows either): the
   * view, its sequence numbers and the name its changes are stored under never silently point at
   * another folder. UIDVALIDITY follows a renamed folder (src/cache/mailboxes.ts): rename or delete.
   */
  gone(store: MailboxStore): string | undefined {
    const now = store.folder(this.name);
    if (now?.selectable && now.uidValidity === this.uidValidity) return undefined;
    const renamed = store.folders().some((f) => f.selectable && f.uidValidity === this.uidValidity);
    return `Selected mailbox was ${renamed ? 'renamed' : 'deleted'}, have to disconnect.`;
  }

  /** Queues a change of this folder announced by the store. */
  note(ev: MailboxEvent): void {
    if (ev.kind === 'folders' || ev.folder !== this.name) return;
    if (ev.kind === 'added') {
      const last = this.addedPending.at(-1)?.uid ?? this.uids.at(-1) ?? 0;
      const fresh: number[] = [];
      for (const m of ev.messages) {
        if (m.uid <= last) continue;
        this.addedPending.push(m);
        fresh.push(m.uid);
      }
      this.addedPending.sort((a, b) => a.uid - b.uid);
      // Claimed now, on arrival: the first session told of a message is the one it is recent to.
      fresh.sort((a, b) => a - b);
      if (fresh.length) this.takeRecent(fresh, (fresh.at(-1) as number) + 1);
    } else if (ev.kind === 'flags') {
      for (const m of ev.messages) this.flagsPending.set(m.uid, m);
    } else {
      for (const uid of ev.uids) this.expungedPending.add(uid);
    }
  }

  /** This session removed these (its own EXPUNGE, MOVE, CLOSE): reported like any expunge. */
  noteExpunged(uids: Iterable<number>): void {
    for (const uid of uids) this.expungedPending.add(uid);
  }

  /** This session changed flags (STORE): the view takes the new state, no update is due. */
  applyOwn(m: MailboxMessage): void {
    const i = this.indexOf(m.uid);
    if (i >= 0) this.msgs[i] = m;
    const queued = this.flagsPending.get(m.uid);
    if (queued && queued.modseq <= m.modseq) this.flagsPending.delete(m.uid);
  }

  get hasPending(): boolean {
    return this.addedPending.length > 0 || this.flagsPending.size > 0 || this.expungedPending.size > 0;
  }

  /** True when some message of the view was expunged but not yet reported. */
  get expungePending(): boolean {
    return this.expungedPending.size > 0;
  }

  /**
   * The untagged responses due now, the view updated to match: EXPUNGEs (when allowed; one
   * `VANISHED` of their UIDs under QRESYNC, RFC 7162 §3.2.10), then EXISTS, then FETCH FLAGS of
   * changes by others (with UID and, under CONDSTORE, MODSEQ).
   */
  drain(expunges: boolean, condstore: boolean, qresync = false): string {
    let out = '';
    if (expunges && this.expungedPending.size) {
      const gone = this.expungedPending;
      this.expungedPending = new Set();
      // Highest first: each EXPUNGE then leaves the numbers of the ones still to send unchanged.
      const removed: number[] = [];
      for (let i = this.uids.length - 1; i >= 0; i--) {
        const uid = this.uids[i] as number;
        if (!gone.has(uid)) continue;
        if (!qresync) out += `* ${i + 1} EXPUNGE\r\n`;
        removed.push(uid);
      }
      if (qresync && removed.length) out += `* VANISHED ${formatNumbers(removed.reverse())}\r\n`;
      if (removed.length) {
        const keep = (_: unknown, i: number): boolean => !gone.has(this.uids[i] as number);
        this.msgs = this.msgs.filter(keep);
        this.uids = this.uids.filter(keep);
      }
      for (const uid of gone) {
        this.flagsPending.delete(uid);
        this.recent.delete(uid);
      }
      this.addedPending = this.addedPending.filter((m) => !gone.has(m.uid));
    }
    if (this.addedPending.length) {
      for (const m of this.addedPending) {
        this.msgs.push(m);
        this.uids.push(m.uid);
      }
      this.addedPending = [];
      out += `* ${this.uids.length} EXISTS\r\n* ${this.recent.size} RECENT\r\n`;
    }
    if (this.flagsPending.size) {
      const changes = [...this.flagsPending.values()].sort((a, b) => a.uid - b.uid);
      this.flagsPending.clear();
      for (const m of changes) {
        const i = this.indexOf(m.uid);
        const known = this.msgs[i];
        if (!known || known.modseq >= m.modseq) continue;
        this.msgs[i] = m;
        out += flagsFetchLine(i + 1, m, true, condstore, this.recent.has(m.uid));
      }
    }
    return out;
  }
}
