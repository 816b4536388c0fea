/**
 * What a fetcher accepts of one message body, whatever size the server declared (LIST,
 * RFC822.SIZE): a server that declares 100 bytes and streams 600 MB must not fill the disk
 * (docs/guarantees.md#hostile-upstream-servers).
 *
 * Invariants: the bytes received are counted, never the declared size alone; the limit is
 * `min(maxMessageSize, max(2 × declared, declared + 64 KiB))` (2× allows a server counting
 * LF where it sends CRLF); a body past it is abandoned before its over-limit bytes are stored.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { TemporaryError } from '../shared/errors.js';

/** Slack above a declared size before a body counts as lying about its size. */
export const DECLARED_SLACK = 64 * 1024;

/** Most bytes accepted for a body declared `declared` bytes (unknown: maxMessageSize alone). */
export function receiveLimit(declared: number | undefined, maxMessageSize: number): number {
  if (declared === undefined || !Number.isFinite(declared) || declared < 0) return maxMessageSize;
  return Math.min(maxMessageSize, Math.max(declared * 2, declared + DECLARED_SLACK));
}

/** A body went past its receive limit; the message is skipped, not retried at every pull. */
export class OversizeError extends TemporaryError {
  override name = 'OversizeError';
  constructor(
    readonly declared: number | undefined,
    readonly limit: number,
    readonly received: number,
  ) {
    super(`message body past ${limit} bytes (declared ${declared ?? 'unknown'}, ${received} received)`, {
      code: 'EFBIG',
    });
  }

  /** The reason shown with the skipped message in `status` and the sync summary. */
  get reason(): string {
    return `sent more than ${this.limit} bytes (declared ${this.declared ?? 'no size'})`;
  }
}

/** Passes bytes through until `limit`, then fails with OversizeError before passing any byte past it. */
export class ByteLimit extends Transform {
  /** Bytes passed so far. */
  passed = 0;
  constructor(
    private readonly declared: number | undefined,
    private readonly limit: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passed + chunk.length > this.limit) {
      done(new OversizeError(this.declared, this.limit, this.passed + chunk.length));
      return;
    }
    this.passed += chunk.length;
    done(null, chunk);
  }
}
