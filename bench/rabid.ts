/**
 * Row 7 of the benchmark (docs/benchmarks.md): POP3 server throughput under rabid, the POP load
 * generator of the Debian package `postal` (`apt-get install postal`), against localpost's POP3
 * (`localpost start`) and Dovecot's, holding the same messages.
 *
 * Four mailboxes of 2,000 messages (users r1–r4; --quick 500), four rabid processes (`-p 1`, one
 * user list each, so every user is read by exactly one login at a time), each downloading every
 * message of its mailbox in one session (`-c 2000`) and deleting it (rabid's default; with
 * `-d 100:0` it leaves its sessions open). rabid only prints per-minute totals, so the figure is
 * timed here: from starting the four rabid processes to the moment all four maildrops are empty
 * (the deletions land at QUIT), polled every 50 ms. localpost serves a copy of a data dir that
 * `localpost sync` pulled from that Dovecot once; Dovecot is re-seeded (same generator, same
 * sizes) and its index warmed before each of its rounds. Rounds alternate; best of each.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestbed, type Testbed } from '../tests/support/testbed.js';
import { best, type Figure, ratioFigure } from './figures.js';
import {
  type BenchAccount,
  BIN,
  freePort,
  poplib,
  type SectionOptions,
  startDaemon,
  writeDaemonConfig,
} from './support.js';

const USERS = ['r1', 'r2', 'r3', 'r4'];

function count(dirs: string[]): number {
  let n = 0;
  for (const d of dirs)
    for (const sub of ['new', 'cur']) {
      try {
        n += readdirSync(join(d, sub)).length;
      } catch {
        /* not there yet */
      }
    }
  return n;
}

/** Four rabid processes against 127.0.0.1:`port`; seconds until `maildirs` hold no message. */
async function rabidRun(port: number, lists: string[], maildirs: string[], strip: boolean): Promise<number> {
  const procs: ChildProcess[] = [];
  const t0 = performance.now();
  try {
    for (const list of lists) {
      const args = ['-p', '1', '-c', '2000', ...(strip ? ['-u'] : []), `[127.0.0.1]${port}`, list];
      procs.push(spawn('rabid', args, { stdio: 'ignore' }));
    }
    const deadline = t0 + 600_000;
    while (count(maildirs) > 0) {
      if (performance.now() > deadline) throw new Error(`rabid: ${count(maildirs)} messages left after 600 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return (performance.now() - t0) / 1000;
  } finally {
    for (const p of procs) p.kill();
  }
}

function sync(configFile: string): Promise<void> {
  return new Promise((res, rej) =>
    execFile(process.execPath, [BIN, '--config', configFile, 'sync'], (err, _out, stderr) =>
      err ? rej(new Error(`localpost sync: ${stderr || err.message}`)) : res(),
    ),
  );
}

async function seed(tb: Testbed, n: number): Promise<void> {
  for (const u of USERS) await tb.seed(u, n, undefined, { reset: true, archiveN: 0 });
  for (const u of USERS) await poplib(tb.pop3Port, `${u}@example.test`, `${u}pw`, false); // warm the index
}

export async function rabidSection(o: SectionOptions): Promise<Figure[]> {
  const n = o.quick ? 500 : 2000;
  const rounds = o.quick ? 1 : 2;
  const base = {
    id: 'rabid',
    row: 7,
    name: `rabid, 4 logins of ${n.toLocaleString('en-US')} messages each: messages/s vs Dovecot`,
    goal: { op: '>=', value: 0.9 } as const,
  };
  const tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: USERS.map((u) => `${u}:${u}pw`).join(' ') } });
  try {
    await seed(tb, n);
    const dir = join(o.work, 'rabid');
    const template = join(dir, 'template');
    const accounts = (port: number): BenchAccount[] =>
      USERS.map((u) => ({ id: u, protocol: 'pop3', port, username: `${u}@example.test`, password: `${u}pw` }));
    mkdirSync(template, { recursive: true });
    await sync(writeDaemonConfig(dir, template, 0, accounts(tb.pop3Port)));
    const lists = { dovecot: [] as string[], localpost: [] as string[] };
    for (const u of USERS) {
      const d = join(dir, `dovecot-${u}`);
      const l = join(dir, `localpost-${u}`);
      writeFileSync(d, `${u}@example.test ${u}pw\n`);
      writeFileSync(l, `${u}@localhost localpw\n`);
      lists.dovecot.push(d);
      lists.localpost.push(l);
    }
    const times = { dovecot: [] as number[], localpost: [] as number[] };
    for (let r = 1; r <= rounds; r++) {
      if (r > 1) await seed(tb, n);
      times.dovecot.push(
        await rabidRun(
          tb.pop3Port,
          lists.dovecot,
          USERS.map((u) => tb.maildir(u)),
          false,
        ),
      );
      const data = join(dir, `data-${r}`);
      cpSync(template, data, { recursive: true });
      const port = await freePort();
      const cfg = writeDaemonConfig(dir, data, port, accounts(await freePort()));
      const d = await startDaemon(cfg, port, join(dir, 'daemon.log'));
      try {
        const maildirs = USERS.map((u) => join(data, 'accounts', u, 'Maildir'));
        if (count(maildirs) !== 4 * n) throw new Error(`the localpost copy holds ${count(maildirs)} messages`);
        times.localpost.push(await rabidRun(port, lists.localpost, maildirs, true));
      } finally {
        await d.stop();
        rmSync(data, { recursive: true, force: true });
      }
      o.log(
        `rabid round ${r}: Dovecot ${times.dovecot.at(-1)?.toFixed(2)} s, localpost ${times.localpost.at(-1)?.toFixed(2)} s`,
      );
    }
    const rate = (xs: number[]): number | null => {
      const b = best(xs);
      return b === null ? null : (4 * n) / b;
    };
    return [
      ratioFigure(
        { ...base, detail: `best of ${rounds}` },
        rate(times.localpost),
        rate(times.dovecot),
        'Dovecot',
        'messages/s',
      ),
    ];
  } catch (err) {
    return [{ ...base, unit: '×', value: null, error: (err as Error).message }];
  } finally {
    await tb.stop();
  }
}
