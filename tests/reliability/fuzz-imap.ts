/**
 * Fuzzing the local IMAP listener: seeded hostile sessions (`fuzz-imap-cases.ts`) against an
 * `ImapServer` over a real cache in this process. Used by `fuzz.test.ts` (a short run) and
 * `npm run fuzz -- --protocol imap` (`--replay imap:<seed>` replays one session).
 *
 * Each session ends with an epilogue: the literal octets the model says are owed (spaces), then
 * `DONE` and `LOGOUT`; then, if the server is still open, more spaces than any literal the stream
 * can want and an over-long line. Checks, per session and per run:
 * - no crash (uncaught exception, unhandled rejection) and nothing logged at error level;
 * - a stream holding a certainly-bad command before any literal draws at least one BAD/NO/BYE;
 * - the server answers LOGOUT or closes within the bound (`drive()`); aborted sessions
 *   included, no session is left open at the end;
 * - memory: heap + Buffers after a full GC grow by less than the bound after warm-up;
 * - nothing lost: the cache invariants hold (`invariants.ts`), and bob's mailbox, read by the
 *   well-behaved probes along the way and never fuzzed, keeps exactly its messages.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serveCache } from '../support/imap-cache.js';
import { sampleMessage } from '../support/pop3-server.js';
import { generateImapCase, type ImapCase } from './fuzz-imap-cases.js';
import { captureLog, drive, type FuzzFailure, heapAfterGc, sessionSeed, watchCrashes } from './fuzz-targets.js';
import { cacheFaults, localIds } from './invariants.js';

/** Figures of a run. */
export interface ImapFuzzStats {
  sessions: number;
  badSessions: number;
  protocolErrors: number;
  aborted: number;
  bytes: number;
  probes: number;
  heapGrowthMb: number;
  maxRssMb: number;
  seconds: number;
}

const GREETING = /^\* OK[^\r\n]*\r\n/;

/**
 * A fuzz session: the case, then the owed literal bytes, DONE and LOGOUT; then, when the model
 * owed wrong (a literal inside a literal, a flipped size), more spaces than any literal the
 * stream can still want plus an over-long line (64 KiB): the server must close either way.
 */
async function imapSession(port: number, c: ImapCase): Promise<{ errors: number; closed: boolean; received: string }> {
  const pay = `${' '.repeat(c.owed)}\r\n`;
  const flood = `${' '.repeat(140 * 1024)}\r\nz2 LOGOUT\r\n`;
  const r = await drive(port, c, GREETING, c.abort ? [] : [`${pay}DONE\r\nz1 LOGOUT\r\n`, flood]);
  const errors = r.received.match(/(?:^|\r\n)(?:\S+ (?:BAD|NO)|\* BYE|\* BAD)\b/g)?.length ?? 0;
  return { ...r, errors };
}

/** A well-behaved session as bob: SELECT, FETCH of the first message, LOGOUT. */
async function imapProbe(port: number): Promise<void> {
  const c = await drive(
    port,
    { segments: [Buffer.from('p1 LOGIN bob bobpw\r\np2 EXAMINE INBOX\r\np3 FETCH 1 BODY.PEEK[]\r\n')] },
    GREETING,
    ['p4 LOGOUT\r\n'],
  );
  for (const want of [/p1 OK/, /\* 3 EXISTS/, /p2 OK/, /p3 OK/, /p4 OK/])
    if (!want.test(c.received)) throw new Error(`probe: no ${want} in ${JSON.stringify(c.received.slice(0, 400))}`);
}

