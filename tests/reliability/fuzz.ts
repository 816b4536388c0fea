/**
 * A seeded generator of hostile command streams for the local listeners.
 *
 * - `Rng` is a small deterministic PRNG (mulberry32): one seed reproduces a whole run, and each
 *   session gets its own derived seed, printed with any failure, so `npm run fuzz -- --seed N`
 *   replays it.
 * - Streams are either mutations of real client transcripts (what fetchmail, curl, Python's
 *   poplib/smtplib, nodemailer and Outlook send, as captured on the wire, plus the POP3 transcript
 *   fixtures) or random sequences of verbs, arguments and garbage. Mutations work on lines
 *   (drop, duplicate, swap, insert, case, whitespace, control bytes, over-long lines, odd
 *   numbers) and then on bytes (bit flips, truncation); every stream is cut into random TCP
 *   segments, 1-byte ones included.
 * - `expectsError()` is the oracle's model: a stream holding a line that no state of the
 *   protocol accepts (an unknown verb, an over-long line) before the client's QUIT — and, for
 *   SMTP, before any DATA or AUTH, whose continuations the model does not follow — must draw
 *   at least one protocol error from the server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/localpost.js';

/** Deterministic PRNG (mulberry32); 32-bit state, good enough for test generation. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A uint32. */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** In [0, 1). */
  float(): number {
    return this.next() / 2 ** 32;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** The protocols the generator knows. */
export type FuzzProtocol = 'pop3' | 'smtp';

/** One generated session. */
export interface FuzzCase {
  protocol: FuzzProtocol;
  /** The session's own seed (replays this case alone). */
  seed: number;
  kind: 'mutated' | 'random';
  /** The whole client stream. */
  bytes: Buffer;
  /** `bytes` cut into TCP writes. */
  segments: Buffer[];
  /** The model says the server must answer at least one protocol error. */
  expectError: boolean;
}

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

/** Credentials the POP3 fuzz target accepts (account alice of the fixture). */
export const POP3_LOGIN = { user: 'alice', pass: 'localpw' };
/** Credentials the SMTP fuzz target accepts (account alice of the fixture). */
export const SMTP_LOGIN = { user: 'alice', pass: 'alicepw-local' };

/** What real POP3 clients send (as captured on the wire), as line lists. */
function pop3Clients(): string[][] {
  const { user, pass } = POP3_LOGIN;
  const plain = b64(`\0${user}\0${pass}`);
  return [
    // fetchmail, keep mode, then without keep (TOP n 99999999 + DELE)
    ['CAPA', `USER ${user}`, `PASS ${pass}`, 'STAT', 'LAST', 'UIDL', 'LIST 1', 'RETR 1', 'LIST 2', 'RETR 2', 'QUIT'],
    ['CAPA', `USER ${user}`, `PASS ${pass}`, 'STAT', 'LAST', 'UIDL', 'LIST 1', 'TOP 1 99999999', 'DELE 1', 'QUIT'],
    // curl: AUTH PLAIN as a continuation, one command per session
    ['CAPA', 'AUTH PLAIN', plain, 'LIST', 'QUIT'],
    ['CAPA', 'AUTH PLAIN', plain, 'RETR 1', 'RETR 2', 'QUIT'],
    // Python poplib as the testbed drives it
    [
      'CAPA',
      `USER ${user}`,
      `PASS ${pass}`,
      'STAT',
      'LIST',
      'UIDL',
      'TOP 1 0',
      'RETR 1',
      'RETR 2',
      'DELE 1',
      'RSET',
      'QUIT',
    ],
    // Outlook: bare AUTH probe, NTLM refused, USER/PASS, full UIDL and LIST
    ['AUTH', 'AUTH NTLM', `USER ${user}`, `PASS ${pass}`, 'STAT', 'UIDL', 'LIST', 'RETR 1', 'QUIT'],
    // Thunderbird: AUTH PLAIN with an initial response
    ['CAPA', `AUTH PLAIN ${plain}`, 'STAT', 'LIST', 'UIDL', 'RETR 3', 'NOOP', 'QUIT'],
    ['STLS', 'CAPA', `USER ${user}`, `PASS ${pass}`, 'UIDL 1', 'LIST 9', 'RETR 0', 'TOP 2 3', 'QUIT'],
  ];
}

/** Client lines of the POP3 transcript fixtures (`C:`/`P:` lines, `<x*N>` expanded). */
function pop3Transcripts(): string[][] {
  const dir = path.join(ROOT, 'tests/fixtures/transcripts/pop3');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) =>
      readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .map((l) => /^1?[CP]: ?(.*)$/.exec(l.replace(/\r$/, ''))?.[1])
        .filter((l): l is string => l !== undefined)
        .map((l) => l.replace(/<(.)\*(\d+)>/g, (_, c: string, n: string) => c.repeat(Number(n)))),
    );
}

