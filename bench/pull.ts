/**
 * `npm run bench`: how fast does localpost pull a large mailbox, next to fetchmail (POP3) and
 * mbsync (IMAP) on the same machine, the same upstream and the same data?
 *
 * Starts a testbed (Dovecot only), seeds N messages into alice's INBOX, warms Dovecot's index
 * (one POP3 UIDL and one IMAP UID FETCH, so no contestant pays for building it), then runs, one
 * after another, fetchmail, localpost over POP3, mbsync and localpost over IMAP, each from a
 * fresh state. Prints a table and the ratios, writes bench/results/latest.json, stops the testbed.
 *
 * Options: --messages N (default 10000), --size BYTES (seed body size, default 7000, which
 * makes 10,000 messages about 70 MB), --only pop3|imap.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PYTHON } from '../tests/support/python.js';
import { startTestbed, type Testbed } from '../tests/support/testbed.js';
import { countMessageFiles, type RunResult, runFetchmail, runLocalpost, runMbsync, type Upstream } from './peers.js';

/** Seed body size giving ~7 KB per message, i.e. ~70 MB for 10,000 messages. */
const DEFAULT_SEED_SIZE = 7000;
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const WARM = `
import poplib, imaplib, sys
port_pop, port_imap = int(sys.argv[1]), int(sys.argv[2])
p = poplib.POP3('127.0.0.1', port_pop); p.user('alice'); p.pass_('alicepw'); p.uidl(); p.quit()
m = imaplib.IMAP4('127.0.0.1', port_imap); m.login('alice', 'alicepw'); m.select('INBOX', readonly=True)
m.uid('FETCH', '1:*', '(UID RFC822.SIZE)'); m.logout()
`;

function py(script: string, args: string[]): Promise<void> {
  return new Promise((res, rej) =>
    execFile(PYTHON, ['-c', script, ...args], { maxBuffer: 64 << 20 }, (e) => (e ? rej(e) : res())),
  );
}

const mb = (bytes: number): number => bytes / 1e6;
const fmt = (n: number | null, d = 2): string => (n === null || !Number.isFinite(n) ? '-' : n.toFixed(d));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { messages: { type: 'string' }, size: { type: 'string' }, only: { type: 'string' } },
  });
  const n = Number(values.messages ?? 10000);
  const size = values.size !== undefined ? Number(values.size) : DEFAULT_SEED_SIZE;
  const only = values.only as 'pop3' | 'imap' | undefined;
  if (!Number.isInteger(n) || n < 1) throw new Error('--messages must be a positive integer');
  if (only && only !== 'pop3' && only !== 'imap') throw new Error('--only must be pop3 or imap');

  let tb: Testbed | undefined;
  const work = mkdtempSync('/tmp/lpbench-');
  try {
    tb = await startTestbed({ postfix: false });
    await tb.seed('alice', n, size, { reset: true, archiveN: 0 });
    const up = countMessageFiles(tb.maildir('alice'));
    if (up.files !== n) throw new Error(`seeded ${up.files} files, expected ${n}`);
    console.log(
      `upstream: ${n} messages, ${up.bytes} bytes (${fmt(mb(up.bytes), 3)} MB) in alice's INBOX; Dovecot on 127.0.0.1 POP3 ${tb.pop3Port}, IMAP ${tb.imapPort}`,
    );
    await py(WARM, [String(tb.pop3Port), String(tb.imapPort)]);
    const u: Upstream = { pop3Port: tb.pop3Port, imapPort: tb.imapPort, user: 'alice', pass: 'alicepw' };

    const results: RunResult[] = [];
    const run = async (label: string, f: () => Promise<RunResult>): Promise<void> => {
      process.stdout.write(`running ${label} ... `);
      const r = await f();
      results.push(r);
      if (r.ok && r.files !== n) {
        r.ok = false;
        r.error = `produced ${r.files} files, expected ${n}`;
      }
      console.log(r.ok ? `${fmt(r.wallSeconds)} s` : `FAILED: ${r.error}`);
    };
    if (only !== 'imap') {
      await run('fetchmail (POP3)', () => runFetchmail(u, work));
      await run('localpost (POP3)', () => runLocalpost(REPO, 'pop3', u, work));
    }
    if (only !== 'pop3') {
      await run('mbsync (IMAP)', () => runMbsync(u, work));
      await run('localpost (IMAP)', () => runLocalpost(REPO, 'imap', u, work));
    }

    const rows = results.map((r) => ({
      ...r,
      messagesPerSecond: r.ok ? n / r.wallSeconds : null,
      mbPerSecond: r.ok ? mb(up.bytes) / r.wallSeconds : null,
    }));
    console.log('');
    console.log(
      `${'tool'.padEnd(16)}${'proto'.padEnd(7)}${'time s'.padStart(9)}${'msg/s'.padStart(10)}${'MB/s'.padStart(9)}${'peak RSS MB'.padStart(13)}${'files'.padStart(8)}  ok`,
    );
    for (const r of rows) {
      console.log(
        `${r.tool.padEnd(16)}${r.protocol.padEnd(7)}${fmt(r.ok ? r.wallSeconds : null).padStart(9)}${fmt(r.messagesPerSecond, 0).padStart(10)}` +
          `${fmt(r.mbPerSecond).padStart(9)}${fmt(r.peakRssKb === null ? null : r.peakRssKb / 1024, 1).padStart(13)}${String(r.files).padStart(8)}  ${r.ok ? 'yes' : `NO: ${r.error}`}`,
      );
    }
    const time = (tool: string): number | null => rows.find((r) => r.tool === tool && r.ok)?.wallSeconds ?? null;
    const ratio = (a: string, b: string): number | null => {
      const x = time(a);
      const y = time(b);
      return x !== null && y !== null ? x / y : null;
    };
    const ratios = {
      localpostPop3OverFetchmail: ratio('localpost-pop3', 'fetchmail'),
      localpostImapOverMbsync: ratio('localpost-imap', 'mbsync'),
    };
    console.log('');
    if (only !== 'imap')
      console.log(`localpost POP3 time / fetchmail time = ${fmt(ratios.localpostPop3OverFetchmail)}`);
    if (only !== 'pop3') console.log(`localpost IMAP time / mbsync time    = ${fmt(ratios.localpostImapOverMbsync)}`);

    const report = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? null,
        memoryMB: Math.round(totalmem() / 2 ** 20),
        node: process.version,
      },
      upstream: {
        server: 'Dovecot (tests/testbed), loopback, plaintext',
        messages: n,
        bytes: up.bytes,
        megabytes: mb(up.bytes),
        seedSize: size,
      },
      results: rows,
      ratios,
    };
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(join(REPO, 'bench/results/latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwritten: bench/results/latest.json`);
    if (rows.some((r) => !r.ok)) process.exitCode = 1;
  } finally {
    await tb?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
