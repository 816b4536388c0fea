/**
 * Logging: JSON format, redaction of credentials at every level and depth, and masking of
 * AUTH/PASS payloads in protocol transcript lines.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { check, createLogger, redactString } from '../../src/shared/log.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** A destination stream that keeps every line written to it. */
function capture(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

/** Objects shaped like what the daemon logs, each carrying a distinct secret value. */
function secretPayloads(tag: string): Array<[Record<string, unknown>, string[]]> {
  const s = (n: string) => `SECRET-${tag}-${n}`;
  return [
    [{ password: s('a'), pass: s('b'), token: s('c') }, [s('a'), s('b'), s('c')]],
    [{ auth: { user: 'me', pass: s('d'), accessToken: s('e') } }, [s('d'), s('e')]],
    [{ upstream: { auth: { password: s('f'), refreshToken: s('g') } } }, [s('f'), s('g')]],
    [{ headers: { authorization: s('h'), Authorization: s('i') }, secret: s('j') }, [s('h'), s('i'), s('j')]],
    [
      { accounts: [{ login: { password: s('k') }, incoming: { password: s('l') }, outgoing: { password: s('m') } }] },
      [s('k'), s('l'), s('m')],
    ],
    [{ config: { accounts: [{ incoming: { password: s('n') } }] } }, [s('n')]],
  ];
}

describe('createLogger', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'localpost-log-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes JSON lines with a level label, ISO time and no pid/hostname', () => {
    const out = capture();
    createLogger({ level: 'info', destination: out.stream }).child({ component: 'pop3' }).info({ n: 1 }, 'hello');
    const [line] = out.lines();
    const rec = JSON.parse(line!);
    assert.equal(rec.level, 'info');
    assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(rec.component, 'pop3');
    assert.equal(rec.msg, 'hello');
    assert.equal('pid' in rec || 'hostname' in rec, false);
  });

  it('never writes a secret, at any level and in child loggers', () => {
    const out = capture();
    const log = createLogger({ level: 'trace', destination: out.stream });
    const child = log.child({ component: 'smtp', cid: 'c1' });
    const all: string[] = [];
    for (const level of LEVELS) {
      for (const [obj, secrets] of [...secretPayloads(level), ...secretPayloads(`${level}-child`)]) {
        all.push(...secrets);
        log[level](obj, 'logged at %s', level);
      }
      for (const [obj, secrets] of secretPayloads(`${level}-c`)) {
        all.push(...secrets);
        child[level](obj, 'child');
      }
    }
    const text = out.lines().join('\n');
    assert.equal(out.lines().length, LEVELS.length * 18);
    for (const secret of all) assert.ok(!text.includes(secret), `leaked ${secret}`);
    assert.ok(text.includes('[redacted]'));
    const rec = JSON.parse(out.lines()[1]!);
    assert.deepEqual(rec.auth, { user: 'me', pass: '[redacted]', accessToken: '[redacted]' });
  });

  it('writes to a file path destination, redacted', async () => {
    const file = join(dir, 'sub', 'log.jsonl');
    const log = createLogger({ level: 'trace', destination: file });
    for (const level of LEVELS) log[level]({ user: { password: `pw-${level}` } }, 'x');
    log.flush();
    const text = await readFile(file, 'utf8');
    assert.equal(text.trim().split('\n').length, LEVELS.length);
    assert.ok(!text.includes('pw-'));
  });

  it('respects the level', () => {
    const out = capture();
    const log = createLogger({ level: 'warn', destination: out.stream });
    log.info('no');
    log.warn('yes');
    assert.deepEqual(
      out.lines().map((l) => JSON.parse(l).msg),
      ['yes'],
    );
  });

  it('pretty output is human lines and still redacted', async () => {
    const file = join(dir, 'pretty.log');
    const log = createLogger({ level: 'trace', pretty: true, destination: file });
    log.trace({ auth: { pass: 'pretty-secret' } }, 'pretty hello');
    log.flush();
    const text = await readFile(file, 'utf8');
    assert.match(text, /TRACE.*pretty hello/);
    assert.ok(!text.includes('pretty-secret'));
    assert.ok(!text.trimStart().startsWith('{'));
  });

  it('check() logs an error and ignores a non-error', () => {
    const out = capture();
    const log = createLogger({ level: 'info', destination: out.stream });
    check(log, undefined, 'nothing');
    check(log, new Error('close failed'), 'closing the store');
    const lines = out.lines().map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].msg, 'closing the store');
    assert.equal(lines[0].err.message, 'close failed');
  });
});

describe('redactString', () => {
  const cases: Array<[string, string]> = [
    ['PASS hunter2', 'PASS [redacted]'],
    ['pass hunter2 with spaces', 'pass [redacted]'],
    ['C: PASS hunter2', 'C: PASS [redacted]'],
    ['AUTH PLAIN AGJvYgBodW50ZXIy', 'AUTH PLAIN [redacted]'],
    ['AUTH LOGIN Ym9i', 'AUTH LOGIN [redacted]'],
    ['AUTH XOAUTH2 dXNlcj1ib2IBYXV0aD1CZWFyZXIgeHl6AQE=', 'AUTH XOAUTH2 [redacted]'],
    ['a1 AUTHENTICATE PLAIN AGJvYgBodW50ZXIy', 'a1 AUTHENTICATE PLAIN [redacted]'],
    ['a1 LOGIN bob hunter2', 'a1 LOGIN bob [redacted]'],
    ['a1 LOGIN "bob smith" "hunter 2"', 'a1 LOGIN "bob smith" [redacted]'],
    ['APOP mrose c4c9334bac560ecc979e58001b3e22fb', 'APOP mrose [redacted]'],
    // Nothing secret: left alone.
    ['AUTH LOGIN', 'AUTH LOGIN'],
    ['AUTH PLAIN', 'AUTH PLAIN'],
    ['USER bob', 'USER bob'],
    ['250-AUTH PLAIN LOGIN', '250-AUTH PLAIN LOGIN'],
    ['+OK maildrop has 2 messages', '+OK maildrop has 2 messages'],
    ['RETR 1', 'RETR 1'],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => assert.equal(redactString(input), expected));
  }
});
