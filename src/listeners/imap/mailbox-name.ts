/**
 * Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) both ways, `INBOX` normalisation
 * and the LIST/LSUB pattern matcher (`*` any characters, `%` any but the hierarchy delimiter).
 *
 * Invariants:
 * - `decodeMailboxName(encodeMailboxName(s)) === s` for every string of whole code points.
 * - Decoding refuses malformed shifts (bad base64, stray bits, lone surrogates, a control
 *   character) so one name has one wire form; raw UTF-8 (UTF8=ACCEPT clients) passes through.
 * - Only `INBOX` itself is case-insensitive (RFC 3501 §5.1); `inbox/x` is not rewritten.
 * - Matching is `shared/list-pattern.ts`'s (also used for the folders an IMAP account pulls).
 */
import { listMatcher, normaliseInbox } from '../../shared/list-pattern.js';
import { err, ok, type Result } from './result.js';

export const DELIMITER = '/';
const MAX_PATTERN = 1024;

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_VALUE = new Map([...B64].map((c, i) => [c, i]));

/** Encodes a mailbox name for the wire (modified UTF-7). */
export function encodeMailboxName(name: string): string {
  let out = '';
  let units: number[] = [];
  const flush = (): void => {
    if (!units.length) return;
    let bits = 0;
    let nbits = 0;
    out += '&';
    for (const u of units) {
      bits = (bits << 16) | u;
      nbits += 16;
      while (nbits >= 6) {
        nbits -= 6;
        out += B64[(bits >> nbits) & 63];
      }
      bits &= (1 << nbits) - 1;
    }
    if (nbits > 0) out += B64[(bits << (6 - nbits)) & 63];
    out += '-';
    units = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : name[i];
    } else units.push(c);
  }
  flush();
  return out;
}

/** Decodes a wire mailbox name (modified UTF-7, or raw UTF-8 already decoded) and normalises INBOX. */
export function decodeMailboxName(wire: string): Result<string> {
  let out = '';
  for (let i = 0; i < wire.length; ) {
    const c = wire.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return err('control character in mailbox name');
    if (c !== 0x26) {
      out += wire[i];
      i++;
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) return err('unterminated & in mailbox name');
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    let bits = 0;
    let nbits = 0;
    const units: number[] = [];
    for (let j = i + 1; j < end; j++) {
      const v = B64_VALUE.get(wire[j] as string);
      if (v === undefined) return err('invalid modified UTF-7 in mailbox name');
      bits = ((bits << 6) | v) & 0xffffff;
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push((bits >> nbits) & 0xffff);
      }
    }
    const direct = units.some((u) => u >= 0x20 && u <= 0x7e);
    if (nbits >= 6 || (bits & ((1 << nbits) - 1)) !== 0 || !units.length || direct) {
      return err('invalid modified UTF-7 in mailbox name');
    }
    const text = String.fromCharCode(...units);
    if (/\p{Cs}/u.test(text)) return err('invalid modified UTF-7 in mailbox name');
    out += text;
    i = end + 1;
  }
  return ok(normaliseInbox(out));
}

/** The pattern LIST/LSUB match: the reference joined to the pattern (RFC 3501 §6.3.8). */
export function listPattern(reference: string, pattern: string): string {
  if (!reference || pattern.startsWith(DELIMITER)) return pattern;
  return reference.endsWith(DELIMITER) ? reference + pattern : reference + DELIMITER + pattern;
}

/** A predicate over decoded mailbox names for a LIST pattern; an error if the pattern is too long. */
export function patternMatcher(pattern: string, delimiter = DELIMITER): Result<(name: string) => boolean> {
  if (pattern.length > MAX_PATTERN) return err('pattern too long');
  return ok(listMatcher(pattern, delimiter));
}
