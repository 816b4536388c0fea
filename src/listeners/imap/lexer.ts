/**
 * IMAP command tokens (RFC 3501 §9): the value model and the lexer that turns one line fragment
 * (the bytes between the start of a line or the end of a literal and the next CRLF) into tokens.
 *
 * Invariants:
 * - A quoted string never spans lines, so each fragment is lexed on its own; only the list
 *   stack and "a separator is due" carry over a literal.
 * - Literal bytes are Buffers, never decoded. Atoms are 7-bit (8-bit or a control byte in an
 *   atom is an error); quoted strings reject CR, LF and NUL but accept valid UTF-8.
 * - A FETCH section atom such as `BODY[HEADER.FIELDS (From To)]<0.100>` is one atom: from `[`
 *   to the matching `]` spaces, parentheses and quoted strings are kept verbatim.
 * - Work and memory are bounded: nesting depth and token count are capped by the caller's limits,
 *   each byte is looked at a constant number of times.
 */

/** One argument of a command. */
export type Token =
  | { readonly kind: 'atom'; readonly value: string }
  | { readonly kind: 'quoted'; readonly value: string }
  | { readonly kind: 'literal'; readonly value: Buffer }
  | { readonly kind: 'list'; readonly items: Token[] };

/** What the end of a fragment means. */
export type FragmentEnd =
  | { readonly kind: 'end' }
  | { readonly kind: 'literal'; readonly size: number; readonly sync: boolean }
  | { readonly kind: 'error'; readonly error: string };

const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const BACKSLASH = 0x5c;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LT = 0x3c;
const GT = 0x3e;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `{n}` or `{n+}` closing a fragment; more than 20 digits is not a literal at all. */
const LITERAL_MARKER = /\{(\d{1,20})(\+?)\}$/;
const LITERAL_ONLY = /^\{(\d{1,20})(\+?)\}$/;

/** The literal announced at the end of a line, if any (used when the line itself is discarded). */
export function trailingLiteral(tail: string): { size: number; sync: boolean } | undefined {
  const m = LITERAL_MARKER.exec(tail);
  return m ? { size: Number(m[1]), sync: m[2] !== '+' } : undefined;
}

class LexError extends Error {}

/** Accumulates the tokens of one command across its fragments. */
export class CommandLexer {
  /** Top-level tokens (tag and command name included). */
  readonly root: Token[] = [];
  private readonly stack: Token[][] = [this.root];
  private tokens = 0;
  private needSep = false;

  constructor(
    private readonly maxDepth: number,
    private readonly maxTokens: number,
  ) {}

  /** True when every parenthesis opened has been closed. */
  get balanced(): boolean {
    return this.stack.length === 1;
  }

  /** Appends literal bytes announced by the previous fragment as one token; returns an error text. */
  addLiteral(bytes: Buffer): string | undefined {
    if (this.tokens >= this.maxTokens) return 'too many arguments';
    this.push({ kind: 'literal', value: bytes });
    this.needSep = true;
    return undefined;
  }

  /** Lexes one fragment; never throws. */
  lex(buf: Buffer): FragmentEnd {
    try {
      return this.lexOrThrow(buf);
    } catch (e) {
      if (e instanceof LexError) return { kind: 'error', error: e.message };
      throw e;
    }
  }

  private lexOrThrow(buf: Buffer): FragmentEnd {
    const end = buf.length;
    let i = 0;
    while (i < end) {
      const c = buf[i] as number;
      if (c === SP) {
        this.needSep = false;
        i++;
        continue;
      }
      if (this.needSep && c !== RPAREN) throw new LexError('expected a space between arguments');
      if (c === LPAREN) {
        if (this.stack.length > this.maxDepth) throw new LexError('lists nested too deeply');
        const list: Token = { kind: 'list', items: [] };
        this.push(list);
        this.stack.push(list.items);
        i++;
      } else if (c === RPAREN) {
        if (this.stack.length === 1) throw new LexError('unbalanced parenthesis');
        this.stack.pop();
        this.needSep = true;
        i++;
      } else if (c === DQUOTE) {
        i = this.quoted(buf, i + 1);
        this.needSep = true;
      } else if (c === LBRACE) {
        const m = end - i <= 24 ? LITERAL_ONLY.exec(buf.toString('latin1', i, end)) : null;
        if (!m) throw new LexError('invalid literal');
        return { kind: 'literal', size: Number(m[1]), sync: m[2] !== '+' };
      } else {
        i = this.atom(buf, i);
        this.needSep = true;
      }
    }
    return { kind: 'end' };
  }

  private push(t: Token): void {
    if (++this.tokens > this.maxTokens) throw new LexError('too many arguments');
    (this.stack[this.stack.length - 1] as Token[]).push(t);
  }

  /** Reads a quoted string whose opening quote is before `start`; returns the index after it. */
  private quoted(buf: Buffer, start: number): number {
    const bytes: number[] = [];
    let eightBit = false;
    for (let i = start; i < buf.length; i++) {
      let c = buf[i] as number;
      if (c === DQUOTE) {
        const raw = Buffer.from(bytes);
        const value = eightBit ? decodeUtf8(raw) : raw.toString('latin1');
        this.push({ kind: 'quoted', value });
        return i + 1;
      }
      if (c === BACKSLASH) {
        c = buf[++i] ?? 0;
        if (c !== DQUOTE && c !== BACKSLASH) throw new LexError('invalid escape in quoted string');
      } else if (c === 0 || c === 0x0d || c === 0x0a) {
        throw new LexError('CR, LF or NUL in quoted string');
      } else if (c >= 0x80) {
        eightBit = true;
      }
      bytes.push(c);
    }
    throw new LexError('unterminated quoted string');
  }

  /** Reads an atom (with an optional `[...]<...>` section part); returns the index after it. */
  private atom(buf: Buffer, start: number): number {
    let i = start;
    while (i < buf.length) {
      const c = buf[i] as number;
      if (c === SP || c === LPAREN || c === RPAREN || c === DQUOTE || c === LBRACE) break;
      checkAtomByte(c);
      i++;
      if (c === LBRACKET) i = section(buf, i);
    }
    if (i === start) throw new LexError('expected an argument');
    this.push({ kind: 'atom', value: buf.toString('latin1', start, i) });
    return i;
  }
}

function checkAtomByte(c: number): void {
  if (c >= 0x80) throw new LexError('8-bit byte outside a string');
  if (c < 0x20 || c === 0x7f) throw new LexError('control byte in an argument');
}

/** Skips a section body after `[` through `]` and an optional `<partial>`; returns the index after. */
function section(buf: Buffer, start: number): number {
  let i = start;
  for (;;) {
    const c = buf[i];
    if (c === undefined) throw new LexError('unterminated section');
    if (c === RBRACKET) break;
    if (c === LBRACKET || c === LBRACE) throw new LexError('invalid section');
    if (c === DQUOTE) {
      for (i++; buf[i] !== DQUOTE; i++) {
        const q = buf[i];
        if (q === undefined) throw new LexError('unterminated quoted string');
        if (q === BACKSLASH) i++;
        else checkAtomByte(q);
      }
    } else if (c !== SP) {
      checkAtomByte(c);
    }
    i++;
  }
  i++;
  if (buf[i] !== LT) return i;
  for (i++; buf[i] !== GT; i++) {
    const c = buf[i];
    if (c === undefined || !((c >= 0x30 && c <= 0x39) || c === 0x2e)) throw new LexError('invalid partial');
  }
  return i + 1;
}

function decodeUtf8(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new LexError('invalid UTF-8 in quoted string');
  }
}
