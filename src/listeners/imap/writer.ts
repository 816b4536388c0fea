/**
 * Output of one IMAP connection: writes with backpressure (a full socket suspends the writer
 * until 'drain'), nothing after the socket closed.
 */
import type { Socket } from 'node:net';
import { writeWithBackpressure } from '../socket-writer.js';

export { ConnectionClosedError } from '../socket-writer.js';

/** Writes responses on one connection (re-pointed after STARTTLS). */
export class ResponseWriter {
  constructor(public socket: Socket) {}

  write(buf: Buffer | string): Promise<void> {
    return writeWithBackpressure(this.socket, buf);
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

  /**
   * Queue text or bytes. Returns a promise only when it wrote (the batch was full): the caller
   * awaits that one (backpressure) and pays nothing per small piece otherwise.
   */
  add(chunk: Buffer | string): Promise<void> | undefined {
    if (typeof chunk !== 'string' && chunk.length >= this.size) {
      // A large body goes out as it is, never copied into a batch.
      return this.flush().then(() => this.out.write(chunk));
    }
    this.parts.push(chunk);
    this.bytes += chunk.length;
    return this.bytes >= this.size ? this.flush() : undefined;
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
