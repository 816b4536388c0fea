/**
 * Rows 4 and 6 of the benchmark (docs/benchmarks.md): a daemon holding a huge maildrop.
 *
 * For 1,000,000 and 100,000 cached messages (--quick: 100,000 and 10,000), the cache is built fast
 * (big-cache.ts) on tmpfs (/dev/shm: creating a million files on this machine's shared disk takes
 * most of an hour; the daemon reads the same directory entries either way, from memory once warm),
 * then `localpost start` is timed from spawn to its POP3 greeting, recovery included (row 6): once
 * on the fresh cache (no clean-stop record, so the full recovery a crash also brings) and once after
 * a clean stop; one poplib session times connect + USER/PASS + STAT + UIDL (row 4), best of 3.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildCache } from './big-cache.js';
import { best, type Figure, failedFigures } from './figures.js';
import { freePort, poplib, type SectionOptions, startDaemon, writeDaemonConfig } from './support.js';

const GOALS_MS: Record<number, number> = { 1000000: 2000, 100000: 200 };

/** Scratch space for huge caches: tmpfs when there is one. */
export function bigScratch(o: SectionOptions, prefix: string): string {
  const root = existsSync('/dev/shm') ? '/dev/shm' : o.work;
  return mkdtempSync(join(root, prefix));
}

export async function maildropSection(o: SectionOptions): Promise<Figure[]> {
  const sizes = o.quick ? [100_000, 10_000] : [1_000_000, 100_000];
  const figures: Figure[] = [];
  for (const n of sizes) {
    const label = n.toLocaleString('en-US');
    const statBase = {
      id: `stat-uidl-${n}`,
      row: 4,
      name: `login + STAT + UIDL, ${label} cached messages`,
      unit: 'ms',
      goal: { op: '<', value: GOALS_MS[n] ?? 200 } as const,
    };
    const startGoal = n === sizes[0] ? { goal: { op: '<', value: 5 } as const } : {};
    // the first start finds no clean-stop record (as after a crash): full recovery, every name read
    const crashBase = {
      id: `startup-crash-${n}`,
      row: 6,
      name: `daemon start-up to POP3 greeting, ${label} cached messages, first start or after a crash (full recovery)`,
      unit: 's',
      ...startGoal,
    };
    const startBase = {
      id: `startup-${n}`,
      row: 6,
      name: `daemon start-up to POP3 greeting, ${label} cached messages, after a clean stop (recovery checks)`,
      unit: 's',
      ...startGoal,
    };
    const dir = bigScratch(o, 'lp-bench-drop-');
    try {
      const dataDir = join(dir, 'data');
      mkdirSync(dataDir);
      const t0 = performance.now();
      await buildCache(dataDir, ['big'], n);
      o.log(`maildrop ${label}: cache built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const port = await freePort();
      // the upstream is a closed port: no pull may run during the measurements
      const cfg = writeDaemonConfig(dir, dataDir, port, [
        { id: 'big', protocol: 'pop3', port: await freePort(), username: 'x', password: 'x' },
      ]);
      const starts: number[] = [];
      const stats: number[] = [];
      const startRuns = 2;
      for (let r = 1; r <= startRuns; r++) {
        const d = await startDaemon(cfg, port, join(dir, 'daemon.log'), { timeoutMs: 600_000 });
        starts.push(d.startMs / 1000);
        try {
          if (r === startRuns)
            for (let i = 0; i < 3; i++) {
              const s = await poplib(port, 'big', 'localpw', false);
              if (s.n !== n) throw new Error(`STAT said ${s.n}, expected ${n}`);
              stats.push(s.loginMs);
            }
        } finally {
          await d.stop();
        }
      }
      o.log(
        `  start-up ${starts.map((s) => s.toFixed(2)).join(', ')} s; login+STAT+UIDL ${stats.map((s) => s.toFixed(0)).join(', ')} ms`,
      );
      figures.push(
        { ...statBase, value: best(stats), detail: `best of 3: ${stats.map((s) => s.toFixed(0)).join(', ')} ms` },
        { ...crashBase, value: starts[0] ?? null, detail: 'one start on the freshly built cache' },
        { ...startBase, value: starts[1] ?? null, detail: 'the next start, after a clean stop (SIGTERM)' },
      );
    } catch (err) {
      figures.push(...failedFigures([statBase, crashBase, startBase], err));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return figures;
}
