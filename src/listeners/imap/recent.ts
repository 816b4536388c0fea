/**
 * `\Recent` (RFC 3501 §2.3.2): a message is recent in exactly one session, the first that selects
 * its folder read-write (SELECT, not EXAMINE) after it arrived, or that has the folder selected
 * read-write when it arrives (the first listener told of it). EXAMINE shows what is still
 * unclaimed as recent without claiming it (§6.3.2).
 *
 * Invariants:
 * - One `RecentFloors` per account store, shared by all sessions of the account; per folder the
 *   first UID no session has claimed. A folder is keyed by its UIDVALIDITY, unique within an
 *   account: a RENAME keeps the floor, a folder deleted and created again starts afresh.
 * - UIDs of an account only grow (src/cache/mailboxes.ts), so a folder no session has claimed in
 *   starts at the account's UIDNEXT of the first login since the process started. In memory only:
 *   after a restart nothing is recent until new mail arrives (docs/imap-server.md "Sessions").
 */
import type { MailboxStore } from '../../cache/mailboxes.js';

export class RecentFloors {
  private readonly floors = new Map<number, number>();

  constructor(private readonly base: number) {}

  /** The first UID of the folder that no session has claimed. */
  floor(uidValidity: number): number {
    return this.floors.get(uidValidity) ?? this.base;
  }

  /** Claims every UID below `uidNext`; returns the floor before: UIDs from it up are recent to the claimer. */
  claim(uidValidity: number, uidNext: number): number {
    const before = this.floor(uidValidity);
    if (uidNext > before) this.floors.set(uidValidity, uidNext);
    return before;
  }
}

const byStore = new WeakMap<MailboxStore, RecentFloors>();

/** The floors of an account, created at its first login (nothing cached before is recent). */
export function recentFloors(store: MailboxStore): RecentFloors {
  let floors = byStore.get(store);
  if (!floors) {
    const base = store.folders().reduce((max, f) => Math.max(max, f.uidNext), 1);
    floors = new RecentFloors(base);
    byStore.set(store, floors);
  }
  return floors;
}
