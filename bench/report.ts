/**
 * docs/benchmarks.md, generated from bench/results/latest.json, so the doc always shows the last
 * `npm run bench` (bench/run.ts calls `writeReport`; `node --import tsx bench/report.ts` redoes it
 * from the file). The prose about method lives here, next to the table it explains.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, type Figure, firstLine, formatGoal, formatValue, verdict } from './figures.js';
import { REPO } from './support.js';

export const LATEST = join(REPO, 'bench/results/latest.json');
const DOC = join(REPO, 'docs/benchmarks.md');

/** What bench/run.ts writes to latest.json. */
export interface Results {
  date: string;
  seconds: number;
  quick: boolean;
  only: string | null;
  machine: { cpus: number; cpuModel: string | null; memoryMB: number; loadAverageAtStart: number };
  tools: Record<string, string>;
  sections: Record<string, { date: string; seconds: number; quick: boolean; loadAverage: number }>;
  figures: Figure[];
}

/** How each row is measured (bench/<file>.ts has the details). */
const METHOD: Record<number, string> = {
  1: 'IMAP pull (`bench/pull.ts`): a fresh Dovecot with N messages (~7 KB each) in INBOX and 5 in Archive, its index warmed; `localpost sync` (fresh data dir, INBOX + Archive) against mbsync (Sync Pull, default fsync), time ratio, best of 2 interleaved rounds for 3,000, one round for 10,000.',
  2: 'POP3 pull (`bench/pull.ts`, same data): `localpost sync` over POP3 against fetchmail (keep mode, a minimal `sh` + `cat` MDA into a Maildir-like directory) and against the floor: one Python poplib session RETRing every message and writing nothing.',
  3: 'POP3 serve (`bench/pull.ts`): the data dir localpost pulled is served by `localpost start`; one poplib session RETRs all N from it and from Dovecot (same messages), alternating, best of 3.',
  4: 'Huge maildrop (`bench/maildrop.ts`): the cache is written straight to disk (file names from `formatName`, ledger rows in one transaction, so recovery has nothing to rebuild) on tmpfs, then `localpost start`; one poplib session times connect + USER/PASS + STAT + UIDL, best of 3.',
  5: 'Memory of a first POP3 pull (`bench/pull-rss.ts`): `localpost sync` of 100,000 messages (~4 KB) from Dovecot, RSS from /proc every 0.5 s beside the number of messages stored.',
  6: 'Start-up (`bench/maildrop.ts`): from spawning `localpost start` to the POP3 greeting on its port, recovery included: the first start on the freshly written cache finds no clean-stop record and reads every name (as after a crash); the second follows a clean stop (SIGTERM), when recovery compares the stamps the stop recorded (`src/cache/clean-shutdown.ts`).',
  7: 'rabid (`bench/rabid.ts`, Debian package `postal`): four rabid processes, one per mailbox of 2,000 messages, each downloading (and deleting) its whole mailbox in one login, against `localpost start` and Dovecot holding the same messages; timed until all four mailboxes are empty, best of 2 alternating rounds.',
  8: 'SMTP (`bench/smtp.ts`): 1,000 messages of 2 KB from 8 parallel clients into the SMTP listener, each fsynced before its 250; then the outbox drained to the testbed Postfix over `outgoing.maxConnections` (4, the default) connections.',
  9: 'CLI cold start (`bench/cli-startup.ts`): `bin/localpost` commands (no daemon running) interleaved with `node -e 0`, median of 10 each.',
  10: 'Idle daemon (`bench/idle.ts`): 3 accounts, 10,000 cached messages, pulls scheduled once a year; wake-ups are returns from `epoll_wait` under `strace -f` over one minute, the connects in that minute are the connectivity probes.',
  11: 'Local IMAP server, huge folder (`bench/imap-serve.ts`): a 100,000-message INBOX written straight into a cache on tmpfs, served by `localpost start`; one Python imaplib session times SELECT INBOX and `UID FETCH 1:* (FLAGS)`, best of 3.',
  12: 'Local IMAP server vs Dovecot (`bench/imap-serve.ts`): localpost pulls 3,000 messages (+5 in Archive) from a fresh Dovecot over IMAP and serves its cache with `localpost start`; mbsync (Sync Pull, default fsync, fresh Maildir) mirrors both folders from it and from Dovecot, alternating, best of 2.',
};

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The markdown table of the figures. */
export function markdownTable(figures: readonly Figure[]): string {
  const lines = ['| # | figure | goal | measured | verdict | from |', '|---|---|---|---|---|---|'];
  for (const f of [...figures].sort((a, b) => a.row - b.row)) {
    const v = verdict(f);
    const from = f.error ? `error: ${firstLine(f.error)}` : describe(f);
    const value = formatValue(f.value, f.unit);
    lines.push(
      `| ${f.row} | ${cell(f.name)} | ${cell(formatGoal(f))} | ${v === 'met' || v === 'missed' ? `**${value}**` : value} | ${v} | ${cell(from)} |`,
    );
  }
  return lines.join('\n');
}

