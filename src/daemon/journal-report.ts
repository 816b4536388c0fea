/**
 * The change journal of a state.db opened outside the cache (`localpost journal` and `status`
 * without a daemon): the cache's own `ChangeJournalImpl` over that connection, for the read
 * side (`list`, `counts`: read-only connections do) and the user's actions (`retry`, `drop`:
 * under the instance lock). A state.db from before migration 9 has no journal: undefined.
 */
import type Database from 'better-sqlite3';
import { ChangeJournalImpl } from '../cache/change-journal.js';
import type { ChangeJournal } from '../cache/mailboxes.js';
import { systemClock } from '../shared/clock.js';

/** What the CLI, status and the control API use of the journal. */
export type JournalView = Pick<ChangeJournal, 'list' | 'counts' | 'retry' | 'drop'>;

/** The journal of `db`, or undefined when its schema has none yet. */
export function journalOf(db: Database.Database): JournalView | undefined {
  const present = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'").get();
  // retry and drop touch no message: no account store is needed
  return present ? new ChangeJournalImpl(db, () => undefined, systemClock) : undefined;
}
