/**
 * Child process of the journal kill test (tests/reliability/torture-journal.ts): drains an
 * account's change journal upstream with the real replay, printing one line per step,
 * synchronously, so a SIGKILL loses none:
 *   mark <id>      markInflight is durable
 *   applied <id>   the upstream change is done, complete() not called yet
 *   complete <id>  complete() is durable
 *   done           the drain finished
 * With `<step> <n>` arguments the process SIGKILLs itself right after the n-th such step.
 * `<state>` is a FakeJournalStore file (`*.json`) or the data directory of a cache whose IMAP
 * account `acct` has journaled changes (the real MailboxStore and ChangeJournal).
 *
 * Usage: node --import tsx tests/support/journal-replay-child.ts <state> <port> <user> [<step> <n>]
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { ChangeJournal } from '../../src/cache/mailboxes.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { type ImapChanges, replayAccount } from '../../src/upstream/imap/journal-replay.js';
import { FakeJournalStore } from './journal-fake.js';

const [state = '', port = '', user = '', killStep, killAt] = process.argv.slice(2);
const counts = new Map<string, number>();
const log = pino({ level: process.env.LP_CHILD_LOG ?? 'silent' });

function step(op: string, id: number | string): void {
  writeSync(1, `${op} ${id}\n`);
  const n = (counts.get(op) ?? 0) + 1;
  counts.set(op, n);
  if (op === killStep && n === Number(killAt)) process.kill(process.pid, 'SIGKILL');
}

/** Report the journal's durable steps (and the moment between the upstream change and complete). */
function watch(journal: ChangeJournal): void {
  const mark = journal.markInflight.bind(journal);
  const complete = journal.complete.bind(journal);
  journal.markInflight = (id, note) => {
    mark(id, note);
    step('mark', id);
  };
  journal.complete = (id, keys) => {
    step('applied', id);
    complete(id, keys);
    step('complete', id);
  };
}

let changes: ImapChanges;
let cache: Cache | undefined;
if (state.endsWith('.json')) changes = new FakeJournalStore(state).changes();
else {
  cache = await Cache.open({ dataDir: state, accounts: ['acct'], log });
  const acc = { id: 'acct', incoming: { protocol: 'imap', onLocalDelete: 'keep-upstream' } };
  const c = imapChangesOf(cache, acc as unknown as AccountConfig);
  if (!c) throw new Error('no IMAP changes');
  changes = c;
}
watch(changes.journal);
const r = await replayAccount(
  { host: '127.0.0.1', port: Number(port), tls: 'none', username: user, password: `${user}pw` },
  { ...changes, cursors: cache ?? { getCursor: () => undefined }, log },
);
cache?.close();
writeSync(1, `done ${r.applied} ${r.failed} ${r.left}\n`);
