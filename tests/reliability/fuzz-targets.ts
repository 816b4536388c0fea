/**
 * The fuzz harness: runs generated sessions (`fuzz.ts`) against the real local POP3
 * listener and SMTP listener in this process, and property checks against the POP3 wire codec.
 * Used by `tests/reliability/fuzz.test.ts` (a short run) and `scripts/fuzz.ts` (`npm run fuzz`).
 *
 * What counts as a failure, per session or per run:
 * - a crash: an uncaught exception or an unhandled rejection anywhere in the process;
 * - an internal error: the servers logged something at error level (a handler that threw on
 *   input it should have refused);
 * - a bad session (see `expectsError`) answered without any protocol error;
 * - a hang: the server neither answered nor closed after the client's final `QUIT`;
 * - a leak: sessions still open at the end, or heap growth beyond the bound after warm-up;
 * - service lost: a well-behaved session (another account, clean commands) fails, checked
 *   regularly during the run and at its end;
 * - a codec property broken: `LineReader` against a reference splitter, `DotStuffer` →
 *   `DotUnstuffer` round trips under any segmentation, `CrlfSizer`, `HeaderEndFinder`,
 *   `parseStatusLine` never throwing.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import {
  CrlfSizer,
  DotStuffer,
  DotUnstuffer,
  formatStatusLine,
  HeaderEndFinder,
  LineReader,
  LineTooLongError,
  parseStatusLine,
} from '../../src/shared/pop3-wire/index.js';
import {
  type Pop3Fixture,
  authenticated as pop3Authenticated,
  sampleMessage,
  startPop3,
} from '../support/pop3-server.js';
import { type SmtpFixture, authenticated as smtpAuthenticated, startSmtp } from '../support/smtp.js';
import { corpus, type FuzzCase, type FuzzProtocol, generateCase, Rng, segment } from './fuzz.js';

/** Longest POP3 command line of the fuzzed listener (its default). */
export const POP3_MAX_LINE = 2048;
/** smtp-server's default `maxCommandLength`. */
export const SMTP_MAX_LINE = 16 * 1024;

/** Options of a run. */
export interface FuzzRunOptions {
  seed: number;
  /** Stop after this many sessions (default: no limit; then `seconds` must be set). */
  sessions?: number;
  /** Stop after this long. */
  seconds?: number;
  /** Sessions in flight at once (default 16; the listeners allow 50). */
  concurrency?: number;
  protocols?: FuzzProtocol[];
  /** Codec property cases (default 2000). */
  codecCases?: number;
  /** A well-behaved session every this many sessions (default 250). */
  probeEvery?: number;
  /** Allowed heap growth after warm-up, in MB (default 48). */
  maxHeapGrowthMb?: number;
  onProgress?: (s: FuzzStats) => void;
}

/** Figures of a run. */
export interface FuzzStats {
  sessions: number;
  pop3: number;
  smtp: number;
  /** Sessions the model said must draw an error (all of them did, unless a failure says so). */
  badSessions: number;
  /** Protocol errors the servers answered. */
  protocolErrors: number;
  /** Client bytes sent. */
  bytes: number;
  /** Well-behaved probe sessions, all successful unless a failure says so. */
  probes: number;
  codecCases: number;
  codecBytes: number;
  /** Growth of heap plus Buffer memory after warm-up (after a full GC). */
  heapGrowthMb: number;
  maxRssMb: number;
  seconds: number;
}

/** One failed check, with what reproduces it. */
export interface FuzzFailure {
  what: string;
  protocol?: FuzzProtocol | 'imap';
  /** The session's seed: `npm run fuzz -- --replay <protocol>:<seed>`. */
  seed?: number;
  detail?: string;
}

const SESSION_TIMEOUT_MS = 5000;

/** A client that writes a case's segments and collects everything the server sends. */
export async function drive(
  port: number,
  c: Pick<FuzzCase, 'segments'>,
  greeting: RegExp,
  epilogue: string[],
): Promise<{ received: string; closed: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let received = '';
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (b: Buffer) => {
    received += b.toString('latin1');
    wake?.();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!cond() && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      wake = undefined;
    }
    return cond();
  };
  try {
    await once(socket, 'connect');
    if (!(await until(() => greeting.test(received) || closed, SESSION_TIMEOUT_MS)))
      throw new Error(`no greeting: ${JSON.stringify(received.slice(0, 200))}`);
    for (const seg of c.segments) {
      if (closed || socket.destroyed) break;
      socket.write(seg);
      if (seg.length < 32) await new Promise((r) => setImmediate(r));
    }
    for (const e of epilogue) {
      if (closed) break;
      if (!socket.destroyed) socket.write(e);
      await until(() => closed, SESSION_TIMEOUT_MS / epilogue.length);
    }
    return { received, closed };
  } finally {
    socket.destroy();
  }
}

