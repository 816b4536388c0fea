/**
 * Rows 11 and 12 of the benchmark (docs/benchmarks.md): the local IMAP server.
 *
 * Row 11: a 100,000-message INBOX (--quick: 10,000) written straight into a cache on tmpfs
 * (big-cache.ts), served by `localpost start`; one Python imaplib session times SELECT INBOX and
 * `UID FETCH 1:* (FLAGS)`, best of 3 each.
 * Row 12: a fresh Dovecot with 3,000 messages (--quick: 300) in INBOX and 5 in Archive; localpost
 * pulls both folders over IMAP, then `localpost start` serves its cache; mbsync mirrors both folders
 * (Sync Pull, default fsync, a fresh Maildir each time) from localpost's IMAP server and from
 * Dovecot, alternating, best of 2; the ratio is localpost's time over Dovecot's.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PYTHON } from '../tests/support/python.js';
import { startTestbed } from '../tests/support/testbed.js';
import { buildCache } from './big-cache.js';
import { best, type Figure, failedFigures, ratioFigure } from './figures.js';
import { bigScratch } from './maildrop.js';
import { countMessageFiles, runLocalpost, runMbsync, type Upstream } from './peers.js';
import { freePort, REPO, type SectionOptions, startDaemon, writeDaemonConfig } from './support.js';

const ARCHIVE_N = 5;

const IMAPLIB = `
import imaplib, sys, time
imaplib._MAXLINE = 1 << 30
port, user, pw, rounds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
m = imaplib.IMAP4('127.0.0.1', port); m.login(user, pw)
sel, fet = [], []
for _ in range(rounds):
    t0 = time.perf_counter(); typ, data = m.select('INBOX'); sel.append((time.perf_counter() - t0) * 1000)
    assert typ == 'OK', data
    n = int(data[0])
    t0 = time.perf_counter(); typ, data = m.uid('FETCH', '1:*', '(FLAGS)'); fet.append((time.perf_counter() - t0) * 1000)
    assert typ == 'OK' and len(data) == n, (typ, len(data), n)
    m.unselect() if hasattr(m, 'unselect') else m.close()
m.logout()
print(n, ' '.join('%.1f' % x for x in sel), ' '.join('%.1f' % x for x in fet), sep='|')
`;

function imaplibRun(port: number, rounds: number): Promise<{ n: number; select: number[]; fetch: number[] }> {
  return new Promise((res, rej) =>
    execFile(
      PYTHON,
      ['-c', IMAPLIB, String(port), 'big', 'localpw', String(rounds)],
      { maxBuffer: 64 << 20 },
      (e, out) => {
        if (e) return rej(e);
        const [n, s, f] = out.trim().split('|');
        res({ n: Number(n), select: (s ?? '').split(' ').map(Number), fetch: (f ?? '').split(' ').map(Number) });
      },
    ),
  );
}

export async function imapServeSection(o: SectionOptions): Promise<Figure[]> {
  return [...(await bigFolder(o)), await mirror(o)];
}

/** Row 11: SELECT and UID FETCH 1:* (FLAGS) of a huge INBOX. */
async function bigFolder(o: SectionOptions): Promise<Figure[]> {
  const n = o.quick ? 10_000 : 100_000;
  const label = n.toLocaleString('en-US');
  const selBase = {
    id: `imap-select-${n}`,
    row: 11,
    name: `IMAP SELECT of a ${label}-message INBOX`,
    unit: 'ms',
    goal: { op: '<', value: 300 } as const,
  };
  const fetBase = {
    id: `imap-fetch-flags-${n}`,
    row: 11,
    name: `IMAP UID FETCH 1:* (FLAGS) of a ${label}-message INBOX`,
    unit: 'ms',
    goal: { op: '<', value: 1000 } as const,
  };
  const dir = bigScratch(o, 'lp-bench-imap-');
  try {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    await buildCache(dataDir, ['big'], n);
    const pop3 = await freePort();
    const imap = await freePort();
    // the upstream is a closed port: no pull may run during the measurements
    const cfg = writeDaemonConfig(
      dir,
      dataDir,
      pop3,
      [{ id: 'big', protocol: 'pop3', port: await freePort(), username: 'x', password: 'x' }],
      { imapPort: imap },
    );
    const d = await startDaemon(cfg, pop3, join(dir, 'daemon.log'), { timeoutMs: 600_000 });
    try {
      const r = await imaplibRun(imap, 3);
      if (r.n !== n) throw new Error(`SELECT said ${r.n} EXISTS, expected ${n}`);
      o.log(`imap ${label}: SELECT ${r.select.join(', ')} ms; UID FETCH 1:* (FLAGS) ${r.fetch.join(', ')} ms`);
      return [
        { ...selBase, value: best(r.select), detail: `best of 3: ${r.select.join(', ')} ms` },
        { ...fetBase, value: best(r.fetch), detail: `best of 3: ${r.fetch.join(', ')} ms` },
      ];
    } finally {
      await d.stop();
    }
  } catch (err) {
    return failedFigures([selBase, fetBase], err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Row 12: mbsync mirroring localpost's IMAP server vs mbsync mirroring Dovecot, same messages. */
async function mirror(o: SectionOptions): Promise<Figure> {
  const n = o.quick ? 300 : 3000;
  const base = {
    id: `imap-mirror-${n}`,
    row: 12,
    name: `mbsync mirroring ${n.toLocaleString('en-US')} (+${ARCHIVE_N} in Archive) from localpost's IMAP server, time vs from Dovecot`,
    goal: { op: '<=', value: 1.5 } as const,
  };
  const tb = await startTestbed({ postfix: false });
  const work = join(o.work, 'imap-mirror');
  try {
    mkdirSync(work, { recursive: true });
    await tb.seed('alice', n, 7000, { reset: true, archiveN: ARCHIVE_N });
    const up: Upstream = { pop3Port: tb.pop3Port, imapPort: tb.imapPort, user: 'alice', pass: 'alicepw' };
    const pulled = await runLocalpost(REPO, 'imap', up, work, ['INBOX', 'Archive']);
    if (!pulled.ok) throw new Error(`localpost sync: ${pulled.error}`);
    const dir = join(work, 'localpost-imap');
    const pop3 = await freePort();
    const imap = await freePort();
    const cfg = writeDaemonConfig(
      dir,
      join(dir, 'data'),
      pop3,
      // the same account id as the pull, its upstream a closed port: no pull during the run
      [
        {
          id: 'bench',
          protocol: 'imap',
          port: await freePort(),
          username: 'x',
          password: 'x',
          folders: ['INBOX', 'Archive'],
        },
      ],
      { imapPort: imap },
    );
    const d = await startDaemon(cfg, pop3, join(dir, 'daemon.log'));
    const lp: number[] = [];
    const dc: number[] = [];
    try {
      const local: Upstream = { pop3Port: pop3, imapPort: imap, user: 'bench', pass: 'localpw' };
      for (let r = 1; r <= (o.quick ? 1 : 2); r++) {
        for (const [who, u, times] of [
          ['Dovecot', up, dc],
          ['localpost', local, lp],
        ] as const) {
          const rw = join(work, `mirror-${who}-${r}`);
          mkdirSync(rw, { recursive: true });
          const res = await runMbsync(u, rw, ['INBOX', 'Archive']);
          if (!res.ok) throw new Error(`mbsync from ${who}: ${res.error}`);
          if (res.files !== n + ARCHIVE_N)
            throw new Error(`mbsync from ${who} made ${res.files} files, expected ${n + ARCHIVE_N}`);
          times.push(res.wallSeconds);
          o.log(`  mirror round ${r} from ${who}: ${res.wallSeconds.toFixed(2)} s`);
          rmSync(rw, { recursive: true, force: true });
        }
      }
    } finally {
      await d.stop();
    }
    const c = countMessageFiles(join(dir, 'data'));
    return ratioFigure(
      { ...base, detail: `best of ${lp.length}; cache ${c.files} files` },
      best(lp),
      best(dc),
      'Dovecot',
      's',
    );
  } catch (err) {
    return { ...base, unit: '×', value: null, error: (err as Error).message };
  } finally {
    await tb.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
