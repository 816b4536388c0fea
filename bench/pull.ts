/**
 * Rows 1–3 of the benchmark (docs/benchmarks.md): pulling and serving an N-message mailbox.
 *
 * For each size (3,000 and 10,000; --quick 300 and 1,000) a fresh Dovecot (tests/testbed) gets N
 * messages in alice's INBOX plus 5 in Archive; its index is warmed (one POP3 UIDL, one IMAP
 * UID FETCH per folder) so no contestant pays for building it. Then, interleaved, for each round:
 * fetchmail, localpost over POP3, the poplib floor (RETR everything, write nothing), mbsync
 * (default fsync) and localpost over IMAP (INBOX + Archive), each from a fresh directory; the best
 * time of each is kept (2 rounds of 3,000, 1 of 10,000). Last, the data dir localpost pulled over POP3 is served by `localpost
 * start`, and one poplib session RETRs every message from it and from Dovecot, alternating.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PYTHON } from '../tests/support/python.js';
import { startTestbed } from '../tests/support/testbed.js';
import { best, type Figure, ratioFigure } from './figures.js';
import {
  countMessageFiles,
  type RunResult,
  runFetchmail,
  runLocalpost,
  runMbsync,
  runPoplibFloor,
  type Upstream,
} from './peers.js';
import {
  freePort,
  POPLIB_SCRIPT,
  poplib,
  REPO,
  type SectionOptions,
  startDaemon,
  writeDaemonConfig,
} from './support.js';

/** Seed body size: ~7 KB per message, ~70 MB for 10,000. */
const SEED_SIZE = 7000;
const ARCHIVE_N = 5;

const WARM = `
import poplib, imaplib, sys
port_pop, port_imap = int(sys.argv[1]), int(sys.argv[2])
p = poplib.POP3('127.0.0.1', port_pop); p.user('alice'); p.pass_('alicepw'); p.uidl(); p.quit()
m = imaplib.IMAP4('127.0.0.1', port_imap); m.login('alice', 'alicepw')
for f in ('INBOX', 'Archive'):
    m.select(f, readonly=True); m.uid('FETCH', '1:*', '(UID RFC822.SIZE)')
m.logout()
`;

function py(script: string, args: string[]): Promise<void> {
  return new Promise((res, rej) =>
    execFile(PYTHON, ['-c', script, ...args], { maxBuffer: 64 << 20 }, (e) => (e ? rej(e) : res())),
  );
}

type Tool = 'fetchmail' | 'localpost-pop3' | 'poplib-floor' | 'mbsync' | 'localpost-imap';

