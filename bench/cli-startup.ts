/**
 * `npm run bench` (CLI start-up): how long `localpost --help` and `localpost status` (no daemon, a
 * config with one account) take next to `node -e 0`, and the peak RSS of each. Runs the compiled
 * CLI (bin/localpost, what users run; builds dist/ first), the three commands interleaved so load on
 * the machine hits them alike; the median of --runs (default 20) each, reported as ratios to `node -e 0`.
 *
 * Prints the figures and writes bench/results/cli-startup-latest.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string' } } });
const RUNS = Number(values.runs ?? 20);
/** Prints the process's peak RSS (KB) on stderr at exit. */
const MAX_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss='+process.resourceUsage().maxRSS+'\\n'))`;

const build = spawnSync(process.execPath, [join(REPO, 'scripts/build.mjs')], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('build failed');

const dir = mkdtempSync(join(tmpdir(), 'lp-bench-cli-'));
const configFile = join(dir, 'config.yaml');
writeFileSync(
  configFile,
  `dataDir: ${join(dir, 'data')}\naccounts:\n  - id: a\n    email: a@example.test\n    login: { password: x }\n` +
    '    incoming: { protocol: pop3, host: 127.0.0.1, port: 9, tls: none, username: a, password: pw }\n',
  { mode: 0o600 },
);
const bin = join(REPO, 'bin/localpost');
const commands: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'localpost --help': [bin, '--help'],
  'localpost status': [bin, '--config', configFile, 'status'],
};

function run(args: string[], nodeArgs: string[] = []): { ms: number; stderr: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { ms, stderr: r.stderr };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
for (const args of Object.values(commands)) run(args); // warm the file cache
for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(commands)) times[name]?.push(run(args).ms);

const base = median(times['node -e 0'] ?? []);
const rows = Object.entries(commands).map(([name, args]) => {
  const rssKb = Number(/maxrss=(\d+)/.exec(run(args, ['--import', MAX_RSS]).stderr)?.[1]);
  const ms = median(times[name] ?? []);
  return {
    command: name,
    medianMs: Math.round(ms),
    ratio: Number((ms / base).toFixed(2)),
    peakRssMb: Number((rssKb / 1024).toFixed(1)),
  };
});
rmSync(dir, { recursive: true, force: true });
for (const r of rows)
  process.stdout.write(
    `${r.command.padEnd(18)} ${String(r.medianMs).padStart(5)} ms  ${r.ratio.toFixed(2)} × node -e 0  ${r.peakRssMb} MB\n`,
  );
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(
  join(REPO, 'bench/results/cli-startup-latest.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, runs: RUNS, rows }, null, 2)}\n`,
);