/** What real SMTP submission clients send (as captured on the wire). */
function smtpClients(): string[][] {
  const { user, pass } = SMTP_LOGIN;
  const plain = b64(`\0${user}\0${pass}`);
  const body = [
    'From: alice@example.test',
    'To: bob@example.test',
    'Subject: fuzz',
    'Message-ID: <fuzz@x>',
    '',
    'Hello.',
    '..leading dot',
    '',
  ];
  return [
    // Python smtplib: lower-case verbs and parameters, AUTH PLAIN with an initial response
    [
      'ehlo client.example',
      `AUTH PLAIN ${plain}`,
      'mail FROM:<alice@example.test> size=120',
      'rcpt TO:<bob@example.test>',
      'data',
      ...body,
      '.',
      'quit',
    ],
    // smtplib AUTH LOGIN without an initial response
    [
      'ehlo client.example',
      'AUTH LOGIN',
      b64(user),
      b64(pass),
      'mail FROM:<alice@example.test>',
      'rcpt TO:<bob@example.test>',
      'data',
      ...body,
      '.',
      'quit',
    ],
    // curl: AUTH PLAIN as a continuation, SIZE=
    [
      'EHLO x',
      'AUTH PLAIN',
      plain,
      'MAIL FROM:<alice@example.test> SIZE=200',
      'RCPT TO:<bob@example.test>',
      'DATA',
      ...body,
      '.',
      'QUIT',
    ],
    // nodemailer: address literal, 8BITMIME, two recipients
    [
      'EHLO [127.0.0.1]',
      `AUTH PLAIN ${plain}`,
      'MAIL FROM:<alice@example.test> BODY=8BITMIME SIZE=300',
      'RCPT TO:<bob@example.test>',
      'RCPT TO:<carol@example.test>',
      'DATA',
      ...body,
      '.',
      'QUIT',
    ],
    // Outlook Express: HELO, AUTH LOGIN with the user name as initial response, RSET, NOOP
    [
      'HELO',
      `AUTH LOGIN ${b64(user)}`,
      b64(pass),
      'RSET',
      'NOOP',
      'MAIL FROM: <alice@example.test>',
      'RCPT TO: <bob@example.test>',
      'DATA',
      ...body,
      '.',
      'QUIT',
    ],
    // probes: VRFY, HELP, STARTTLS (disabled), AUTH NTLM (504), a second EHLO after AUTH
    [
      'EHLO',
      'HELP',
      'VRFY bob',
      'STARTTLS',
      'AUTH NTLM',
      `AUTH PLAIN ${plain}`,
      'EHLO again',
      'MAIL FROM:<>',
      'RCPT TO:<x@y>',
      'RSET',
      'QUIT',
    ],
  ];
}

const POP3_VERBS = [
  'CAPA',
  'QUIT',
  'USER',
  'PASS',
  'AUTH',
  'STLS',
  'STAT',
  'LIST',
  'UIDL',
  'RETR',
  'TOP',
  'DELE',
  'RSET',
  'NOOP',
  'LAST',
];
const SMTP_VERBS = ['EHLO', 'HELO', 'QUIT', 'NOOP', 'RSET', 'HELP', 'VRFY', 'MAIL', 'RCPT', 'DATA', 'AUTH'];
/** Verbs that smtp-server (as configured) answers with an error whatever the state. */
const SMTP_REFUSED = [
  'STARTTLS',
  'BDAT',
  'EXPN',
  'ETRN',
  'TURN',
  'XCLIENT',
  'XFORWARD',
  'LHLO',
  'SHELL',
  'KILL',
  'APOP',
  'GET',
];

