/**
 * `npm run fuzz -- [--seconds N] [--seed S] [--concurrency C] [--protocol pop3|smtp|imap]`: the
 * long fuzzing run of the local POP3 and SMTP listeners and the POP3 wire codec, or with
 * `--protocol imap` of the local IMAP listener over a real cache (tests/reliability/fuzz-imap.ts)
 * (the short runs are in tests/reliability/fuzz.test.ts). Prints progress and the figures; exits
 * 1 on any finding.
 * `--mode upstream`: hostile upstream POP3/IMAP servers against the fetchers instead
 * (tests/reliability/fuzz-upstream.ts).
 *
 * `npm run fuzz -- --replay pop3:<seed>` (or `imap:<seed>`) replays one session with the server's trace log on
 * stderr and prints the stream sent and the replies.
 */
import { parseArgs } from 'node:util';
import type { FuzzProtocol } from '../tests/reliability/fuzz.js';
import { replayImap, runImapFuzz } from '../tests/reliability/fuzz-imap.js';
import { replay, runFuzz } from '../tests/reliability/fuzz-targets.js';
import { runUpstreamFuzz } from '../tests/reliability/fuzz-upstream.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '24' },
    protocol: { type: 'string' },
    replay: { type: 'string' },
    mode: { type: 'string', default: 'listeners' },
  },
});

/** `--mode upstream`: hostile upstream servers against the fetchers (tests/reliability/fuzz-upstream.ts). */
async function upstream(seed: number, seconds: number): Promise<number> {
  process.stdout.write(`fuzz upstream: seed ${seed}, ${seconds} s\n`);
  const { stats, failures } = await runUpstreamFuzz({
    seed,
    seconds,
    onProgress: (s) =>
      process.stdout.write(`  ${s.seconds.toFixed(0)} s: ${s.rounds} rounds, rss peak ${s.maxRssMb.toFixed(0)} MB\n`),
  });
  process.stdout.write(
    `fuzz upstream: ${stats.rounds} rounds in ${stats.seconds.toFixed(0)} s (${JSON.stringify(stats.byScenario)}); ` +
      `${stats.failedPulls} pulls refused, ${stats.skipped} messages skipped, ${stats.offeredMb.toFixed(0)} MB offered by the fakes; ` +
      `${stats.filesOverLimit} files over maxMessageSize; RSS ${stats.startRssMb.toFixed(0)} MB at the start, peak ${stats.maxRssMb.toFixed(0)} MB\n`,
  );
  for (const f of failures) process.stdout.write(`FAIL ${f.scenario} (seed ${f.seed})\n  ${f.detail.slice(0, 600)}\n`);
  process.stdout.write(failures.length ? `fuzz: ${failures.length} findings\n` : 'fuzz: no findings\n');
  return failures.length ? 1 : 0;
}

/** `--protocol imap`: the IMAP listener over a real cache. */
async function imap(seed: number, seconds: number): Promise<number> {
  process.stdout.write(`fuzz imap: seed ${seed}, ${seconds} s, ${values.concurrency} sessions at a time\n`);
  const { stats, failures } = await runImapFuzz({
    seed,
    seconds,
    concurrency: Number(values.concurrency),
    probeEvery: 500,
    onProgress: (s) =>
      process.stdout.write(
        `  ${s.seconds.toFixed(0)} s: ${s.sessions} sessions, ${s.badSessions} bad, ${s.aborted} aborted, rss ${s.maxRssMb.toFixed(0)} MB\n`,
      ),
  });
  process.stdout.write(
    `fuzz imap: ${stats.sessions} sessions in ${stats.seconds.toFixed(0)} s; ${stats.badSessions} bad, ${stats.aborted} aborted, ` +
      `${stats.protocolErrors} protocol errors answered, ${(stats.bytes / 1e6).toFixed(1)} MB sent; ${stats.probes} probes; ` +
      `heap +${stats.heapGrowthMb.toFixed(1)} MB after warm-up, max RSS ${stats.maxRssMb.toFixed(0)} MB\n`,
  );
  for (const f of failures)
    process.stdout.write(
      `FAIL ${f.what}${f.seed !== undefined ? ` (replay: --replay imap:${f.seed})` : ''}\n  ${f.detail?.slice(0, 600) ?? ''}\n`,
    );
  process.stdout.write(failures.length ? `fuzz: ${failures.length} findings\n` : 'fuzz: no findings\n');
  return failures.length ? 1 : 0;
}

async function main(): Promise<number> {
  if (values.replay?.startsWith('imap:')) {
    const { c, received } = await replayImap(Number(values.replay.slice(5)));
    process.stdout.write(
      `imap session, expectError=${c.expectError}, owed=${c.owed}, abort=${c.abort}, ${c.bytes.length} bytes in ${c.segments.length} writes\n` +
        `--- sent:\n${JSON.stringify(c.bytes.toString('latin1'))}\n--- received:\n${JSON.stringify(received)}\n`,
    );
    return 0;
  }
  if (values.replay) {
    const [protocol, seed] = values.replay.split(':') as [FuzzProtocol, string];
    const { c, received } = await replay(protocol, Number(seed));
    process.stdout.write(
      `${c.kind} ${protocol} session, expectError=${c.expectError}, ${c.bytes.length} bytes in ${c.segments.length} writes\n`,
    );
    process.stdout.write(
      `--- sent:\n${JSON.stringify(c.bytes.toString('latin1'))}\n--- received:\n${JSON.stringify(received)}\n`,
    );
    return 0;
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 32);
  const seconds = Number(values.seconds);
  if (values.mode === 'upstream') return upstream(seed, seconds);
  if (values.protocol === 'imap') return imap(seed, seconds);
  process.stdout.write(`fuzz: seed ${seed}, ${seconds} s, ${values.concurrency} sessions at a time\n`);
  const { stats, failures } = await runFuzz({
    seed,
    seconds,
    concurrency: Number(values.concurrency),
    codecCases: Math.max(2000, seconds * 200),
    protocols: values.protocol ? [values.protocol as FuzzProtocol] : undefined,
    probeEvery: 1000,
    onProgress: (s) =>
      process.stdout.write(
        `  ${s.seconds.toFixed(0)} s: ${s.sessions} sessions, ${s.badSessions} bad, ${s.protocolErrors} protocol errors, rss ${s.maxRssMb.toFixed(0)} MB\n`,
      ),
  });
  process.stdout.write(
    `fuzz: ${stats.sessions} sessions (${stats.pop3} POP3, ${stats.smtp} SMTP) in ${stats.seconds.toFixed(0)} s; ` +
      `${stats.badSessions} bad sessions, ${stats.protocolErrors} protocol errors answered, ${(stats.bytes / 1e6).toFixed(1)} MB sent; ` +
      `${stats.probes} well-behaved probes; ${stats.codecCases} codec cases (${(stats.codecBytes / 1e6).toFixed(1)} MB); ` +
      `heap +${stats.heapGrowthMb.toFixed(1)} MB after warm-up, max RSS ${stats.maxRssMb.toFixed(0)} MB\n`,
  );
  for (const f of failures) {
    process.stdout.write(
      `FAIL ${f.what}${f.protocol ? ` (replay: --replay ${f.protocol}:${f.seed})` : f.seed !== undefined ? ` (seed ${f.seed})` : ''}\n  ${f.detail?.slice(0, 600) ?? ''}\n`,
    );
  }
  process.stdout.write(failures.length ? `fuzz: ${failures.length} findings\n` : 'fuzz: no findings\n');
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
