/**
 * Line framing over a byte stream, for POP3 command and status lines (RFC 1939 §3).
 *
 * Invariants:
 * - Bytes stay Buffers; nothing is decoded here. A line is the bytes before LF, with one CR
 *   directly before the LF removed (CRLF is the standard; a bare LF is tolerated).
 * - Memory is bounded: a line longer than `maxLineLength` octets (line end excluded) makes
 *   `readLine()` throw `LineTooLongError` once, after which the rest of that line is
 *   discarded up to its LF, so a server can answer `-ERR` and carry on (RFC 2449 §4).
 * - Each chunk is scanned once (`indexOf`); an incomplete line is kept as a list of slices and
 *   joined only when its LF arrives, so 1-byte segments cost linear time.
 * - Message bodies are not read through this class: `takeRest()` hands the unread bytes to the
 *   dot-unstuffer when a multi-line reply starts.
 */

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** Thrown by `LineReader.readLine()` when a line exceeds the maximum length. */
export class LineTooLongError extends Error {
  override name = 'LineTooLongError';
  /** The configured maximum, in octets, line end excluded. */
  readonly maxLineLength: number;
  constructor(maxLineLength: number) {
    super(`line longer than ${maxLineLength} octets`);
    this.maxLineLength = maxLineLength;
  }
}

/** Splits a byte stream into lines of at most `maxLineLength` octets. */
export class LineReader {
  /** Maximum octets in one line, the CRLF or LF excluded. */
  readonly maxLineLength: number;
  private head: Buffer = EMPTY;
  private pos = 0;
  private queue: Buffer[] = [];
  private partial: Buffer[] = [];
  private partialLength = 0;
  /** True while the remainder of an over-long line is being skipped. */
  private discarding = false;

  constructor(maxLineLength: number) {
    if (!(maxLineLength > 0)) throw new RangeError('maxLineLength must be positive');
    this.maxLineLength = maxLineLength;
  }

  /** Appends received bytes; the Buffer must not be modified afterwards. */
  push(chunk: Buffer): void {
    if (chunk.length) this.queue.push(chunk);
  }

  /** Number of buffered bytes not yet returned as lines. */
  get buffered(): number {
    let n = this.partialLength + (this.head.length - this.pos);
    for (const b of this.queue) n += b.length;
    return n;
  }

  /**
   * Returns the next complete line without its line end, or null when no complete line is
   * buffered. Throws LineTooLongError (once per offending line) when the limit is exceeded.
   */
  readLine(): Buffer | null {
    for (;;) {
      if (this.pos >= this.head.length) {
        const next = this.queue.shift();
        if (!next) return null;
        this.head = next;
        this.pos = 0;
      }
      const lf = this.head.indexOf(LF, this.pos);
      if (lf < 0) {
        const tail = this.head.subarray(this.pos);
        this.pos = this.head.length;
        if (this.discarding) continue;
        this.partial.push(tail);
        this.partialLength += tail.length;
        // +1 allows for the CR that may turn out to precede the LF.
        if (this.partialLength > this.maxLineLength + 1) return this.overflow();
        continue;
      }
      let line = this.head.subarray(this.pos, lf);
      this.pos = lf + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (this.partial.length) {
        this.partial.push(line);
        line = Buffer.concat(this.partial, this.partialLength + line.length);
        this.partial = [];
        this.partialLength = 0;
      }
      if (line.length && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLineLength) throw new LineTooLongError(this.maxLineLength);
      return line;
    }
  }

  /** Removes and returns every unread byte (a partial line included), e.g. to start a body. */
  takeRest(): Buffer {
    const parts = [...this.partial, this.head.subarray(this.pos), ...this.queue];
    this.partial = [];
    this.partialLength = 0;
    this.head = EMPTY;
    this.pos = 0;
    this.queue = [];
    this.discarding = false;
    const [first] = parts;
    return parts.length === 1 && first !== undefined ? first : Buffer.concat(parts);
  }

  private overflow(): never {
    this.partial = [];
    this.partialLength = 0;
    this.discarding = true;
    throw new LineTooLongError(this.maxLineLength);
  }
}
