/**
 * `npm run bench`: every figure of docs/benchmarks.md in one run, localpost beside its peers
 * (fetchmail, mbsync, Dovecot, a bare poplib client, `node -e 0`) on the same data in the same
 * run, as ratios. Builds dist/ first (bin/localpost runs it), runs the sections in turn, prints
 * the table (goal, figure, met/missed), writes bench/results/latest.json and regenerates
 * docs/benchmarks.md from it (bench/report.ts).
 *
 * Options: --only a,b (sections: cli, pull, pull-rss, maildrop, rabid, smtp, idle, imap; the figures of
 * the other sections are kept from the previous latest.json), --quick (smaller sizes, shorter
 * waits, one round: for development; the doc says so), --no-build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cliSection } from './cli-startup.js';
import { type Figure, textTable } from './figures.js';
import { idleSection } from './idle.js';
import { imapServeSection } from './imap-serve.js';
import { maildropSection } from './maildrop.js';
import { pullSection } from './pull.js';
import { pullRssSection } from './pull-rss.js';
import { rabidSection } from './rabid.js';
import { LATEST, type Results, writeReport } from './report.js';
import { smtpSection } from './smtp.js';
import { REPO, type SectionOptions, versionOf } from './support.js';

const SECTIONS: Record<string, (o: SectionOptions) => Promise<Figure[]>> = {
  cli: cliSection,
  pull: pullSection,
  'pull-rss': pullRssSection,
  maildrop: maildropSection,
  rabid: rabidSection,
  smtp: smtpSection,
  idle: idleSection,
  imap: imapServeSection,
};

async function tools(): Promise<Record<string, string>> {
  const dpkg = (pkg: string): Promise<string> => versionOf('dpkg-query', ['-W', '-f', `${pkg} \${Version}`, pkg]);
  return {
    node: process.version,
    fetchmail: await dpkg('fetchmail'),
    mbsync: await dpkg('isync'),
    dovecot: await dpkg('dovecot-core'),
    postfix: await dpkg('postfix'),
    'rabid (postal)': await dpkg('postal'),
    python: await versionOf('python3', ['--version']),
    strace: await dpkg('strace'),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, quick: { type: 'boolean' }, 'no-build': { type: 'boolean' } },
  });
  const only = values.only?.split(',').map((s) => s.trim()) ?? Object.keys(SECTIONS);
  for (const s of only)
    if (!SECTIONS[s]) throw new Error(`unknown section ${s}; known: ${Object.keys(SECTIONS).join(', ')}`);
  const quick = values.quick === true;
  if (!spawnSync('which', ['rabid']).stdout?.length && only.includes('rabid'))
    console.log('note: rabid is missing; install it with `apt-get install postal` (row 7 will fail)');
  if (!values['no-build']) {
    process.stdout.write('building dist/ ... ');
    const b = spawnSync(process.execPath, [join(REPO, 'scripts/build.mjs')], { stdio: 'inherit' });
    if (b.status !== 0) throw new Error('build failed');
    console.log('done');
  }
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const load = loadavg()[0] ?? 0;
  const prev: Results | undefined =
    values.only && existsSync(LATEST) ? (JSON.parse(readFileSync(LATEST, 'utf8')) as Results) : undefined;
  const work = mkdtempSync('/tmp/lp-bench-');
  const o: SectionOptions = { quick, work, log: (l) => console.log(l) };
  const figures: Figure[] = [];
  const sections: Results['sections'] = { ...(prev?.sections ?? {}) };
  try {
    for (const name of Object.keys(SECTIONS)) {
      if (!only.includes(name)) {
        figures.push(...(prev?.figures.filter((f) => f.section === name) ?? []));
        continue;
      }
      console.log(`\n== ${name}`);
      const s0 = performance.now();
      let got: Figure[];
      try {
        got = await (SECTIONS[name] as (o: SectionOptions) => Promise<Figure[]>)(o);
      } catch (err) {
        console.log(`section ${name} failed: ${(err as Error).stack}`);
        got = [{ id: `${name}-failed`, row: 0, name: `section ${name}`, unit: '', value: null, error: String(err) }];
      }
      const seconds = (performance.now() - s0) / 1000;
      sections[name] = { date: new Date().toISOString(), seconds, quick, loadAverage: loadavg()[0] ?? 0 };
      figures.push(...got.map((f) => ({ ...f, section: name })));
      console.log(`== ${name}: ${seconds.toFixed(0)} s`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  const results: Results = {
    date: startedAt,
    seconds,
    quick,
    only: values.only ?? null,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      memoryMB: Math.round(totalmem() / 2 ** 20),
      loadAverageAtStart: load,
    },
    tools: await tools(),
    sections,
    figures: figures.sort((a, b) => a.row - b.row),
  };
  console.log(`\n${textTable(results.figures)}\n`);
  console.log(`run took ${(seconds / 60).toFixed(1)} min (load average at start ${load.toFixed(1)})`);
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(LATEST, `${JSON.stringify(results, null, 2)}\n`);
  writeReport(results);
  console.log('written: bench/results/latest.json, docs/benchmarks.md');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
