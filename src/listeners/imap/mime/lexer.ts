/**
 * RFC 822/2045 lexer over a latin1 header value, following Dovecot's rfc822-parser: blanks and
 * (nested) comments are skipped between tokens, quoted strings are unescaped, CR/LF dropped.
 * Every method advances `pos` by at least one byte or returns a failure, so loops terminate.
 */
const SPECIALS = '()<>@,;:\\"/[]?=';
const ATOM_SPECIALS = '()<>@,;:\\".[]';

export class Lexer {
  pos = 0;
  /** The text of the last comment skipped (Dovecot uses it as a missing display name). */
  lastComment: string | null = null;
  constructor(readonly s: string) {}

  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }

  /** Skip blanks and comments; false when the end is reached. */
  skipCfws(): boolean {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') this.pos++;
      else if (c === '(') this.comment();
      else break;
    }
    return this.pos < s.length;
  }

  private comment(): void {
    const s = this.s;
    let depth = 0;
    let text = '';
    for (; this.pos < s.length; this.pos++) {
      const c = s[this.pos] as string;
      if (c === '\\' && this.pos + 1 < s.length) {
        this.pos++;
        text += s[this.pos];
        continue;
      }
      if (c === '(') {
        if (depth++ === 0) continue;
      } else if (c === ')') {
        if (--depth === 0) {
          this.pos++;
          this.lastComment = text;
          return;
        }
      }
      if (c !== '\r' && c !== '\n') text += c;
    }
    this.lastComment = text;
  }

  private run(stop: string): string {
    const s = this.s;
    const from = this.pos;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c <= 32 || c === 127 || stop.includes(s[this.pos] as string)) break;
      this.pos++;
    }
    return s.slice(from, this.pos);
  }

  /** An RFC 2045 token, then CFWS; '' when none. */
  token(): string {
    const t = this.run(SPECIALS);
    if (t) this.skipCfws();
    return t;
  }
  /** An RFC 822 atom, then CFWS; '' when none. */
  atom(): string {
    const t = this.run(ATOM_SPECIALS);
    if (t) this.skipCfws();
    return t;
  }
  /** A dot-atom-ish run (atoms joined by dots, as Dovecot's local-part/domain parsing). */
  dotAtom(): string {
    let out = this.atom();
    while (this.peek() === '.') {
      this.pos++;
      this.skipCfws();
      out += `.${this.atom()}`;
    }
    return out;
  }
  /** A quoted string at pos (which is '"'), unescaped, then CFWS. */
  quoted(): string {
    const s = this.s;
    let out = '';
    this.pos++;
    while (this.pos < s.length) {
      const c = s[this.pos] as string;
      this.pos++;
      if (c === '"') break;
      if (c === '\\' && this.pos < s.length) {
        out += s[this.pos];
        this.pos++;
      } else if (c !== '\r' && c !== '\n') out += c;
    }
    this.skipCfws();
    return out;
  }
  /** An RFC 822 domain literal `[...]` at pos, kept with its brackets, then CFWS. */
  domainLiteral(): string {
    const end = this.s.indexOf(']', this.pos);
    const stop = end < 0 ? this.s.length : end + 1;
    const out = this.s.slice(this.pos, stop);
    this.pos = stop;
    this.skipCfws();
    return out;
  }
}
