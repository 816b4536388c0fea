/**
 * Removes `Bcc:` (and `Resent-Bcc:`) header fields from a message on its way to the upstream
 * (RFC 5322 §3.6.3: the blind recipients must not see each other). The
 * outbox keeps the client's bytes untouched (`<id>.eml` is never rewritten), so the field is
 * stripped on the fly at each send; the Bcc recipients are reached through the envelope.
 *
 * Only the header block is examined (up to the first empty line, at most `MAX_HEADER` bytes;
 * a longer header passes unchanged). A removed field takes its folded continuation lines with
 * it. Every other byte passes through exactly, line ends included.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { HeaderEndFinder } from '../../shared/pop3-wire/header-end.js';

/** Longest header block that is examined. */
const MAX_HEADER = 1024 * 1024;

const DROP = /^(?:resent-)?bcc[ \t]*:/i;

/** Removes Bcc fields from one complete header block (bytes as latin1, line ends kept). */
function stripBccHeader(header: Buffer): Buffer {
  const text = header.toString('latin1');
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const out: string[] = [];
  let dropping = false;
  for (const line of lines) {
    if (dropping && /^[ \t]/.test(line) && line.trim() !== '') continue;
    dropping = DROP.test(line);
    if (!dropping) out.push(line);
  }
  return Buffer.from(out.join(''), 'latin1');
}

/** A Transform that strips Bcc fields from the header of the message streaming through it. */
export class StripBcc extends Transform {
  private readonly finder = new HeaderEndFinder();
  private head: Buffer[] = [];
  private headLength = 0;
  private passing = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.passing) {
      cb(null, chunk);
      return;
    }
    const end = this.finder.update(chunk);
    if (end >= 0) {
      this.head.push(chunk.subarray(0, end));
      this.push(stripBccHeader(Buffer.concat(this.head)));
      this.head = [];
      this.passing = true;
      cb(null, end < chunk.length ? chunk.subarray(end) : undefined);
      return;
    }
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength > MAX_HEADER) {
      this.passing = true;
      const all = Buffer.concat(this.head);
      this.head = [];
      cb(null, all);
      return;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    // A message without an empty line is all header.
    if (this.head.length) this.push(stripBccHeader(Buffer.concat(this.head)));
    cb();
  }
}
