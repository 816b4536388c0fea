/**
 * The hostile-upstream fuzz mode (`npm run fuzz -- --mode upstream`): seeded rounds of a POP3 or
 * IMAP pull against an in-process fake that lies (docs/guarantees.md#hostile-upstream-servers):
 * a RETR body far past its declared size, endless or over-long UIDL replies, an endless status
 * line, FETCH literals below, between and past the caps. Each round pulls into a fresh cache with
 * `maxMessageSize` 1 MiB, among well-behaved messages.
 *
 * A round fails when a file over `maxMessageSize` is stored, a temp file is left, a well-behaved
 * message listed before the hostile one is not stored while the pull reported success, the pull
 * rejects with anything but a TemporaryError, or the process has an unhandled rejection. RSS is
 * sampled through the run; its peak is reported.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import { TemporaryError } from '../../src/shared/errors.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { Pop3Fetcher } from '../../src/upstream/pop3/fetcher.js';
import type { Fetcher } from '../../src/upstream/types.js';
import { startFakeImap } from '../fakes/fake-imap.js';
import { endlessLines, expectedRetr, type FakeAction, startFakePop3 } from '../fakes/fake-pop3.js';
import { Rng } from './fuzz.js';

const MB = 1024 * 1024;
const MAX_MESSAGE = MB;
const log = pino({ level: 'silent' });

/** The lies a round can tell. */
export const UPSTREAM_SCENARIOS = [
  'pop3-endless-retr',
  'pop3-endless-uidl',
  'pop3-long-uidl-line',
  'pop3-endless-status-line',
  'imap-huge-literal',
] as const;
export type UpstreamScenario = (typeof UPSTREAM_SCENARIOS)[number];

export interface UpstreamFuzzStats {
  rounds: number;
  byScenario: Record<string, number>;
  /** Pulls that failed with a TemporaryError (a refused reply), and messages skipped. */
  failedPulls: number;
  skipped: number;
  /** Bytes the fakes offered to send (what a hostile server would have pushed). */
  offeredMb: number;
  /** Files in a Maildir larger than maxMessageSize: must stay 0. */
  filesOverLimit: number;
  /** RSS when the run started, and its peak (sampled every 50 ms and after each round). */
  startRssMb: number;
  maxRssMb: number;
  seconds: number;
}

export interface UpstreamFuzzFailure {
  scenario: UpstreamScenario;
  seed: number;
  detail: string;
}

const endpoint = (port: number) =>
  ({ host: '127.0.0.1', port, tls: 'none', username: 'alice', password: 'pw', timeoutMs: 3000 }) as const;

function messages(rng: Rng, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    Buffer.from(`Subject: ${i + 1}\r\n\r\n${'x'.repeat(rng.range(10, 4000))}\r\n`),
  );
}

