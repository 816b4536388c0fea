/**
 * POP3 status lines: `+OK`, `-ERR` (RFC 1939 §3), the `+` continuation of SASL exchanges
 * (RFC 5034 §4) and the bracketed response codes of RFC 2449 §8 (`[IN-USE]`, `[LOGIN-DELAY]`,
 * `[SYS/TEMP]`, `[SYS/PERM]`) and RFC 3206 (`[AUTH]`).
 *
 * Invariants: parsing never throws (an unrecognisable line gives null, and the caller decides);
 * the status keyword is matched case-insensitively, as lenient clients do; text is decoded as
 * UTF-8 for humans only and never used to frame anything. Formatting refuses CR or LF in the
 * text, so a reply can never smuggle a second line.
 */

/** A parsed status line. */
export interface StatusLine {
  /** `ok` for +OK, `err` for -ERR, `continue` for a SASL `+ ` challenge. */
  kind: 'ok' | 'err' | 'continue';
  /** The response code without brackets, upper-cased (e.g. `SYS/TEMP`), if present. */
  code?: string;
  /** The text after the keyword (and after the response code), trimmed. */
  text: string;
}

// RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]", resp-level = 1*<any CHAR
// except "/" and "]">. Accept a little more (lower case) and upper-case it.
const RESP_CODE = /^\[([^\]\s]+)\]\s*/;

/** Parses one status line (without its line end); returns null when it is not one. */
export function parseStatusLine(line: Buffer | string): StatusLine | null {
  const s = typeof line === 'string' ? line : line.toString('utf8');
  let kind: StatusLine['kind'];
  let rest: string;
  const head = s.slice(0, 4).toUpperCase();
  if (head === '-ERR') {
    kind = 'err';
    rest = s.slice(4);
  } else if (head.startsWith('+OK')) {
    kind = 'ok';
    rest = s.slice(3);
  } else if (s === '+' || s.startsWith('+ ')) {
    // RFC 5034 §4: the challenge is base64 after "+ " and may be empty.
    return { kind: 'continue', text: s.slice(2).trim() };
  } else {
    return null;
  }
  // The keyword must stand alone: "+OKAY" is not a status line.
  if (rest.length && rest[0] !== ' ' && rest[0] !== '\t') return null;
  rest = rest.trim();
  const [prefix, code] = RESP_CODE.exec(rest) ?? [];
  if (prefix !== undefined && code !== undefined) {
    return { kind, code: code.toUpperCase(), text: rest.slice(prefix.length).trim() };
  }
  return { kind, text: rest };
}

/** True when the response code is, or is under, `level` (`SYS` matches `SYS/TEMP`). */
export function hasResponseCode(status: StatusLine, level: string): boolean {
  const c = status.code;
  if (!c) return false;
  const want = level.toUpperCase();
  return c === want || c.startsWith(`${want}/`);
}

function checkText(part: string): void {
  if (/[\r\n]/.test(part)) throw new RangeError('status text must not contain CR or LF');
}

/** Formats `+OK text` / `-ERR [CODE] text` with CRLF, ready to write. */
export function formatStatusLine(ok: boolean, text = '', code?: string): string {
  checkText(text);
  if (code !== undefined) checkText(code);
  const parts = [ok ? '+OK' : '-ERR'];
  if (code) parts.push(`[${code}]`);
  if (text) parts.push(text);
  return `${parts.join(' ')}\r\n`;
}

/** Formats a SASL continuation (`+ ` and base64 text) with CRLF (RFC 5034 §4). */
export function formatContinuation(base64 = ''): string {
  checkText(base64);
  return `+ ${base64}\r\n`;
}
