/**
 * Child process of the journal kill test (tests/reliability/torture-journal.ts): drains the
 * journal of a `FakeJournalStore` file upstream with the real replay, printing one line per
 * step, synchronously, so a SIGKILL loses none:
 *   mark <id>      markInflight is durable
 *   applied <id>   the upstream change is done, complete() not called yet
 *   complete <id>  complete() is durable
 *   done           the drain finished
 * With `<step> <n>` arguments the process SIGKILLs itself right after the n-th such step.
 *
 * Usage: node --import tsx tests/support/journal-replay-child.ts <state.json> <port> <user> [<step> <n>]
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import { replayAccount } from '../../src/upstream/imap/journal-replay.js';
import { FakeJournalStore } from './journal-fake.js';

const [file = '', port = '', user = '', killStep, killAt] = process.argv.slice(2);
const counts = new Map<string, number>();

function step(op: string, id: number | string): void {
  writeSync(1, `${op} ${id}\n`);
  const n = (counts.get(op) ?? 0) + 1;
  counts.set(op, n);
  if (op === killStep && n === Number(killAt)) process.kill(process.pid, 'SIGKILL');
}

const fake = new FakeJournalStore(file);
fake.onDurable = (what, id) => {
  if (what === 'mark' || what === 'complete') step(what, id);
};
const changes = fake.changes();
const complete = changes.journal.complete.bind(changes.journal);
changes.journal.complete = (id, keys) => {
  step('applied', id);
  complete(id, keys);
};
const r = await replayAccount(
  { host: '127.0.0.1', port: Number(port), tls: 'none', username: user, password: `${user}pw` },
  { ...changes, cursors: { getCursor: () => undefined }, log: pino({ level: process.env.LP_CHILD_LOG ?? 'silent' }) },
);
writeSync(1, `done ${r.applied} ${r.failed} ${r.left}\n`);