const ODD_ARGS = [
  '0',
  '1',
  '2',
  '3',
  '-1',
  '99999999',
  '18446744073709551617',
  '1e3',
  '0x1',
  '٣',
  '',
  ' ',
  '1 2 3',
  '*',
  '=',
  '<>',
  '<a@b>',
  'FROM:<a@b>',
  'TO:<b@c>',
  'FROM:<a@b> SIZE=99999999999',
  'PLAIN',
  'LOGIN',
  'NTLM',
  'XOAUTH2',
  '%s%n',
  '\u2028',
  'AGFsaWNlAGxvY2FscHc=',
  b64('\0alice\0wrong'),
  b64('alice'),
  '====',
  'ÿÿ',
  'a'.repeat(300),
];

/** Bytes that make parsers stumble. */
const NASTY = ['\0', '\r', '\t', '\x0b', '\x1b[2J', '\u2028', '\u00ff', '\ufffd', '.', '..', ' ', '\x7f', '%', '\\'];

/** A line that no state accepts (`bad`), or something plausible. */
function randomLine(rng: Rng, protocol: FuzzProtocol, bad: boolean): string {
  const verbs = protocol === 'pop3' ? POP3_VERBS : SMTP_VERBS;
  if (bad) {
    // an unknown verb: letters that spell no command, or raw garbage that starts with a byte no verb has
    const r = rng.int(3);
    if (r === 0) return `X${rng.bytes(rng.range(1, 8)).toString('hex').toUpperCase()} ${rng.pick(ODD_ARGS)}`;
    if (r === 1) return rng.pick(['~', '#', '!', '@', '{', '1', '\x01']) + garbage(rng, rng.range(0, 60));
    return rng.pick(
      protocol === 'pop3' ? ['APOP a b', 'XTND XMIT', 'EHLO x', 'HELO', 'MAIL FROM:<a@b>'] : SMTP_REFUSED,
    );
  }
  const verb = rng.pick(verbs);
  const n = rng.int(3);
  const args = Array.from({ length: n }, () => rng.pick(ODD_ARGS));
  return [verb, ...args].join(' ');
}

/** Random bytes without LF (latin1 text). */
function garbage(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const b = rng.int(256);
    s += b === 0x0a ? ' ' : String.fromCharCode(b);
  }
  return s;
}

/** Applies 1–4 line mutations. */
function mutateLines(rng: Rng, protocol: FuzzProtocol, input: string[], maxLine: number): string[] {
  const lines = [...input];
  const ops = rng.range(1, 4);
  for (let k = 0; k < ops; k++) {
    const i = rng.int(Math.max(1, lines.length));
    switch (rng.int(13)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[i] ?? '');
        break;
      case 2: {
        const j = rng.int(lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        break;
      }
      case 3:
        lines.splice(i, 0, randomLine(rng, protocol, false));
        break;
      case 4:
        lines.splice(i, 0, randomLine(rng, protocol, true));
        break;
      case 5:
        lines[i] = flipCase(rng, lines[i] ?? '');
        break;
      case 6:
        lines[i] = rng.pick([' ', '\t', '  ', ' \t ']) + (lines[i] ?? '') + rng.pick(['', ' ', '\t', '   ']);
        break;
      case 7:
        lines[i] = (lines[i] ?? '').slice(0, rng.int((lines[i]?.length ?? 0) + 1));
        break;
      case 8:
        lines.splice(i, 0, 'A'.repeat(rng.pick([maxLine - 1, maxLine, maxLine + 1, maxLine + 2, 20_000, 300_000])));
        break;
      case 9: {
        const l = lines[i] ?? '';
        const at = rng.int(l.length + 1);
        lines[i] = l.slice(0, at) + rng.pick(NASTY) + l.slice(at);
        break;
      }
      case 10:
        lines[i] = `${(lines[i] ?? 'X').split(' ')[0]} ${rng.pick(ODD_ARGS)}`;
        break;
      case 11:
        lines.splice(i, 0, '');
        break;
      default:
        lines.splice(i, 0, garbage(rng, rng.range(1, 200)));
        break;
    }
  }
  return lines;
}

