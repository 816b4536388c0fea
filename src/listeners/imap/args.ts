/**
 * A cursor over a command's tokens and the RFC 3501 §9 pieces every argument parser shares:
 * astring, nstring, numbers, mod-sequence values, flag lists, mailbox names, sequence sets.
 *
 * Invariants:
 * - Cursor methods throw `ArgError`; `parseWith` is the only place that catches it, so every
 *   exported parser returns a `Result` and never throws on client input.
 * - Strings from literals are decoded as UTF-8 (invalid UTF-8 is an error); quoted strings were
 *   already checked by the lexer.
 * - Numbers are `number` (≤ 4294967295); mod-sequence values are `bigint` (RFC 7162: 63 bits).
 */
import type { Token } from './lexer.js';
import { decodeMailboxName } from './mailbox-name.js';
import type { Result } from './result.js';
import { SequenceSet } from './sequence-set.js';

/** Error codes a session turns into a response code rather than a plain BAD. */
export type ArgErrorCode = 'BADCHARSET';

export class ArgError extends Error {
  constructor(
    message: string,
    readonly code?: ArgErrorCode,
  ) {
    super(message);
  }
}

/** Runs a cursor-based parser over `tokens`, requiring it to consume them all. */
export function parseWith<T>(tokens: readonly Token[], parse: (a: Args) => T): Result<T, ArgErrorCode> {
  try {
    const a = new Args(tokens);
    const value = parse(a);
    a.end();
    return { ok: true, value };
  } catch (e) {
    if (!(e instanceof ArgError)) throw e;
    return e.code ? { ok: false, error: e.message, code: e.code } : { ok: false, error: e.message };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const DIGITS = /^\d{1,20}$/;
const FLAG = /^\\?[^\x00-\x20(){%*"\\\]\x7f-\xff]+$/;
const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', '\\Recent'];
const MAX_MODSEQ = (1n << 63n) - 1n;

export class Args {
  private i = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  get done(): boolean {
    return this.i >= this.tokens.length;
  }

  peek(): Token | undefined {
    return this.tokens[this.i];
  }

  /** The upper-cased next atom if there is one, without consuming it. */
  peekAtom(): string | undefined {
    const t = this.tokens[this.i];
    return t?.kind === 'atom' ? t.value.toUpperCase() : undefined;
  }

  next(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw new ArgError(`missing ${what}`);
    return t;
  }

  end(): void {
    if (!this.done) throw new ArgError('too many arguments');
  }

  atom(what = 'argument'): string {
    const t = this.next(what);
    if (t.kind !== 'atom') throw new ArgError(`${what} must be an atom`);
    return t.value;
  }

  /** An atom, upper-cased. */
  keyword(what = 'keyword'): string {
    return this.atom(what).toUpperCase();
  }

  astring(what = 'string'): string {
    const t = this.next(what);
    if (t.kind === 'list') throw new ArgError(`${what} must be a string`);
    // A bracketed atom may hold what only a FETCH section allows (`[Gmail]/Sent` is fine).
    if (t.kind === 'atom' && /[ ()"]/.test(t.value)) throw new ArgError(`invalid ${what}`);
    return t.kind === 'literal' ? decode(t.value) : t.value;
  }

  /** A quoted string or literal (no atom). */
  string(what = 'string'): string {
    const t = this.next(what);
    if (t.kind === 'quoted') return t.value;
    if (t.kind === 'literal') return decode(t.value);
    throw new ArgError(`${what} must be a string`);
  }

  /** NIL or a string. */
  nstring(what = 'string'): string | null {
    const t = this.peek();
    if (t?.kind === 'atom' && t.value.toUpperCase() === 'NIL') {
      this.i++;
      return null;
    }
    return this.string(what);
  }

  number(what = 'number'): number {
    const v = this.atom(what);
    if (!DIGITS.test(v) || Number(v) > 4294967295) throw new ArgError(`invalid ${what}`);
    return Number(v);
  }

  nzNumber(what = 'number'): number {
    const n = this.number(what);
    if (n === 0) throw new ArgError(`${what} must not be 0`);
    return n;
  }

  modseq(what = 'mod-sequence'): bigint {
    const v = this.atom(what);
    if (!DIGITS.test(v) || BigInt(v) > MAX_MODSEQ) throw new ArgError(`invalid ${what}`);
    return BigInt(v);
  }

  /** A parenthesised list as a sub-cursor. */
  list(what = 'list'): Args {
    const t = this.next(what);
    if (t.kind !== 'list') throw new ArgError(`${what} must be a parenthesised list`);
    return new Args(t.items);
  }

  /** Whether a parenthesised list comes next. */
  get atList(): boolean {
    return this.peek()?.kind === 'list';
  }

  /** A mailbox name: astring, modified UTF-7 decoded, INBOX normalised. */
  mailbox(what = 'mailbox name'): string {
    const r = decodeMailboxName(this.astring(what));
    if (!r.ok) throw new ArgError(r.error);
    return r.value;
  }

  sequenceSet(): SequenceSet {
    const r = SequenceSet.parse(this.atom('sequence set'));
    if (!r.ok) throw new ArgError(r.error);
    return r.value;
  }

  /** One flag (`\Seen`, a keyword); system flags in canonical case. */
  flag(): string {
    return checkFlag(this.atom('flag'));
  }

  /** `(flag ...)`, possibly empty. */
  flagList(): string[] {
    const l = this.list('flag list');
    const flags: string[] = [];
    while (!l.done) flags.push(l.flag());
    return flags;
  }
}

function checkFlag(v: string): string {
  if (!FLAG.test(v)) throw new ArgError('invalid flag');
  if (!v.startsWith('\\')) return v;
  const sys = SYSTEM_FLAGS.find((f) => f.toLowerCase() === v.toLowerCase());
  return sys ?? v;
}

function decode(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new ArgError('invalid UTF-8 in string');
  }
}
