/**
 * Encoders for IMAP response data (RFC 3501 §9): atom / quoted / literal choice for strings,
 * NIL, parenthesised lists, flag lists, mailbox names (modified UTF-7) and INTERNALDATE.
 *
 * Invariants:
 * - A response is built as `Wire` pieces (strings and Buffers, nested) and flattened once by
 *   `toBuffer`; literal bytes are copied verbatim, never decoded or re-encoded.
 * - Strings outside literals are 7-bit: a value with CR, LF, NUL, any other control byte, an
 *   8-bit byte, many `"`/`\`, or over QUOTED_MAX bytes goes out as a literal `{n}\r\n<bytes>`,
 *   whose count is the byte length (UTF-8), not the string length.
 */
import { formatDateTime } from './imap-date.js';
import { encodeMailboxName } from './mailbox-name.js';

/** Response pieces; strings are written as UTF-8 (in practice 7-bit). */
export type Wire = string | Buffer | readonly Wire[];

/** Longest value sent as a quoted string. */
export const QUOTED_MAX = 1024;
/** More escapes than this and a literal is clearer and shorter. */
const MAX_ESCAPES = 16;

const ATOM = /^[^\x00-\x20(){%*"\\\]\x7f-\uffff]+$/;

/** Flattens pieces into one Buffer. */
export function toBuffer(w: Wire): Buffer {
  const parts: Buffer[] = [];
  const stack: Wire[] = [w];
  while (stack.length) {
    const x = stack.pop() as Wire;
    if (typeof x === 'string') parts.push(Buffer.from(x, 'utf8'));
    else if (Buffer.isBuffer(x)) parts.push(x);
    else for (let i = x.length - 1; i >= 0; i--) stack.push(x[i] as Wire);
  }
  return Buffer.concat(parts);
}

/** `"..."` with `\` and `"` escaped; the caller ensures the text is 7-bit without CR/LF/NUL. */
export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `{n}\r\n` followed by the bytes. */
export function literal(value: string | Buffer): Wire {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return [`{${bytes.length}}\r\n`, bytes];
}

/** True when `bytes` can travel as a quoted string. */
function quotable(bytes: Buffer): boolean {
  if (bytes.length > QUOTED_MAX) return false;
  let escapes = 0;
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e) return false;
    if ((b === 0x22 || b === 0x5c) && ++escapes > MAX_ESCAPES) return false;
  }
  return true;
}

/** A string value: quoted when short and safe, otherwise a literal. */
export function string(value: string | Buffer): Wire {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return quotable(bytes) ? quoted(bytes.toString('latin1')) : literal(bytes);
}

/** An astring: a bare atom when it is one, else `string`. */
export function astring(value: string): Wire {
  return ATOM.test(value) && value.toUpperCase() !== 'NIL' ? value : string(value);
}

/** NIL for null/undefined, else `string`. */
export function nstring(value: string | Buffer | null | undefined): Wire {
  return value === null || value === undefined ? 'NIL' : string(value);
}

/** `(a b c)`. */
export function list(items: readonly Wire[]): Wire {
  const out: Wire[] = ['('];
  items.forEach((item, i) => {
    if (i) out.push(' ');
    out.push(item);
  });
  out.push(')');
  return out;
}

/** `(\Seen $Label)`; flags are atoms (as accepted by the parser). */
export function flagList(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}

/** A mailbox name in modified UTF-7, as an astring. */
export function mailboxName(name: string): Wire {
  return astring(encodeMailboxName(name));
}

/** `"17-Jul-1996 02:44:25 -0700"` for the INTERNALDATE `ms` shown in zone `offsetMinutes`. */
export function internalDate(ms: number, offsetMinutes: number): string {
  return quoted(formatDateTime(ms, offsetMinutes));
}
