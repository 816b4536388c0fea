/**
 * Finding the end of a message header: the first empty line (RFC 5322 §2.1), where a line ends
 * at LF and an empty line is either `LF` or `CR LF` at the start of a line. Used by the cache
 * to record whether a message has one, and by the POP3 server for `TOP` and for the missing
 * end-of-header repair (its absence breaks Outlook Express).
 *
 * Invariants: bytes only, chunks of any size, linear time (`indexOf`); once the end is found
 * later chunks are not scanned.
 */

const LF = 0x0a;
const CR = 0x0d;

/** Streaming finder of the empty line that ends a message header. */
export class HeaderEndFinder {
  /** Bytes of the current line seen in earlier chunks (capped at 2). */
  private carry = 0;
  /** The current line so far is exactly one CR. */
  private carryCr = false;
  private consumed = 0;
  /** Offset in the whole message just after the empty line, or -1 while not (yet) found. */
  end = -1;

  /** True once the empty line has been seen. */
  get found(): boolean {
    return this.end >= 0;
  }

  /**
   * Consumes the next chunk; returns the offset within this chunk just after the empty line
   * when it ends in this chunk, else -1 (also for every chunk after it was found).
   */
  update(chunk: Buffer): number {
    if (this.end >= 0) return -1;
    let s = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, s)) {
      const len = i - s + this.carry;
      const empty = len === 0 || (len === 1 && (i > s ? chunk[i - 1] === CR : this.carryCr));
      if (empty) {
        this.end = this.consumed + i + 1;
        return i + 1;
      }
      s = i + 1;
      this.carry = 0;
      this.carryCr = false;
    }
    const tail = chunk.length - s;
    if (tail > 0) {
      this.carryCr = this.carry + tail === 1 && chunk[chunk.length - 1] === CR;
      this.carry = Math.min(2, this.carry + tail);
    }
    this.consumed += chunk.length;
    return -1;
  }
}
