/**
 * IMAP string output for FETCH answers, as Dovecot's imap-quote writes it: a quoted string,
 * escaping `"` and `\`, unless the value has CR, LF, 8-bit bytes or more than four escapes —
 * then a `{n}` literal. Values are latin1 "binary" strings (one char per wire byte).
 */

export function imapString(s: string): string {
  let escapes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) {
      if (++escapes > 4) return literal(s);
    } else if (c === 13 || c === 10 || c >= 0x80) return literal(s);
  }
  return `"${escapes ? s.replace(/["\\]/g, '\\$&') : s}"`;
}

function literal(s: string): string {
  return `{${s.length}}\r\n${s}`;
}

export function imapNString(s: string | null): string {
  return s === null ? 'NIL' : imapString(s);
}

/** Dovecot's imap_append_nstring_nolf: line ends dropped, a blank put in when the next line has none. */
export function imapNStringNoLf(s: string | null): string {
  if (s === null || !/[\r\n]/.test(s)) return imapNString(s);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\r' && c !== '\n') out += c;
    else if (i + 1 < s.length && s[i + 1] !== ' ' && s[i + 1] !== '\t') out += ' ';
  }
  return imapNString(out);
}

const isLwsp = (c: number): boolean => c === 13 || c === 10 || c === 9 || c === 32;

/**
 * Dovecot's imap_append_string_for_humans (ENVELOPE subject and display names): whitespace runs
 * (CR, LF, TAB, SP) become one blank, leading/trailing ones go, NUL becomes 0x80; anything
 * changed, quoted-special or 8-bit is sent as a literal, otherwise as a plain quoted string.
 */
export function humanString(s: string): string {
  let modify = false;
  let last = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isLwsp(c)) {
      if (c !== 32 || last) modify = true;
      last = true;
    } else {
      if (c === 0 || c === 0x22 || c === 0x5c || c >= 0x80) modify = true;
      last = false;
    }
  }
  if (last && s.length > 0) modify = true;
  if (!modify) return `"${s}"`;
  let out = '';
  let pending = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isLwsp(c)) {
      pending = out.length > 0;
      continue;
    }
    if (pending) out += ' ';
    pending = false;
    out += c === 0 ? '\x80' : s[i];
  }
  return out === '' ? '""' : literal(out);
}