function count(re: RegExp, text: string): number {
  return text.match(re)?.length ?? 0;
}

/** A POP3 session: the case, then a line end and an empty line (end a SASL continuation) and QUIT. */
async function pop3Session(port: number, c: FuzzCase): Promise<{ errors: number; closed: boolean; received: string }> {
  const r = await drive(port, c, /^\+OK[^\r\n]*\r\n/, ['\r\n\r\nQUIT\r\n', 'QUIT\r\n']);
  return { ...r, errors: count(/(?:^|\r\n)-ERR/g, r.received) };
}

/** An SMTP session: the case, then the end of a DATA body and QUIT (twice, past an AUTH continuation). */
async function smtpSession(port: number, c: FuzzCase): Promise<{ errors: number; closed: boolean; received: string }> {
  const r = await drive(port, c, /^220 [^\r\n]*\r\n/, ['\r\n.\r\nQUIT\r\n', 'QUIT\r\n']);
  return { ...r, errors: count(/(?:^|\r\n)[45]\d\d[ -]/g, r.received.replace(/^220 [^\r\n]*\r\n/, '')) };
}

/** JS heap plus Buffer memory in use after a full GC, in MB. */
export function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external) / 2 ** 20;
}

/** Log lines at error level or above (an internal error on hostile input is a failure). */
export function captureLog(sink: Array<Record<string, unknown>>) {
  return pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          try {
            sink.push(JSON.parse(line));
          } catch {
            /* not JSON */
          }
        }
        cb();
      },
    }),
  );
}

/** Records uncaught exceptions and unhandled rejections until `stop()`, which reports each as a failure. */
export function watchCrashes(): { stop(fail: (f: FuzzFailure) => void): Promise<void> } {
  const crashes: unknown[] = [];
  const onCrash = (err: unknown): void => void crashes.push(err);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  return {
    async stop(fail) {
      await new Promise((r) => setTimeout(r, 50)); // late rejections of closed sessions
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      for (const err of crashes)
        fail({
          what: 'crash (uncaught exception or unhandled rejection)',
          detail: (err as Error)?.stack ?? String(err),
        });
    },
  };
}

