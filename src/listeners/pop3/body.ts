/**
 * What RETR and TOP send of a stored message, before dot-stuffing (RFC 1939 §7 TOP, legacy-client repairs).
 *
 * - RETR: the stored bytes.
 * - TOP n m: the header up to and including the empty line that ends it, then the first m
 *   body lines (a line ends at LF); `TOP n 99999999` is the whole message.
 * - With the `oe-ns-eoh` repair, a message without an empty line gets one at its end
 *   (`\r\n`, after the CRLF the stuffer would add anyway), so it is 2 octets longer than `W=`.
 *   `servedSize()` is the one place that knows this, so LIST, STAT and RETR always agree (clients check sizes).
 */
import { HeaderEndFinder } from '../../shared/pop3-wire/index.js';

const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');

/** Octets RETR sends for a message before dot-stuffing: `W=`, plus 2 when the EOH repair applies. */
export function servedSize(wsize: number, hasEoh: boolean, repairEoh: boolean): number {
  return wsize + (repairEoh && !hasEoh ? 2 : 0);
}

/** Options of `servedBody`. */
export interface ServedBodyOptions {
  /** Supply the empty line after a header that has none (`oe-ns-eoh`). */
  repairEoh: boolean;
  /** TOP: body lines to send after the header; undefined for RETR (everything). */
  topLines?: number;
}

/** Yields the bytes to send for a stored message (see the module comment). */
export async function* servedBody(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  opts: ServedBodyOptions,
): AsyncGenerator<Buffer> {
  const finder = new HeaderEndFinder();
  let linesLeft = opts.topLines ?? Infinity;
  let last = -1;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    let body = chunk;
    if (!finder.found) {
      const k = finder.update(chunk);
      if (k < 0 || linesLeft === Infinity) {
        last = chunk.readUInt8(chunk.length - 1);
        yield chunk;
        continue;
      }
      if (k > 0) yield chunk.subarray(0, k);
      body = chunk.subarray(k);
    } else if (linesLeft === Infinity) {
      yield chunk;
      continue;
    }
    // TOP: count body lines in `body`.
    let i = -1;
    while (linesLeft > 0) {
      i = body.indexOf(LF, i + 1);
      if (i < 0) break;
      linesLeft--;
    }
    if (linesLeft === 0) {
      const end = i < 0 ? 0 : i + 1;
      if (end > 0) yield body.subarray(0, end);
      return;
    }
    if (body.length) yield body;
  }
  if (!finder.found && opts.repairEoh) yield last === LF || last === -1 ? CRLF : CRLF2;
}
