/**
 * Replies on the wire (RFC 1939 §3): status lines, multi-line lists and message bodies. All
 * multi-line output goes through the shared codec's `DotStuffer`, so it is dot-stuffed, has
 * CRLF line ends, a final CRLF and the `.` terminator whatever the source bytes are.
 *
 * Invariants: writes respect backpressure (a full socket suspends the writer until 'drain'),
 * nothing is written after the socket closed, and a status line can never carry CR or LF
 * (`formatStatusLine` refuses them).
 */
import type { Socket } from 'node:net';
import { DotStuffer, formatContinuation, formatStatusLine } from '../../shared/pop3-wire/index.js';
import { writeWithBackpressure } from '../socket-writer.js';

export { ConnectionClosedError } from '../socket-writer.js';

/** Message bodies go out in writes of at least this many bytes (except the last). */
const COALESCE = 64 * 1024;

/** Writes POP3 replies on one connection. */
export class ReplyWriter {
  /** True while a multi-line body is half written: after an error there, only closing is safe. */
  inBody = false;

  constructor(
    private socket: Socket,
    private readonly trace?: (line: string) => void,
  ) {}

  /** Point the writer at a new socket (after STLS). */
  attach(socket: Socket): void {
    this.socket = socket;
  }

  /** `+OK text` (with an RFC 2449 response code if given). */
  ok(text = '', code?: string): Promise<void> {
    return this.line(formatStatusLine(true, text, code));
  }

  /** `-ERR [CODE] text`. */
  err(text: string, code?: string): Promise<void> {
    return this.line(formatStatusLine(false, text, code));
  }

  /** An empty SASL challenge `+ ` (RFC 5034 §4). */
  challenge(base64 = ''): Promise<void> {
    return this.line(formatContinuation(base64));
  }

  /** `+OK text`, then `lines` as a dot-stuffed multi-line body and its terminator. */
  list(text: string, lines: readonly string[]): Promise<void> {
    return this.listChunks(text, lines.length ? [`${lines.join('\r\n')}\r\n`] : []);
  }

  /**
   * `+OK text`, then `chunks` (each whole CRLF-terminated lines) as a dot-stuffed multi-line
   * body and its terminator. Chunks go out in writes of about COALESCE bytes with backpressure,
   * so a 1,000,000-line UIDL never sits whole in memory.
   */
  async listChunks(text: string, chunks: Iterable<string>): Promise<void> {
    const head = formatStatusLine(true, text);
    this.trace?.(`S: ${head.trimEnd()} (multi-line)`);
    const stuffer = new DotStuffer();
    let first: Buffer | undefined = Buffer.from(head, 'latin1');
    let pending = '';
    this.inBody = true;
    for (const chunk of chunks) {
      pending += chunk;
      if (pending.length < COALESCE) continue;
      const body = stuffer.push(Buffer.from(pending, 'latin1'));
      await this.write(first ? Buffer.concat([first, body]) : body);
      first = undefined;
      pending = '';
    }
    const tail = pending ? stuffer.push(Buffer.from(pending, 'latin1')) : Buffer.alloc(0);
    await this.write(Buffer.concat([first ?? Buffer.alloc(0), tail, stuffer.end()]));
    this.inBody = false;
  }

  /**
   * `+OK text`, then the message bytes from `source`, dot-stuffed (NUL → 0x80 when asked).
   * The source is consumed to its end; a source error propagates after the `+OK` went out.
   */
  async message(text: string, source: AsyncIterable<Buffer>, replaceNul: boolean): Promise<void> {
    const head = formatStatusLine(true, text);
    this.trace?.(`S: ${head.trimEnd()} (message body)`);
    // Coalesce the status line and small chunks into writes of up to COALESCE bytes: one
    // segment for a small message instead of a status-line segment waiting on a delayed ACK.
    const headBytes = Buffer.from(head, 'latin1');
    let parts: Buffer[] = [headBytes];
    let size = headBytes.length;
    this.inBody = true;
    const stuffer = new DotStuffer({ replaceNul });
    for await (const chunk of source) {
      const wire = stuffer.push(chunk);
      parts.push(wire);
      size += wire.length;
      if (size >= COALESCE) {
        const [only] = parts;
        await this.write(parts.length === 1 && only !== undefined ? only : Buffer.concat(parts, size));
        parts = [];
        size = 0;
      }
    }
    parts.push(stuffer.end());
    await this.write(Buffer.concat(parts));
    this.inBody = false;
  }

  private line(text: string): Promise<void> {
    this.trace?.(`S: ${text.trimEnd()}`);
    return this.write(Buffer.from(text, 'utf8'));
  }

  /** Write and, when the socket buffer is full, wait for it to drain or close. */
  write(buf: Buffer): Promise<void> {
    return writeWithBackpressure(this.socket, buf);
  }
}
