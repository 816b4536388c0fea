/**
 * Decoding for SEARCH only (FETCH never decodes): RFC 2047 encoded words, quoted-printable,
 * base64, and charset → JS string via TextDecoder with a latin1 fallback. Linear in the input
 * (byte loops and a non-backtracking encoded-word pattern); never throws.
 */

/** Bytes in a named charset → string; unknown or broken charsets fall back to latin1. */
export function decodeCharset(bytes: Buffer, charset: string | null): string {
  const cs = (charset ?? '').split('*')[0]?.trim().toLowerCase() || 'utf-8';
  try {
    return new TextDecoder(cs === 'us-ascii' ? 'utf-8' : cs, { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/** 8-bit header bytes (latin1 string) as UTF-8 when they are valid UTF-8, else latin1. */
export function decode8bit(s: string): string {
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) >= 0x80) return decodeCharset(Buffer.from(s, 'latin1'), 'utf-8');
  return s;
}

const HEX = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;

/** Quoted-printable → bytes (RFC 2045 §6.7); `underscore` for the Q encoding of RFC 2047. */
export function decodeQuotedPrintable(src: Buffer, underscore = false): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number;
    if (c === 0x3d) {
      const h = HEX(src[i + 1] ?? 0);
      const l = HEX(src[i + 2] ?? 0);
      if (h >= 0 && l >= 0) {
        out[n++] = h * 16 + l;
        i += 2;
        continue;
      }
      // soft line break: '=' then blanks then a line end
      let j = i + 1;
      while (src[j] === 0x20 || src[j] === 0x09) j++;
      if (src[j] === 13 && src[j + 1] === 10) j++;
      if (src[j] === 10 || j >= src.length) {
        i = j;
        continue;
      }
    }
    out[n++] = underscore && c === 0x5f ? 0x20 : c;
  }
  return out.subarray(0, n);
}

/** A body's bytes decoded from its Content-Transfer-Encoding. */
export function decodeTransfer(src: Buffer, encoding: string | null): Buffer {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === 'base64') return Buffer.from(src.toString('latin1'), 'base64');
  if (e === 'quoted-printable') return decodeQuotedPrintable(src);
  return src;
}

const ENCODED_WORD = /=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=/g;

/** RFC 2047: decode encoded words in a (latin1) header value; blanks between two words go. */
export function decodeWords(value: string): string {
  let out = '';
  let last = 0;
  let prevWordEnd = -1;
  for (const m of value.matchAll(ENCODED_WORD)) {
    const at = m.index ?? 0;
    const between = value.slice(last, at);
    if (!(prevWordEnd === last && /^[ \t\r\n]*$/.test(between))) out += decode8bit(between);
    const charset = m[1] ?? '';
    const text = Buffer.from(m[3] ?? '', 'latin1');
    const bytes =
      m[2] === 'b' || m[2] === 'B' ? Buffer.from(text.toString('latin1'), 'base64') : decodeQuotedPrintable(text, true);
    out += decodeCharset(bytes, charset);
    last = at + m[0].length;
    prevWordEnd = last;
  }
  return out + decode8bit(value.slice(last));
}
