/**
 * Row 9 of the benchmark (docs/benchmarks.md): cold start of the compiled CLI (bin/localpost, what
 * users run) next to `node -e 0`: `--help`, `--version`, `status` and `outbox` (both with no
 * daemon running, a config with one account and an existing data dir). The commands run
 * interleaved, so load on the machine hits them alike; the median of 10 runs each (--quick 5),
 * as a ratio to `node -e 0`, plus the peak RSS of one run of each.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Figure, median, ratioFigure } from './figures.js';
import { BIN, type SectionOptions } from './support.js';

/** Prints the process's peak RSS (KB) on stderr at exit. */
const MAX_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss='+process.resourceUsage().maxRSS+'\\n'))`;

function run(args: string[], nodeArgs: string[] = []): { ms: number; stderr: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { ms, stderr: r.stderr };
}

export async function cliSection(o: SectionOptions): Promise<Figure[]> {
  const runs = o.quick ? 5 : 10;
  const dir = join(o.work, 'cli');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    `dataDir: ${join(dir, 'data')}\naccounts:\n  - id: a\n    email: a@example.test\n    login: { password: x }\n` +
      '    incoming: { protocol: pop3, host: 127.0.0.1, port: 9, tls: none, username: a, password: pw }\n',
    { mode: 0o600 },
  );
  const commands: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    '--help': [BIN, '--help'],
    '--version': [BIN, '--version'],
    status: [BIN, '--config', configFile, 'status'],
    outbox: [BIN, '--config', configFile, 'outbox'],
  };
  const names = Object.keys(commands);
  const times: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  try {
    for (const args of Object.values(commands)) run(args); // warm the file cache (and create state.db)
    for (let i = 0; i < runs; i++) for (const [name, args] of Object.entries(commands)) times[name]?.push(run(args).ms);
  } catch (err) {
    return names.slice(1).map((name) => ({
      id: `cli-${name.replace(/^-+/, '')}`,
      row: 9,
      name: `localpost ${name}`,
      unit: '×',
      value: null,
      error: (err as Error).message,
    }));
  }
  const rss = (args: string[]): string => {
    const kb = Number(/maxrss=(\d+)/.exec(run(args, ['--import', MAX_RSS]).stderr)?.[1]);
    return `${(kb / 1024).toFixed(1)} MB peak RSS`;
  };
  const base = median(times['node -e 0'] ?? []);
  const nodeRss = rss(commands['node -e 0'] ?? []);
  o.log(`cli: node -e 0 median ${base?.toFixed(0)} ms, ${nodeRss}`);
  return names.slice(1).map((name) => {
    const ms = median(times[name] ?? []);
    o.log(`cli: localpost ${name} median ${ms?.toFixed(0)} ms`);
    return ratioFigure(
      {
        id: `cli-${name.replace(/^-+/, '')}`,
        row: 9,
        name: `localpost ${name} cold start, vs node -e 0`,
        goal: { op: '<=', value: 3 },
        detail: `median of ${runs}; ${rss(commands[name] ?? [])} (node -e 0: ${nodeRss})`,
      },
      ms,
      base,
      'node -e 0',
      'ms',
    );
  });
}