/** Chunks of `total` bytes of body lines (no terminator: the body never ends by itself). */
function* bodyBytes(total: number, lineLength: number): Generator<Buffer> {
  if (lineLength >= 64 * 1024) {
    // one line of `total` bytes, made 64 KiB at a time so the fake holds no more
    const y = Buffer.alloc(64 * 1024, 0x79);
    for (let sent = 0; sent < total; sent += y.length) yield y;
    yield Buffer.from('\r\n');
    return;
  }
  const line = Buffer.from(`${'y'.repeat(lineLength)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: Math.max(1, Math.floor(65536 / line.length)) }, () => line));
  for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
}

interface Round {
  fetcher: (cache: Cache) => Fetcher;
  /** Messages a pull that succeeded must have stored: all but the hostile one. */
  minStored: number;
  close: () => Promise<void>;
  offered: number;
}

async function pop3Round(rng: Rng, scenario: UpstreamScenario): Promise<Round> {
  const msgs = messages(rng, rng.range(1, 4));
  const hostile = rng.range(1, msgs.length);
  const declared = rng.range(0, 5000);
  let offered = 0;
  const target = rng.pick(['STAT', 'UIDL', 'LIST', 'PASS', 'CAPA']);
  const action = (verb: string, args: string[]): FakeAction | undefined => {
    if (scenario === 'pop3-endless-retr' && verb === 'LIST') {
      const sizes = msgs.map((m, i) => `${i + 1} ${i + 1 === hostile ? declared : expectedRetr(m).length}`);
      return { reply: `+OK\r\n${sizes.map((l) => `${l}\r\n`).join('')}.\r\n` };
    }
    if (scenario === 'pop3-endless-retr' && verb === 'RETR' && Number(args[0]) === hostile) {
      const total = rng.chance(0.3) ? rng.range(declared, declared + 200_000) : rng.range(2, 60) * MB;
      offered += total;
      // a short body ends properly (within its limit); a long one never ends
      if (total < MAX_MESSAGE / 2) return { reply: `+OK\r\n${'z'.repeat(total)}\r\n.\r\n` };
      return { reply: '+OK\r\n', stream: () => bodyBytes(total, rng.range(0, 2000)) };
    }
    if (scenario === 'pop3-endless-uidl' && verb === 'UIDL') {
      const lines = rng.range(500_000, 2_500_000);
      const width = rng.range(1, 70);
      offered += lines * (width + 10);
      return { reply: '+OK\r\n', stream: () => endlessLines(lines, (i) => `${i + 1} ${'u'.repeat(width)}`) };
    }
    if (scenario === 'pop3-long-uidl-line' && verb === 'UIDL') {
      const n = rng.range(1025, 4 * MB);
      offered += n;
      return { reply: '+OK\r\n1 ', stream: () => bodyBytes(n, n) };
    }
    if (scenario === 'pop3-endless-status-line' && verb === target) {
      const n = rng.range(65 * 1024, 16 * MB);
      offered += n;
      return { reply: '+OK ', stream: () => bodyBytes(n, n + 1) };
    }
    return undefined;
  };
  const fake = await startFakePop3({ user: 'alice', pass: 'pw', messages: msgs, onCommand: action });
  return {
    fetcher: (cache) =>
      new Pop3Fetcher({
        endpoint: endpoint(fake.port),
        store: cache.account('a'),
        log,
        keepOnServer: rng.chance(0.5),
        maxMessageSize: MAX_MESSAGE,
      }),
    minStored: msgs.length - 1,
    close: () => fake.close(),
    get offered() {
      return offered;
    },
  };
}

async function imapRound(rng: Rng): Promise<Round> {
  const msgs = messages(rng, rng.range(1, 4));
  const hostile = rng.range(1, msgs.length);
  // below the limit, between it and the literal cap (2 × max + 64 KiB), or past the cap
  const size = rng.pick([rng.range(1, 64 * 1024), rng.range(MB + 1, 2 * MB), rng.range(3 * MB, 40 * MB)]);
  const fake = await startFakeImap({
    messages: msgs,
    body: (uid) => (uid === hostile ? Buffer.alloc(size, 0x61) : undefined),
  });
  return {
    fetcher: (cache) =>
      new ImapFetcher({
        endpoint: endpoint(fake.port),
        store: cache.account('a'),
        cursors: cache,
        log,
        folders: ['INBOX'],
        maxMessageSize: MAX_MESSAGE,
      }),
    minStored: msgs.length - 1,
    close: () => fake.close(),
    offered: size,
  };
}

/** Runs rounds for `seconds` (or `rounds` rounds), every scenario in turn. */
export async function runUpstreamFuzz(opts: {
  seed: number;
  seconds?: number;
  rounds?: number;
  onProgress?: (s: UpstreamFuzzStats) => void;
}): Promise<{ stats: UpstreamFuzzStats; failures: UpstreamFuzzFailure[] }> {
  const started = performance.now();
  const stats: UpstreamFuzzStats = {
    rounds: 0,
    byScenario: {},
    failedPulls: 0,
    skipped: 0,
    offeredMb: 0,
    filesOverLimit: 0,
    startRssMb: process.memoryUsage().rss / MB,
    maxRssMb: 0,
    seconds: 0,
  };
  const failures: UpstreamFuzzFailure[] = [];
  const sample = () => {
    stats.maxRssMb = Math.max(stats.maxRssMb, process.memoryUsage().rss / MB);
  };
  const sampler = setInterval(sample, 50);
  let unhandled: unknown;
  const onUnhandled = (err: unknown) => {
    unhandled ??= err;
  };
  process.on('unhandledRejection', onUnhandled);
  const master = new Rng(opts.seed);
  let lastReport = started;
  try {
    for (let i = 0; ; i++) {
      const elapsed = (performance.now() - started) / 1000;
      if (opts.rounds !== undefined ? i >= opts.rounds : elapsed >= (opts.seconds ?? 60)) break;
      const seed = master.next();
      const scenario = UPSTREAM_SCENARIOS[i % UPSTREAM_SCENARIOS.length] as UpstreamScenario;
      const detail = await oneRound(seed, scenario, stats);
      if (detail) failures.push({ scenario, seed, detail });
      if (unhandled) {
        failures.push({ scenario, seed, detail: `unhandled rejection: ${String(unhandled)}` });
        unhandled = undefined;
      }
      stats.rounds++;
      stats.byScenario[scenario] = (stats.byScenario[scenario] ?? 0) + 1;
      sample();
      if (opts.onProgress && performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        opts.onProgress({ ...stats, seconds: (lastReport - started) / 1000 });
      }
    }
  } finally {
    clearInterval(sampler);
    process.off('unhandledRejection', onUnhandled);
  }
  stats.seconds = (performance.now() - started) / 1000;
  return { stats, failures };
}

/** One round; returns what went wrong, or undefined. */
async function oneRound(
  seed: number,
  scenario: UpstreamScenario,
  stats: UpstreamFuzzStats,
): Promise<string | undefined> {
  const rng = new Rng(seed);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-fuzz-up-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  const round = scenario === 'imap-huge-literal' ? await imapRound(rng) : await pop3Round(rng, scenario);
  try {
    let lastOk = false;
    for (let pull = 0; pull < 2; pull++) {
      try {
        const r = await round.fetcher(cache).pull();
        stats.skipped += r.skipped.length;
        lastOk = true;
      } catch (err) {
        if (!(err instanceof TemporaryError)) return `pull ${pull + 1} threw ${String(err)}`;
        stats.failedPulls++;
        lastOk = false;
      }
    }
    const stored = cache.account('a').list(INBOX).length;
    if (lastOk && stored < round.minStored) return `the pull succeeded but stored ${stored} of ${round.minStored}`;
    const maildir = path.join(dataDir, 'accounts/a/Maildir');
    for (const d of ['tmp', 'new', 'cur']) {
      for (const f of readdirSync(path.join(maildir, d))) {
        const size = statSync(path.join(maildir, d, f)).size;
        if (d === 'tmp') return `temp file left: ${f} (${size} bytes)`;
        if (size > MAX_MESSAGE) {
          stats.filesOverLimit++;
          return `stored ${f}: ${size} bytes, over maxMessageSize`;
        }
      }
    }
    return undefined;
  } finally {
    stats.offeredMb += round.offered / MB;
    cache.close();
    await round.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