function flipCase(rng: Rng, s: string): string {
  return [...s].map((c) => (rng.chance(0.5) ? c.toLowerCase() : c.toUpperCase())).join('');
}

/** Joins lines with CRLF, sometimes bare LF, and applies byte-level mutations. */
function toBytes(rng: Rng, lines: string[]): Buffer {
  const eol = () => (rng.chance(0.1) ? '\n' : '\r\n');
  let buf = Buffer.from(lines.map((l) => l + eol()).join(''), 'latin1');
  if (rng.chance(0.15) && buf.length) {
    buf = Buffer.from(buf);
    for (let n = rng.range(1, 3); n > 0; n--) {
      const at = rng.int(buf.length);
      buf[at] = (buf[at] ?? 0) ^ (1 << rng.int(8));
    }
  }
  if (rng.chance(0.1)) buf = buf.subarray(0, rng.int(buf.length + 1));
  return buf;
}

/** Cuts a stream into TCP writes: whole, random pieces, or single bytes for short streams. */
export function segment(rng: Rng, buf: Buffer): Buffer[] {
  const mode = rng.int(4);
  if (mode === 0 || buf.length < 2) return [buf];
  if (mode === 1 && buf.length <= 400) return [...buf].map((b) => Buffer.from([b]));
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = Math.min(buf.length - i, rng.range(1, mode === 2 ? 16 : 4096));
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** The client lines of a stream as the server frames them: split at LF, one CR before it dropped. */
function framedLines(bytes: Buffer): string[] {
  const text = bytes.toString('latin1');
  const parts = text.split('\n');
  parts.pop(); // an unterminated tail is not a line yet
  return parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/**
 * The oracle's model: does the stream hold a line that every state refuses, before the
 * client's QUIT (and for SMTP before DATA/AUTH, whose continuations the model does not follow)?
 */
export function expectsError(protocol: FuzzProtocol, bytes: Buffer, maxLine: number): boolean {
  const known = protocol === 'pop3' ? POP3_VERBS : SMTP_VERBS;
  let continuation = false;
  for (const line of framedLines(bytes)) {
    if (line.length > maxLine) return true;
    const trimmed = line.replace(/[ \t]+$/, '');
    const words = trimmed.split(/[ \t]+/);
    const verb = words[0]!.toUpperCase();
    // POP3 `AUTH <mechanism>` without an initial response: the next line is the SASL answer.
    if (continuation) {
      continuation = false;
      continue;
    }
    continuation = protocol === 'pop3' && verb === 'AUTH' && words.length === 2;
    if (verb === 'QUIT') return false;
    if (protocol === 'smtp' && (verb === 'DATA' || verb === 'AUTH')) return false;
    if (trimmed === '' && (protocol === 'pop3' || line === '')) continue;
    if (!known.includes(verb)) return true;
  }
  return false;
}

/** Seeds of mutation: real client sessions of the protocol. */
export function corpus(protocol: FuzzProtocol): string[][] {
  return protocol === 'pop3' ? [...pop3Clients(), ...pop3Transcripts()] : smtpClients();
}

/** One session of the given protocol from its own seed. */
export function generateCase(
  protocol: FuzzProtocol,
  seed: number,
  maxLine: number,
  seeds = corpus(protocol),
): FuzzCase {
  const rng = new Rng(seed);
  let lines: string[];
  let kind: FuzzCase['kind'];
  if (rng.chance(0.75)) {
    kind = 'mutated';
    lines = mutateLines(rng, protocol, rng.pick(seeds), maxLine);
  } else {
    kind = 'random';
    lines = Array.from({ length: rng.range(1, 30) }, () =>
      rng.chance(0.15) ? garbage(rng, rng.range(0, 120)) : randomLine(rng, protocol, rng.chance(0.3)),
    );
  }
  const bytes = toBytes(rng, lines);
  return {
    protocol,
    seed,
    kind,
    bytes,
    segments: segment(rng, bytes),
    expectError: expectsError(protocol, bytes, maxLine),
  };
}