/** The run: `sessions` or `seconds`, `concurrency` at once; never throws for a finding. */
export async function runImapFuzz(o: {
  seed: number;
  sessions?: number;
  seconds?: number;
  concurrency?: number;
  probeEvery?: number;
  maxHeapGrowthMb?: number;
  onProgress?: (s: ImapFuzzStats) => void;
}): Promise<{ stats: ImapFuzzStats; failures: FuzzFailure[] }> {
  const failures: FuzzFailure[] = [];
  const fail = (f: FuzzFailure): void => void (failures.length < 50 && failures.push(f));
  const t0 = Date.now();
  const stats: ImapFuzzStats = {
    sessions: 0,
    badSessions: 0,
    protocolErrors: 0,
    aborted: 0,
    bytes: 0,
    probes: 0,
    heapGrowthMb: 0,
    maxRssMb: 0,
    seconds: 0,
  };
  const crashWatch = watchCrashes();
  const logged: Array<Record<string, unknown>> = [];
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-fuzz-imap-'));
  const srv = await serveCache(dataDir, { protocol: 'pop3', accounts: ['alice', 'bob'], log: captureLog(logged) });
  try {
    for (const a of ['alice', 'bob'])
      for (let i = 1; i <= 3; i++) await srv.store(a).append('INBOX', Buffer.from(sampleMessage(i)));
    const bobIds = localIds(dataDir, 'bob').sort();
    const port = srv.imap.port;
    const deadline = o.seconds !== undefined ? t0 + o.seconds * 1000 : Infinity;
    const limit = o.sessions ?? Infinity;
    const probeEvery = o.probeEvery ?? 200;
    let next = 0;
    let nextProbe = probeEvery;
    let warmHeap: number | undefined;
    const probe = async (): Promise<void> => {
      stats.probes++;
      await imapProbe(port).catch((err: Error) =>
        fail({ what: 'a well-behaved IMAP session failed', detail: err.message }),
      );
    };
    const worker = async (): Promise<void> => {
      while (next < limit && Date.now() < deadline && failures.length < 50) {
        const seed = sessionSeed(o.seed, next++);
        const c = generateImapCase(seed);
        try {
          const r = await imapSession(port, c);
          stats.protocolErrors += r.errors;
          if (c.abort) stats.aborted++;
          if (c.expectError && !c.abort) {
            stats.badSessions++;
            if (r.errors === 0)
              fail({
                what: 'a bad session got no BAD/NO',
                protocol: 'imap',
                seed,
                detail: JSON.stringify(r.received.slice(-300)),
              });
          }
          if (!c.abort && !r.closed)
            fail({
              what: 'the server neither answered LOGOUT nor closed',
              protocol: 'imap',
              seed,
              detail: JSON.stringify(r.received.slice(-300)),
            });
        } catch (err) {
          fail({ what: 'session failed on the client side', protocol: 'imap', seed, detail: (err as Error).message });
        }
        stats.sessions++;
        stats.bytes += c.bytes.length;
        for (const l of logged.splice(0).filter((l) => Number(l.level) >= 50))
          fail({
            what: `internal error logged: ${String(l.msg)}`,
            protocol: 'imap',
            seed,
            detail: JSON.stringify(l).slice(0, 400),
          });
        if (stats.sessions >= nextProbe) {
          nextProbe += probeEvery;
          await probe();
          if (srv.store().folder('INBOX')!.messages < 3)
            await srv.store().append('INBOX', Buffer.from(sampleMessage(9)));
          stats.maxRssMb = Math.max(stats.maxRssMb, process.memoryUsage().rss / 2 ** 20);
          warmHeap ??= heapAfterGc();
          o.onProgress?.({ ...stats, seconds: (Date.now() - t0) / 1000 });
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency ?? 12 }, () => worker()));
    await probe();
    const end = Date.now() + 5000;
    while (srv.imap.sessionCount > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    if (srv.imap.sessionCount > 0) fail({ what: `${srv.imap.sessionCount} IMAP sessions still open after the run` });
    stats.heapGrowthMb = warmHeap === undefined ? 0 : Math.max(0, heapAfterGc() - warmHeap);
    stats.maxRssMb = Math.max(stats.maxRssMb, process.memoryUsage().rss / 2 ** 20);
    if (stats.heapGrowthMb > (o.maxHeapGrowthMb ?? 48))
      fail({ what: `heap grew by ${stats.heapGrowthMb.toFixed(1)} MB after warm-up` });
    for (const a of ['alice', 'bob'])
      for (const f of cacheFaults(dataDir, a, { tmpMayHoldFiles: true }))
        fail({ what: `cache invariant broken (${a})`, detail: f });
    const bobNow = localIds(dataDir, 'bob').sort();
    if (bobNow.join() !== bobIds.join())
      fail({ what: "bob's mailbox changed", detail: `${bobIds.join()} -> ${bobNow.join()}` });
  } finally {
    await srv.close();
    rmSync(dataDir, { recursive: true, force: true });
    await crashWatch.stop(fail);
  }
  stats.seconds = (Date.now() - t0) / 1000;
  return { stats, failures };
}

/** Replays one session with the server's trace log on stderr; returns what was received. */
export async function replayImap(seed: number): Promise<{ c: ImapCase; received: string }> {
  const { pino } = await import('pino');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-fuzz-imap-'));
  const srv = await serveCache(dataDir, {
    protocol: 'pop3',
    accounts: ['alice', 'bob'],
    log: pino({ level: 'trace' }, process.stderr),
  });
  try {
    for (let i = 1; i <= 3; i++) await srv.store().append('INBOX', Buffer.from(sampleMessage(i)));
    const c = generateImapCase(seed);
    return { c, received: (await imapSession(srv.imap.port, c)).received };
  } finally {
    await srv.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
