/**
 * Collects the un-stuffed body of a POP3 list reply (UIDL, LIST, CAPA; RFC 1939 §3) under caps
 * on its line length, line count and total octets, for a client facing a hostile server
 * (docs/guarantees.md#hostile-upstream-servers).
 *
 * Invariants: the bytes are kept as received and only measured while they arrive (one `indexOf`
 * pass a chunk, no object a line), so a refused reply costs at most `maxBytes`; lines are split
 * (LineReader's framing) only once the reply is complete.
 */
import { LineReader } from './line-reader.js';

/** The caps of one reply. */
export interface ListReplyLimits {
  /** Octets in one line, line end excluded. */
  maxLine: number;
  maxLines: number;
  /** Octets in all, line ends included. */
  maxBytes: number;
}

/** One list reply being received. */
export class ListReply {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private count = 0;
  private lineLength = 0;

  constructor(private readonly limits: ListReplyLimits) {}

  /** Takes the next bytes; returns what is wrong (e.g. `longer than 10 lines`) once a cap is passed, else null. */
  push(data: Buffer): string | null {
    const { maxLine, maxLines, maxBytes } = this.limits;
    this.bytes += data.length;
    if (this.bytes > maxBytes) return `longer than ${maxBytes} octets`;
    for (let pos = 0; pos < data.length; ) {
      const lf = data.indexOf(0x0a, pos);
      this.lineLength += (lf < 0 ? data.length : lf) - pos;
      if (this.lineLength > maxLine + 1) return `has a line longer than ${maxLine} octets`; // +1: the CR
      if (lf < 0) break;
      if (++this.count > maxLines) return `longer than ${maxLines} lines`;
      this.lineLength = 0;
      pos = lf + 1;
    }
    this.chunks.push(data);
    return null;
  }

  /** The complete lines, without their line ends. */
  lines(): Buffer[] {
    const reader = new LineReader(this.limits.maxLine + 1);
    reader.push(Buffer.concat(this.chunks, this.bytes));
    const lines: Buffer[] = [];
    for (let line = reader.readLine(); line !== null; line = reader.readLine()) lines.push(line);
    return lines;
  }
}
