/**
 * `npm run torture -- [--rounds N] [--only pull,update,accept,deliver,journal]`: kill -9 of the real
 * localpost at random moments of a pull (delete mode), a POP3 QUIT/UPDATE, SMTP acceptance,
 * SMTP delivery and the IMAP change journal's replay upstream, N rounds each (default 100), with the on-disk invariants (docs/architecture.md) checked after
 * every round (tests/reliability/torture.ts). Prints the figures; exits 1 on any violation.
 */
import { parseArgs } from 'node:util';
import {
  formatFigures,
  type TortureFigures,
  tortureAccept,
  tortureDeliver,
  torturePull,
  tortureTestbed,
  tortureUpdate,
} from '../tests/reliability/torture.js';
import { tortureJournal } from '../tests/reliability/torture-journal.js';
import type { Testbed } from '../tests/support/testbed.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '100' }, only: { type: 'string' }, verbose: { type: 'boolean' } },
});
const rounds = Number(values.rounds);
const only = new Set((values.only ?? 'pull,update,accept,deliver,journal').split(','));
const log = values.verbose ? (l: string) => process.stdout.write(`  ${l}\n`) : undefined;

async function main(): Promise<number> {
  const results: TortureFigures[] = [];
  let tb: Testbed | undefined;
  const t0 = Date.now();
  try {
    if (only.has('pull') || only.has('update') || only.has('journal')) tb = await tortureTestbed();
    const run = async (name: string, fn: () => Promise<TortureFigures>) => {
      if (!only.has(name)) return;
      process.stdout.write(`torture: ${name}, ${rounds} rounds...\n`);
      const f = await fn();
      results.push(f);
      process.stdout.write(`  ${formatFigures(f)}\n`);
      for (const v of f.violations.slice(0, 20)) process.stdout.write(`  VIOLATION ${v}\n`);
    };
    await run('pull', () => torturePull(tb!, { rounds, log }));
    await run('update', () => tortureUpdate(tb!, { rounds, log }));
    await run('accept', () => tortureAccept({ rounds, log }));
    await run('deliver', () => tortureDeliver({ rounds, log }));
    await run('journal', () => tortureJournal(tb!, { rounds, log }, 'store'));
    await run('journal', () => tortureJournal(tb!, { rounds, log }, 'fake'));
  } finally {
    await tb?.stop();
  }
  const kills = results.reduce((a, f) => a + f.kills, 0);
  const violations = results.reduce((a, f) => a + f.violations.length, 0);
  process.stdout.write(
    `torture: ${results.reduce((a, f) => a + f.rounds, 0)} rounds, ${kills} kills, ` +
      `${results.reduce((a, f) => a + f.messages, 0)} messages, ${(results.reduce((a, f) => a + f.bytes, 0) / 1e6).toFixed(1)} MB, ` +
      `${violations ? `${violations} violations` : 'no violation'} in ${((Date.now() - t0) / 60_000).toFixed(1)} min\n`,
  );
  return violations ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`torture: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
