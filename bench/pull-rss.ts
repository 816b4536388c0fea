/**
 * Row 5 of the benchmark (docs/benchmarks.md): memory of a first POP3 pull of 100,000 messages
 * (--quick: 10,000). Dovecot (tests/testbed) gets the messages; `localpost sync` (the compiled
 * CLI, one account, fresh data dir) pulls them while this process samples, every 0.5 s, its RSS
 * and peak RSS from /proc and the number of message files stored so far, to show the RSS stays
 * flat after the first thousand messages.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestbed } from '../tests/support/testbed.js';
import { type Figure, failedFigures } from './figures.js';
import { BIN, rssMb, type SectionOptions } from './support.js';

/** Seed body size: small messages, so 100,000 stay around 400 MB (the long-line variant is ~21 KB). */
const SEED_SIZE = 1000;

interface Sample {
  seconds: number;
  messages: number;
  rssMb: number;
}

function countFiles(dir: string): number {
  try {
    return readdirSync(join(dir, 'new')).length + readdirSync(join(dir, 'cur')).length;
  } catch {
    return 0;
  }
}

/** The sample taken when at least `m` messages were stored (the first such). */
function at(samples: Sample[], m: number): Sample | undefined {
  return samples.find((s) => s.messages >= m);
}

export async function pullRssSection(o: SectionOptions): Promise<Figure[]> {
  const n = o.quick ? 10_000 : 100_000;
  const label = n.toLocaleString('en-US');
  const peakBase = { id: `pull-rss-peak-${n}`, row: 5, name: `first POP3 pull of ${label}: peak RSS`, unit: 'MB' };
  const flatBase = {
    id: `pull-rss-growth-${n}`,
    row: 5,
    name: `first POP3 pull of ${label}: RSS growth from 1,000 messages to the end`,
    unit: 'MB',
  };
  const tb = await startTestbed({ postfix: false });
  try {
    await tb.seed('alice', n, SEED_SIZE, { reset: true, archiveN: 0 });
    const dir = join(o.work, 'pull-rss');
    const dataDir = join(dir, 'data');
    const cfg = join(dir, 'config.yaml');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(
      cfg,
      `dataDir: ${dataDir}\nlog: { level: warn }\naccounts:\n  - id: bench\n    email: alice@example.test\n` +
        '    login: { username: bench, password: x }\n' +
        `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${tb.pop3Port}, tls: none, username: alice, password: alicepw, keepOnServer: true }\n`,
    );
    const maildir = join(dataDir, 'accounts/bench/Maildir');
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, '--config', cfg, 'sync'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const samples: Sample[] = [];
    let peak = 0;
    const timer = setInterval(() => {
      const m = rssMb(child.pid ?? 0);
      if (!m || m.rss === 0) return; // gone, or a zombie
      peak = Math.max(peak, m.hwm);
      samples.push({ seconds: (performance.now() - t0) / 1000, messages: countFiles(maildir), rssMb: m.rss });
    }, 500);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    const stored = countFiles(maildir);
    if (code !== 0 || stored !== n) throw new Error(`sync exit ${code}, ${stored} of ${n} stored: ${stderr.trim()}`);
    writeFileSync(join(o.work, 'pull-rss-samples.json'), JSON.stringify(samples));
    const marks = [1000, 10_000, 50_000, n].filter((m, i, a) => m <= n && a.indexOf(m) === i);
    const shown = marks
      .map((m) => {
        const s = at(samples, m);
        return s ? `${s.rssMb.toFixed(0)} MB at ${m.toLocaleString('en-US')}` : '';
      })
      .filter(Boolean);
    const last = samples.at(-1);
    const first = at(samples, 1000);
    o.log(`pull-rss ${label}: ${seconds.toFixed(1)} s, peak ${peak.toFixed(1)} MB; RSS ${shown.join(', ')} messages`);
    return [
      {
        ...peakBase,
        goal: { op: '<=', value: 150 },
        value: peak,
        detail: `${seconds.toFixed(1)} s, ${samples.length} samples every 0.5 s`,
      },
      {
        ...flatBase,
        value: first && last ? last.rssMb - first.rssMb : null,
        detail: `RSS ${shown.join(', ')} messages; the last sample at ${last?.messages.toLocaleString('en-US')}`,
        ...(first && last ? {} : { error: 'too few samples' }),
      },
    ];
  } catch (err) {
    return failedFigures([peakBase, flatBase], err);
  } finally {
    await tb.stop();
  }
}
