/**
 * POP3 multi-line transparency (RFC 1939 §3): the un-stuffer used by the upstream client, the
 * stuffer used by the local server, and the CRLF sizer that computes the `W=`/LIST octet count.
 *
 * Invariants:
 * - Bytes only; nothing is decoded. Every method scans with `indexOf` and emits slices of the
 *   input, so a message costs linear time whatever the TCP segmentation.
 * - Un-stuffing: LF ends a line; a CR before it is kept as data (a bare-LF line from a sloppy
 *   server survives byte-exact). A line that is exactly `.` (then CRLF or LF) is the
 *   terminator; any other line starting with `.` loses that first byte. The message's own
 *   final line end is kept (it is part of what the server sent).
 * - Stuffing: bare LF → CRLF, a leading `.` doubled, a final CRLF added to a non-empty message
 *   that does not end in LF, then `.CRLF`, as Dovecot does. NUL → 0x80 optionally (NULs hang Outlook).
 * - `CrlfSizer.size` equals the stuffer's output length minus the added dots minus the 3-byte
 *   terminator, i.e. the length of the CRLF-normalised message (what LIST must report).
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const EMPTY = Buffer.alloc(0);
const CR_BUF = Buffer.from('\r');
const DOT_BUF = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');
const CRLF_BUF = Buffer.from('\r\n');
/** The multi-line terminator line as sent on the wire. */
const TERMINATOR = Buffer.from('.\r\n');

function join(parts: Buffer[]): Buffer {
  const [first] = parts;
  if (first === undefined) return EMPTY;
  if (parts.length === 1) return first;
  return Buffer.concat(parts);
}

/** What one `DotUnstuffer.push()` produced. */
export interface UnstuffResult {
  /** Message bytes recovered from this chunk (possibly empty). */
  data: Buffer;
  /** True once the terminator line has been seen. */
  done: boolean;
  /** Bytes after the terminator (the start of the next, pipelined reply); empty otherwise. */
  rest: Buffer;
}

enum U {
  LineStart,
  Mid,
  Dot, // a '.' at the start of a line, not yet known to be the terminator
  DotCr, // '.' then CR at the start of a line
  Done,
}

/** Streaming reader of one multi-line reply body: feed TCP chunks, get the message bytes. */
export class DotUnstuffer {
  private state = U.LineStart;

  /** True once the terminator has been consumed. */
  get done(): boolean {
    return this.state === U.Done;
  }

  /** Consumes a chunk; the chunk must not be modified afterwards (slices of it are returned). */
  push(chunk: Buffer): UnstuffResult {
    if (this.state === U.Done) return { data: EMPTY, done: true, rest: chunk };
    const out: Buffer[] = [];
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case U.LineStart:
          if (chunk[i] === DOT) {
            this.state = U.Dot;
            i++;
          } else {
            this.state = U.Mid;
          }
          break;
        case U.Dot: {
          const b = chunk[i];
          if (b === LF) return this.finish(out, chunk, i + 1);
          if (b === CR) {
            this.state = U.DotCr;
            i++;
          } else {
            this.state = U.Mid; // the stuffed dot is dropped; byte i is data
          }
          break;
        }
        case U.DotCr:
          if (chunk[i] === LF) return this.finish(out, chunk, i + 1);
          out.push(CR_BUF); // ".\rX": the dot is dropped, the CR is data
          this.state = U.Mid;
          break;
        case U.Mid: {
          const j = chunk.indexOf(LF_DOT, i);
          if (j < 0) {
            out.push(chunk.subarray(i));
            this.state = chunk[n - 1] === LF ? U.LineStart : U.Mid;
            i = n;
          } else {
            out.push(chunk.subarray(i, j + 1));
            this.state = U.Dot;
            i = j + 2;
          }
          break;
        }
      }
    }
    return { data: join(out), done: false, rest: EMPTY };
  }

  private finish(out: Buffer[], chunk: Buffer, restAt: number): UnstuffResult {
    this.state = U.Done;
    return { data: join(out), done: true, rest: chunk.subarray(restAt) };
  }
}

/** Options of the stuffer. */
export interface DotStufferOptions {
  /** Replace NUL bytes with 0x80 (Dovecot's `outlook-no-nuls` workaround: NULs hang Outlook). */
  replaceNul?: boolean;
}

function replaceNul(chunk: Buffer): Buffer {
  let k = chunk.indexOf(0);
  if (k < 0) return chunk;
  const copy = Buffer.from(chunk);
  while (k >= 0) {
    copy[k] = 0x80;
    k = copy.indexOf(0, k + 1);
  }
  return copy;
}

/** Streaming writer of one multi-line body: stored bytes in, wire bytes out (RFC 1939 §3). */
export class DotStuffer {
  private readonly nul: boolean;
  private atLineStart = true;
  private prevCr = false;
  private lastByte = -1;
  private ended = false;

  constructor(options: DotStufferOptions = {}) {
    this.nul = options.replaceNul ?? false;
  }

  /** Returns the wire form of the next chunk of stored bytes. */
  push(input: Buffer): Buffer {
    if (this.ended) throw new Error('DotStuffer: push() after end()');
    const n = input.length;
    if (n === 0) return EMPTY;
    const chunk = this.nul ? replaceNul(input) : input;
    const out: Buffer[] = [];
    let start = 0;
    if (this.atLineStart && chunk[0] === DOT) out.push(DOT_BUF);
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      const crBefore = i > 0 ? chunk[i - 1] === CR : this.prevCr;
      if (!crBefore) {
        out.push(chunk.subarray(start, i), CR_BUF);
        start = i;
      }
      if (i + 1 < n && chunk[i + 1] === DOT) {
        out.push(chunk.subarray(start, i + 1), DOT_BUF);
        start = i + 1;
      }
    }
    out.push(chunk.subarray(start));
    const last = chunk.readUInt8(n - 1);
    this.lastByte = last;
    this.atLineStart = last === LF;
    this.prevCr = last === CR;
    return join(out);
  }

  /** Returns the closing bytes: a CRLF if the message did not end in LF, then `.CRLF`. */
  end(): Buffer {
    if (this.ended) return EMPTY;
    this.ended = true;
    return this.lastByte === -1 || this.lastByte === LF ? TERMINATOR : Buffer.concat([CRLF_BUF, TERMINATOR]);
  }
}

/** Yields the complete wire form (body and terminator) of a stored message. */
export async function* dotStuff(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  options: DotStufferOptions = {},
): AsyncGenerator<Buffer> {
  const stuffer = new DotStuffer(options);
  for await (const chunk of source) {
    const wire = stuffer.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    if (wire.length) yield wire;
  }
  yield stuffer.end();
}

/** Computes the CRLF octet count of a message (the `W=` value and the LIST size). */
export class CrlfSizer {
  private total = 0;
  private prevCr = false;
  private lastByte = -1;

  /** Adds the next chunk of stored bytes. */
  update(chunk: Buffer): void {
    const n = chunk.length;
    if (n === 0) return;
    let bare = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      if (!(i > 0 ? chunk[i - 1] === CR : this.prevCr)) bare++;
    }
    this.total += n + bare;
    this.lastByte = chunk.readUInt8(n - 1);
    this.prevCr = this.lastByte === CR;
  }

  /** Octets the message occupies on the wire before dot-stuffing, final CRLF included. */
  get size(): number {
    return this.total + (this.lastByte !== -1 && this.lastByte !== LF ? 2 : 0);
  }
}
