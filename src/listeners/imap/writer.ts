/**
 * Output of one IMAP connection: writes with backpressure (a full socket suspends the writer
 * until 'drain'), nothing after the socket closed.
 */
import type { Socket } from 'node:net';

/** Raised when the peer is gone while a response is being written. */
export class ConnectionClosedError extends Error {
  override name = 'ConnectionClosedError';
}

/** Writes responses on one connection (re-pointed after STARTTLS). */
export class ResponseWriter {
  constructor(public socket: Socket) {}

  /** Write and, when the socket buffer is full, wait for it to drain or close. */
  write(buf: Buffer | string): Promise<void> {
    const s = this.socket;
    if (s.destroyed || !s.writable) return Promise.reject(new ConnectionClosedError('connection closed'));
    if (s.write(buf)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        s.off('drain', onDrain);
        s.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new ConnectionClosedError('connection closed while writing'));
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }
}

/** Collects response text and writes it in chunks of about `size` bytes (FETCH, SEARCH of many messages). */
export class Coalescer {
  private parts: Array<Buffer | string> = [];
  private bytes = 0;

  constructor(
    private readonly out: { write(buf: Buffer | string): Promise<void> },
    private readonly size = 64 * 1024,
  ) {}

  /** Queue text or bytes; resolves after a write when the batch is full (backpressure). */
  async add(chunk: Buffer | string): Promise<void> {
    if (typeof chunk !== 'string' && chunk.length >= this.size) {
      // A large body goes out as it is, never copied into a batch.
      await this.flush();
      return this.out.write(chunk);
    }
    this.parts.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.size) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.parts.length) return;
    const parts = this.parts;
    this.parts = [];
    this.bytes = 0;
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only !== undefined) return this.out.write(only);
    if (parts.every((p) => typeof p === 'string')) return this.out.write(parts.join(''));
    return this.out.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))));
  }
}