/** Rows 1–3 for every size; `serve` false skips row 3. */
export async function pullSection(o: SectionOptions): Promise<Figure[]> {
  const sizes = o.quick ? [300, 1000] : [3000, 10000];
  const figures: Figure[] = [];
  const tb = await startTestbed({ postfix: false });
  try {
    for (const n of sizes) {
      // 10,000 once: two rounds of it alone take 10-20 minutes when the shared machine is busy
      const rounds = o.quick || n >= 10_000 ? 1 : 2;
      await tb.seed('alice', n, SEED_SIZE, { reset: true, archiveN: ARCHIVE_N });
      const up = countMessageFiles(tb.maildir('alice'));
      o.log(`pull ${n}: upstream ${up.files} files, ${(up.bytes / 1e6).toFixed(1)} MB (INBOX + Archive)`);
      await py(WARM, [String(tb.pop3Port), String(tb.imapPort)]);
      const u: Upstream = { pop3Port: tb.pop3Port, imapPort: tb.imapPort, user: 'alice', pass: 'alicepw' };
      const expected: Record<Tool, number> = {
        fetchmail: n,
        'localpost-pop3': n,
        'poplib-floor': n,
        mbsync: n + ARCHIVE_N,
        'localpost-imap': n + ARCHIVE_N,
      };
      const times: Record<Tool, (number | null)[]> = {
        fetchmail: [],
        'localpost-pop3': [],
        'poplib-floor': [],
        mbsync: [],
        'localpost-imap': [],
      };
      const errors: string[] = [];
      let servedDir = '';
      for (let r = 1; r <= rounds; r++) {
        const work = join(o.work, `pull-${n}-${r}`);
        mkdirSync(work, { recursive: true });
        const runs: Array<[Tool, () => Promise<RunResult>]> = [
          ['fetchmail', () => runFetchmail(u, work)],
          ['localpost-pop3', () => runLocalpost(REPO, 'pop3', u, work)],
          ['poplib-floor', () => runPoplibFloor(u, work, PYTHON, POPLIB_SCRIPT)],
          ['mbsync', () => runMbsync(u, work, ['INBOX', 'Archive'])],
          ['localpost-imap', () => runLocalpost(REPO, 'imap', u, work, ['INBOX', 'Archive'])],
        ];
        for (const [tool, run] of runs) {
          const res = await run();
          if (res.ok && res.files !== expected[tool]) {
            res.ok = false;
            res.error = `produced ${res.files} messages, expected ${expected[tool]}`;
          }
          if (!res.ok) errors.push(`${tool}: ${res.error}`);
          times[tool].push(res.ok ? res.wallSeconds : null);
          o.log(
            `  round ${r} ${tool.padEnd(15)} ${res.ok ? `${res.wallSeconds.toFixed(2)} s` : `FAILED ${res.error}`}`,
          );
        }
        if (r < rounds) rmSync(work, { recursive: true, force: true });
        else servedDir = join(work, 'localpost-pop3');
      }
      const t = (tool: Tool): number | null => best(times[tool]);
      const of = `best of ${rounds}, ${n.toLocaleString('en-US')} messages`;
      const err = errors.length ? errors.join('; ') : undefined;
      figures.push(
        ratioFigure(
          {
            id: `imap-pull-${n}`,
            row: 1,
            name: `IMAP pull ${n.toLocaleString('en-US')} (+${ARCHIVE_N} in Archive), time vs mbsync`,
            goal: { op: '<=', value: 0.8 },
            detail: of,
            error: err,
          },
          t('localpost-imap'),
          t('mbsync'),
          'mbsync',
          's',
        ),
        ratioFigure(
          {
            id: `pop3-pull-${n}-fetchmail`,
            row: 2,
            name: `POP3 pull ${n.toLocaleString('en-US')}, time vs fetchmail`,
            goal: { op: '<=', value: 0.2 },
            detail: of,
            error: err,
          },
          t('localpost-pop3'),
          t('fetchmail'),
          'fetchmail',
          's',
        ),
        ratioFigure(
          {
            id: `pop3-pull-${n}-floor`,
            row: 2,
            name: `POP3 pull ${n.toLocaleString('en-US')}, time vs poplib RETR-all floor`,
            goal: { op: '<=', value: 3 },
            detail: of,
            error: err,
          },
          t('localpost-pop3'),
          t('poplib-floor'),
          'poplib floor',
          's',
        ),
      );
      figures.push(await serve(o, n, servedDir, u));
      rmSync(join(o.work, `pull-${n}-${rounds}`), { recursive: true, force: true });
    }
  } finally {
    await tb.stop();
  }
  return figures;
}

/** Row 3: RETR of every message over one poplib session, localpost's daemon vs Dovecot, alternating. */
async function serve(o: SectionOptions, n: number, dir: string, u: Upstream): Promise<Figure> {
  const base = {
    id: `pop3-serve-${n}`,
    row: 3,
    name: `POP3 serve: RETR all ${n.toLocaleString('en-US')} in one session, vs Dovecot`,
    goal: { op: '<=', value: 1 } as const,
  };
  const rounds = o.quick ? 1 : 3;
  try {
    const port = await freePort();
    const cfg = writeDaemonConfig(dir, join(dir, 'data'), port, [
      // upstream: a closed port, so no start-up pull competes with the measurement
      { id: 'bench', protocol: 'pop3', port: await freePort(), username: u.user, password: u.pass },
    ]);
    const d = await startDaemon(cfg, port, join(dir, 'daemon.log'));
    const lp: number[] = [];
    const dc: number[] = [];
    try {
      for (let r = 0; r < rounds; r++) {
        const a = await poplib(u.pop3Port, u.user, u.pass, true);
        const b = await poplib(port, 'bench', 'localpw', true);
        if (a.n !== n || b.n !== n || a.lines !== b.lines)
          throw new Error(`different maildrops: Dovecot ${a.n}/${a.lines} lines, localpost ${b.n}/${b.lines}`);
        dc.push(a.retrMs);
        lp.push(b.retrMs);
      }
    } finally {
      await d.stop();
    }
    o.log(
      `  serve ${n}: Dovecot ${dc.map((x) => x.toFixed(0)).join(', ')} ms; localpost ${lp.map((x) => x.toFixed(0)).join(', ')} ms`,
    );
    return ratioFigure({ ...base, detail: `best of ${rounds}` }, best(lp), best(dc), 'Dovecot', 'ms');
  } catch (err) {
    return { ...base, unit: '×', value: null, error: (err as Error).message };
  }
}