/** The whole of docs/benchmarks.md. */
export function markdownReport(r: Results): string {
  const met = r.figures.filter((f) => verdict(f) === 'met').length;
  const goals = r.figures.filter((f) => f.goal).length;
  const sections = Object.entries(r.sections)
    .map(([name, s]) => `${name} ${Math.round(s.seconds)} s${s.quick ? ' (--quick)' : ''}`)
    .join(', ');
  const older = Object.entries(r.sections).filter(([, s]) => s.date.slice(0, 10) !== r.date.slice(0, 10));
  const out = [
    '# Benchmarks',
    '',
    '<!-- Generated by bench/report.ts from bench/results/latest.json: run `npm run bench`, do not edit. -->',
    '',
    '`npm run bench` measures every figure below in one run, localpost beside its peers on the same',
    'data in the same run (interleaved where it helps), and reports ratios: the machine these runs use',
    'is shared with other work, so absolute times vary by ±30% between runs while the ratios hold',
    'better. `npm run bench -- --only pull,smtp` runs some sections, `--quick` smaller sizes.',
    '',
    `Latest run: ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${(r.seconds / 60).toFixed(1)} min` +
      `${r.quick ? ', **--quick** (smaller sizes; not the figures the goals are about)' : ''}` +
      `${r.only ? `, sections ${r.only} only (the others from earlier runs)` : ''}; ` +
      `${r.machine.cpus} × ${r.machine.cpuModel ?? '?'}, ${Math.round(r.machine.memoryMB / 1024)} GB, ` +
      `load average ${r.machine.loadAverageAtStart.toFixed(1)} at the start. ${met} of ${goals} goals met.`,
    ...(older.length
      ? ['', `Sections from earlier runs: ${older.map(([n, s]) => `${n} (${s.date.slice(0, 10)})`).join(', ')}.`]
      : []),
    '',
    markdownTable(r.figures),
    '',
    `Time per section: ${sections}.`,
    '',
    '## How each row is measured',
    '',
    ...Object.entries(METHOD).map(([row, text]) => `${row}. ${text}`),
    '',
    'Ratios are localpost over the peer: a time ratio below 1 means localpost is faster, a',
    'messages/s ratio above 1 means localpost is faster. Raw figures: `bench/results/latest.json`.',
    'What each optimisation bought, and where the time of a missed goal goes: [performance.md](performance.md).',
    '',
    '## Versions',
    '',
    ...Object.entries(r.tools).map(([k, v]) => `- ${k}: ${v}`),
    '',
  ];
  return out.join('\n');
}

export function writeReport(r: Results): void {
  writeFileSync(DOC, markdownReport(r));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeReport(JSON.parse(readFileSync(LATEST, 'utf8')) as Results);
  console.log('written: docs/benchmarks.md');
}
