/**
 * Fuzzing, short run: a few thousand generated sessions against the local POP3 and
 * SMTP listeners and the POP3 wire codec's properties (tests/reliability/fuzz-targets.ts), and a
 * few rounds of hostile upstream servers against the fetchers (fuzz-upstream.ts). The long
 * run is `npm run fuzz -- --seconds N [--seed S]`; a failure prints the seed that replays it
 * (`npm run fuzz -- --replay pop3:<seed>`). The IMAP listener has its own short run here
 * (fuzz-imap.ts; long: `npm run fuzz -- --protocol imap`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runImapFuzz } from './fuzz-imap.js';
import { runFuzz } from './fuzz-targets.js';
import { runUpstreamFuzz, UPSTREAM_SCENARIOS } from './fuzz-upstream.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20260601);

test('fuzzing: POP3 and SMTP listeners and the POP3 codec survive hostile input', async () => {
  const { stats, failures } = await runFuzz({
    seed: SEED,
    sessions: Number(process.env.FUZZ_SESSIONS ?? 3000),
    codecCases: 3000,
  });
  const summary = failures
    .slice(0, 8)
    .map(
      (f) =>
        `${f.what}${f.protocol ? ` (replay: ${f.protocol}:${f.seed})` : f.seed !== undefined ? ` (seed ${f.seed})` : ''}: ${f.detail?.slice(0, 300) ?? ''}`,
    );
  assert.equal(failures.length, 0, `run seed ${SEED}, ${failures.length} failures:\n${summary.join('\n')}`);
  assert.ok(stats.badSessions > 300, `enough bad sessions (${stats.badSessions})`);
  assert.ok(stats.probes >= 10, 'the listeners were checked with well-behaved sessions along the way');
  process.stdout.write(
    `# fuzz: ${stats.sessions} sessions (${stats.pop3} POP3, ${stats.smtp} SMTP), ${stats.badSessions} bad, ` +
      `${stats.protocolErrors} protocol errors, ${(stats.bytes / 1e6).toFixed(1)} MB sent, ${stats.codecCases} codec cases, ` +
      `heap +${stats.heapGrowthMb.toFixed(1)} MB, ${stats.seconds.toFixed(1)} s\n`,
  );
});

test('fuzzing: hostile upstream servers store nothing over maxMessageSize and leave no temp file', async () => {
  const { stats, failures } = await runUpstreamFuzz({ seed: SEED, rounds: 2 * UPSTREAM_SCENARIOS.length });
  const summary = failures.map((f) => `${f.scenario} (seed ${f.seed}): ${f.detail.slice(0, 300)}`);
  assert.equal(failures.length, 0, `run seed ${SEED}, ${failures.length} failures:\n${summary.join('\n')}`);
  assert.equal(stats.filesOverLimit, 0);
  assert.ok(stats.failedPulls > 0 && stats.skipped > 0, 'the fakes lied: pulls were refused and messages skipped');
  process.stdout.write(
    `# fuzz upstream: ${stats.rounds} rounds, ${stats.failedPulls} pulls refused, ${stats.skipped} skipped, ` +
      `${stats.offeredMb.toFixed(0)} MB offered, RSS peak ${stats.maxRssMb.toFixed(0)} MB\n`,
  );
});

test('fuzzing: the IMAP listener survives hostile input, answers or closes, keeps memory and messages', async () => {
  const { stats, failures } = await runImapFuzz({
    seed: SEED,
    sessions: Number(process.env.FUZZ_IMAP_SESSIONS ?? 800),
    probeEvery: 100,
  });
  const summary = failures
    .slice(0, 8)
    .map(
      (f) => `${f.what}${f.seed !== undefined ? ` (replay: imap:${f.seed})` : ''}: ${f.detail?.slice(0, 300) ?? ''}`,
    );
  assert.equal(failures.length, 0, `run seed ${SEED}, ${failures.length} failures:\n${summary.join('\n')}`);
  assert.ok(stats.badSessions > 100, `enough bad sessions (${stats.badSessions})`);
  assert.ok(stats.aborted > 20, `enough disconnects mid-stream (${stats.aborted})`);
  assert.ok(stats.probes >= 5, 'the listener was checked with well-behaved sessions along the way');
  process.stdout.write(
    `# fuzz imap: ${stats.sessions} sessions, ${stats.badSessions} bad, ${stats.aborted} aborted, ` +
      `${stats.protocolErrors} protocol errors, ${(stats.bytes / 1e6).toFixed(1)} MB sent, ` +
      `heap +${stats.heapGrowthMb.toFixed(1)} MB, ${stats.seconds.toFixed(1)} s\n`,
  );
});