/** A session seed derived from the run's seed and the session number. */
export function sessionSeed(seed: number, n: number): number {
  return new Rng((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0).next();
}

/** A well-behaved POP3 session as bob: STAT, RETR 1, QUIT. */
async function pop3Probe(port: number): Promise<void> {
  const c = await pop3Authenticated(port, 'bob', 'bobpw');
  try {
    const stat = await c.ask('STAT');
    if (!/^\+OK [1-9]/.test(stat)) throw new Error(`STAT: ${stat}`);
    const retr = await c.ask('RETR 1');
    if (!retr.startsWith('+OK')) throw new Error(`RETR: ${retr}`);
    await c.body();
    const quit = await c.ask('QUIT');
    if (!quit.startsWith('+OK')) throw new Error(`QUIT: ${quit}`);
  } finally {
    c.close();
  }
}

/** A well-behaved SMTP submission as bob: 250 after DATA. */
async function smtpProbe(port: number, n: number): Promise<void> {
  const d = await smtpAuthenticated(port, 'bob', 'bobpw-local');
  try {
    await d.cmd('MAIL FROM:<bob@example.test>');
    await d.cmd('RCPT TO:<carol@example.test>');
    const data = await d.cmd('DATA');
    if (!data[0]!.startsWith('354')) throw new Error(`DATA: ${data.join(' ')}`);
    const r = await d.send(`Subject: probe ${n}\r\nMessage-ID: <probe-${n}-${Date.now()}@fuzz>\r\n\r\nprobe\r\n.\r\n`);
    if (!r[0]!.startsWith('250')) throw new Error(`end of DATA: ${r.join(' ')}`);
    await d.cmd('QUIT');
  } finally {
    d.close();
  }
}

/** Runs the listeners' fuzzing and the codec properties; never throws for a finding. */
export async function runFuzz(o: FuzzRunOptions): Promise<{ stats: FuzzStats; failures: FuzzFailure[] }> {
  const protocols = o.protocols ?? ['pop3', 'smtp'];
  const failures: FuzzFailure[] = [];
  const fail = (f: FuzzFailure): void => {
    if (failures.length < 50) failures.push(f);
  };
  const t0 = Date.now();
  const stats: FuzzStats = {
    sessions: 0,
    pop3: 0,
    smtp: 0,
    badSessions: 0,
    protocolErrors: 0,
    bytes: 0,
    probes: 0,
    codecCases: 0,
    codecBytes: 0,
    heapGrowthMb: 0,
    maxRssMb: 0,
    seconds: 0,
  };
  const crashWatch = watchCrashes();

  const logged: Array<Record<string, unknown>> = [];
  const log = captureLog(logged);
  let pop3: Pop3Fixture | undefined;
  let smtp: SmtpFixture | undefined;
  try {
    // Codec first: pure and quick.
    const codec = fuzzCodec(new Rng(o.seed), o.codecCases ?? 2000);
    stats.codecCases = codec.cases;
    stats.codecBytes = codec.bytes;
    failures.push(...codec.failures);

    const samples = [1, 2, 3, 4, 5].map((i) => sampleMessage(i));
    pop3 = await startPop3({ messages: samples, server: { log } });
    await pop3.add(samples, 'bob');
    smtp = await startSmtp({ log });
    const seeds = { pop3: corpus('pop3'), smtp: corpus('smtp') };
    const deadline = o.seconds !== undefined ? t0 + o.seconds * 1000 : Infinity;
    const limit = o.sessions ?? Infinity;
    const probeEvery = o.probeEvery ?? 250;
    let next = 0;
    let nextProbe = probeEvery;
    let warmHeap: number | undefined;
    const inflight = new Set<string>();
    const probe = async (): Promise<void> => {
      stats.probes++;
      if (protocols.includes('pop3'))
        await pop3Probe(pop3!.port).catch((err: Error) =>
          fail({ what: 'a well-behaved POP3 session failed', detail: err.message }),
        );
      if (protocols.includes('smtp'))
        await smtpProbe(smtp!.port, stats.probes).catch((err: Error) =>
          fail({ what: 'a well-behaved SMTP session failed', detail: err.message }),
        );
    };
    const worker = async (): Promise<void> => {
      while (next < limit && Date.now() < deadline && failures.length < 50) {
        const n = next++;
        const protocol = protocols[n % protocols.length]!;
        const seed = sessionSeed(o.seed, n);
        const c = generateCase(protocol, seed, protocol === 'pop3' ? POP3_MAX_LINE : SMTP_MAX_LINE, seeds[protocol]);
        const tag = `${protocol}:${seed}`;
        inflight.add(tag);
        try {
          const r = protocol === 'pop3' ? await pop3Session(pop3!.port, c) : await smtpSession(smtp!.port, c);
          stats.protocolErrors += r.errors;
          if (c.expectError) {
            stats.badSessions++;
            if (r.errors === 0)
              fail({ what: 'a bad session got no protocol error', protocol, seed, detail: tail(r.received) });
          }
          if (!r.closed)
            fail({ what: 'the server neither answered QUIT nor closed', protocol, seed, detail: tail(r.received) });
        } catch (err) {
          fail({ what: 'session failed on the client side', protocol, seed, detail: (err as Error).message });
        } finally {
          inflight.delete(tag);
        }
        stats.sessions++;
        stats[protocol]++;
        stats.bytes += c.bytes.length;
        const bad = logged.splice(0).filter((l) => Number(l.level) >= 50 || /Failed to process/.test(String(l.msg)));
        for (const l of bad)
          fail({
            what: `internal error logged: ${String(l.msg)}`,
            detail: `${JSON.stringify(l).slice(0, 400)}; in flight: ${[...inflight, tag].join(' ')}`,
          });
        if (stats.sessions >= nextProbe) {
          nextProbe += probeEvery;
          await probe();
          if ((await pop3!.cache.account('alice').index('INBOX')).length < 3) await pop3!.add(samples, 'alice');
          const rss = process.memoryUsage().rss / 2 ** 20;
          stats.maxRssMb = Math.max(stats.maxRssMb, rss);
          if (warmHeap === undefined) warmHeap = heapAfterGc();
          o.onProgress?.({ ...stats, seconds: (Date.now() - t0) / 1000 });
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency ?? 16 }, () => worker()));
    await probe();
    // Every session must be gone (the client closed each one).
    const end = Date.now() + 3000;
    while ((pop3.server.sessionCount > 0 || smtp.listener.connectionCount > 0) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    if (pop3.server.sessionCount > 0)
      fail({ what: `${pop3.server.sessionCount} POP3 sessions still open after the run` });
    if (smtp.listener.connectionCount > 0)
      fail({ what: `${smtp.listener.connectionCount} SMTP connections still open after the run` });
    stats.heapGrowthMb = warmHeap === undefined ? 0 : Math.max(0, heapAfterGc() - warmHeap);
    stats.maxRssMb = Math.max(stats.maxRssMb, process.memoryUsage().rss / 2 ** 20);
    if (stats.heapGrowthMb > (o.maxHeapGrowthMb ?? 48))
      fail({ what: `heap grew by ${stats.heapGrowthMb.toFixed(1)} MB after warm-up` });
  } finally {
    await pop3?.close();
    await smtp?.close();
    await crashWatch.stop(fail);
  }
  stats.seconds = (Date.now() - t0) / 1000;
  return { stats, failures };
}

/** Replays one session (`protocol:seed`) with the server's log on stderr; returns what was received. */
export async function replay(protocol: FuzzProtocol, seed: number): Promise<{ c: FuzzCase; received: string }> {
  const log = pino({ level: 'trace' }, process.stderr);
  const c = generateCase(protocol, seed, protocol === 'pop3' ? POP3_MAX_LINE : SMTP_MAX_LINE);
  if (protocol === 'pop3') {
    const fx = await startPop3({ messages: [1, 2, 3].map((i) => sampleMessage(i)), server: { log } });
    try {
      return { c, received: (await pop3Session(fx.port, c)).received };
    } finally {
      await fx.close();
    }
  }
  const fx = await startSmtp({ log });
  try {
    return { c, received: (await smtpSession(fx.port, c)).received };
  } finally {
    await fx.close();
  }
}

function tail(s: string): string {
  return JSON.stringify(s.slice(-300));
}

// ---------------------------------------------------------------------------------------------
// The codec

/** Random bytes biased towards what matters to framing: LF, CR, dots, NUL, 8-bit. */
function framingBytes(rng: Rng, n: number): Buffer {
  const alphabet = [0x0a, 0x0d, 0x2e, 0x2e, 0x00, 0xff, 0x61, 0x62, 0x20, 0x0d, 0x0a];
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.chance(0.7) ? rng.pick(alphabet) : rng.int(256);
  return b;
}

/** The reference line splitter: lines (CR before LF dropped) or 'LONG' for over-long ones. */
function referenceLines(input: Buffer, max: number): Array<string | 'LONG'> {
  const out: Array<string | 'LONG'> = [];
  let start = 0;
  for (let lf = input.indexOf(0x0a); lf >= 0; lf = input.indexOf(0x0a, start)) {
    let line = input.subarray(start, lf);
    if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    out.push(line.length > max ? 'LONG' : line.toString('latin1'));
    start = lf + 1;
  }
  if (input.length - start > max + 1) out.push('LONG');
  return out;
}

/** CRLF-normalised form of a stored message, as POP3 carries it. */
function crlfForm(m: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 0x0a && (i === 0 || m[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(m[i]!);
  }
  if (m.length && m[m.length - 1] !== 0x0a) out.push(0x0d, 0x0a);
  return Buffer.from(out);
}

function headerEnd(m: Buffer): number {
  for (let i = 0; i < m.length; i++) {
    const lineStart = i === 0 || m[i - 1] === 0x0a;
    if (!lineStart) continue;
    if (m[i] === 0x0a) return i + 1;
    if (m[i] === 0x0d && m[i + 1] === 0x0a) return i + 2;
  }
  return -1;
}

/** Property checks of the POP3 wire codec; returns the failures (with the case's seed). */
export function fuzzCodec(rng: Rng, cases: number): { cases: number; bytes: number; failures: FuzzFailure[] } {
  const failures: FuzzFailure[] = [];
  let bytes = 0;
  for (let n = 0; n < cases && failures.length < 20; n++) {
    const seed = rng.next();
    const r = new Rng(seed);
    const check = (ok: boolean, what: string, detail?: string): void => {
      if (!ok) failures.push({ what: `codec: ${what}`, seed, detail });
    };
    const input = framingBytes(r, r.range(0, r.chance(0.1) ? 20_000 : 600));
    bytes += input.length;
    try {
      // LineReader against the reference splitter, whatever the segmentation.
      const max = r.range(1, 80);
      const reader = new LineReader(max);
      const got: Array<string | 'LONG'> = [];
      for (const seg of segment(r, input)) {
        reader.push(seg);
        for (;;) {
          try {
            const line = reader.readLine();
            if (line === null) break;
            got.push(line.toString('latin1'));
          } catch (err) {
            if (!(err instanceof LineTooLongError)) throw err;
            got.push('LONG');
          }
        }
      }
      const want = referenceLines(input, max);
      check(
        JSON.stringify(got) === JSON.stringify(want),
        'LineReader disagrees with the reference',
        `max ${max}: got ${JSON.stringify(got).slice(0, 200)} want ${JSON.stringify(want).slice(0, 200)}`,
      );
      check(
        reader.buffered <= max + 2 || want.at(-1) === 'LONG',
        'LineReader holds more than one line',
        String(reader.buffered),
      );

      // DotStuffer → DotUnstuffer round trip, with trailing pipelined bytes.
      const nulFree = r.chance(0.3);
      const stuffer = new DotStuffer({ replaceNul: nulFree });
      const wireParts = segment(r, input).map((s) => stuffer.push(s));
      const wire = Buffer.concat([...wireParts, stuffer.end()]);
      const expected = crlfForm(input);
      const expectedBytes = nulFree ? Buffer.from(expected.map((b) => (b === 0 ? 0x80 : b))) : expected;
      check(
        /(^|\r\n)\.\r\n$/.test(wire.subarray(-5).toString('latin1')) || wire.equals(Buffer.from('.\r\n')),
        'stuffed body does not end with the terminator',
      );
      check(!/(^|[^\r])\n/.test(wire.toString('latin1')), 'stuffed body has a bare LF');
      if (nulFree) check(!wire.includes(0), 'NUL left in the body despite replaceNul');
      const trailer = framingBytes(r, r.range(0, 20));
      const unstuffer = new DotUnstuffer();
      const out: Buffer[] = [];
      const rest: Buffer[] = [];
      for (const seg of segment(r, Buffer.concat([wire, trailer]))) {
        const u = unstuffer.push(seg);
        out.push(u.data);
        rest.push(u.rest);
      }
      check(unstuffer.done, 'unstuffer did not see the terminator');
      check(
        Buffer.concat(out).equals(expectedBytes),
        'round trip changed the message',
        `in ${input.length} out ${Buffer.concat(out).length} want ${expectedBytes.length}`,
      );
      check(Buffer.concat(rest).equals(trailer), 'bytes after the terminator were lost or altered');

      // The sizer equals the CRLF form's length (LIST and W=).
      const sizer = new CrlfSizer();
      for (const seg of segment(r, input)) sizer.update(seg);
      check(
        sizer.size === expected.length,
        'CrlfSizer disagrees with the CRLF form',
        `${sizer.size} vs ${expected.length}`,
      );

      // The header end, whatever the segmentation.
      const finder = new HeaderEndFinder();
      for (const seg of segment(r, input)) finder.update(seg);
      check(
        finder.end === headerEnd(input),
        'HeaderEndFinder disagrees with the reference',
        `${finder.end} vs ${headerEnd(input)}`,
      );

      // Arbitrary bytes as a multi-line body: two segmentations, one result; never a throw.
      const a = new DotUnstuffer();
      const b = new DotUnstuffer();
      const ra = segment(r, input).map((s) => a.push(s));
      const rb = segment(r, input).map((s) => b.push(s));
      const join = (rs: typeof ra) =>
        Buffer.concat(rs.flatMap((x) => [x.data, Buffer.from('|'), x.rest]))
          .toString('latin1')
          .replace(/\|/g, '');
      check(a.done === b.done && join(ra) === join(rb), 'unstuffing depends on the segmentation');

      // Status lines: parsing never throws; a formatted line parses back to its kind.
      parseStatusLine(input.subarray(0, 200));
      const text = input
        .subarray(0, 60)
        .toString('latin1')
        .replace(/[\r\n]/g, '');
      check(
        parseStatusLine(formatStatusLine(true, text).trimEnd())?.kind === 'ok',
        'a formatted +OK line does not parse back',
      );
    } catch (err) {
      check(false, 'threw', (err as Error).stack);
    }
  }
  return { cases, bytes, failures };
}
