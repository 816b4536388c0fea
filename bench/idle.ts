/**
 * Row 10 of the benchmark (docs/benchmarks.md): an idle daemon. Three accounts (alice, bob, sink
 * of a testbed Dovecot, pulled once a year) with 10,000 cached messages between them (built fast,
 * big-cache.ts); `localpost start`, 5 s to settle (start-up pulls), then one minute (--quick 10 s)
 * under `strace -f -e trace=epoll_wait,epoll_pwait,connect`: every return from the event loop's
 * wait is a wake-up; the TCP connects in that window are the connectivity probes (every 30 s per
 * upstream server by default), shown beside. Then the daemon's RSS.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestbed } from '../tests/support/testbed.js';
import { buildCache } from './big-cache.js';
import { type Figure, failedFigures } from './figures.js';
import { bigScratch } from './maildrop.js';
import { freePort, rssMb, type SectionOptions, startDaemon, writeDaemonConfig } from './support.js';

const ACCOUNTS = [
  { id: 'alice', n: 3334 },
  { id: 'bob', n: 3333 },
  { id: 'sink', n: 3333 },
];

/** Count strace lines: returns from epoll waits (wake-ups) and connect() calls. */
function countTrace(file: string): { wakeups: number; connects: number } {
  let wakeups = 0;
  let connects = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/epoll_p?wait\(/.test(line) && !line.includes('<unfinished')) wakeups++;
    else if (/epoll_p?wait resumed/.test(line)) wakeups++;
    else if (/\bconnect\(/.test(line) && !line.includes('resumed')) connects++;
  }
  return { wakeups, connects };
}

export async function idleSection(o: SectionOptions): Promise<Figure[]> {
  const seconds = o.quick ? 10 : 60;
  const rssBase = {
    id: 'idle-rss',
    row: 10,
    name: 'idle daemon, 3 accounts, 10,000 cached messages: RSS',
    unit: 'MB',
    goal: { op: '<=', value: 60 } as const,
  };
  const wakeBase = {
    id: 'idle-wakeups',
    row: 10,
    name: `idle daemon: event-loop wake-ups in ${seconds} s`,
    unit: 'wake-ups',
  };
  const tb = await startTestbed({ postfix: false });
  const dir = bigScratch(o, 'lp-bench-idle-');
  try {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    for (const a of ACCOUNTS) await buildCache(dataDir, [a.id], a.n);
    const port = await freePort();
    const cfg = writeDaemonConfig(
      dir,
      dataDir,
      port,
      ACCOUNTS.map((a) => ({
        id: a.id,
        protocol: 'pop3' as const,
        port: tb.pop3Port,
        username: `${a.id}@example.test`,
        password: `${a.id}pw`,
      })),
    );
    const d = await startDaemon(cfg, port, join(dir, 'daemon.log'));
    try {
      await new Promise((r) => setTimeout(r, 5000));
      const out = join(dir, 'strace.out');
      const st = spawn(
        'strace',
        ['-f', '-qq', '-e', 'trace=epoll_wait,epoll_pwait,connect', '-o', out, '-p', String(d.pid)],
        {
          stdio: 'ignore',
        },
      );
      await new Promise((r) => setTimeout(r, seconds * 1000));
      st.kill('SIGINT');
      await new Promise((r) => st.once('exit', r));
      const { wakeups, connects } = countTrace(out);
      const rss = rssMb(d.pid)?.rss ?? null;
      o.log(`idle: ${wakeups} wake-ups and ${connects} connects in ${seconds} s; RSS ${rss?.toFixed(1)} MB`);
      return [
        { ...rssBase, value: rss, detail: `after ${seconds + 5} s idle` },
        {
          ...wakeBase,
          value: wakeups,
          detail: `returns from epoll_wait (strace -f); ${connects} connect() calls in that time (connectivity probes)`,
        },
      ];
    } finally {
      await d.stop();
    }
  } catch (err) {
    return failedFigures([rssBase, wakeBase], err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await tb.stop();
  }
}
