/**
 * The socket events a local POP3 or IMAP session listens to, attached and detached as one set
 * (STARTTLS/STLS moves them from the plain socket to the TLS one), with the idle timeout.
 */
import type { Socket } from 'node:net';

/** A session's handlers: input, the peer gone (end or close), an error, the idle timeout. */
export interface SessionSocketHandlers {
  data(chunk: Buffer): void;
  gone(): void;
  error(err: Error): void;
  timeout(): void;
}

/** Attaches and detaches one session's handlers. */
export class SocketEvents {
  private readonly pairs: Array<[string, ((chunk: Buffer) => void) | ((err: Error) => void) | (() => void)]>;

  constructor(h: SessionSocketHandlers) {
    this.pairs = [
      ['data', h.data],
      ['end', h.gone],
      ['close', h.gone],
      ['error', h.error],
      ['timeout', h.timeout],
    ];
  }

  /** Listen on `s`, with an idle timeout of `timeoutMs`. */
  attach(s: Socket, timeoutMs: number): void {
    for (const [event, fn] of this.pairs) s.on(event, fn);
    s.setTimeout(timeoutMs);
  }

  detach(s: Socket): void {
    for (const [event, fn] of this.pairs) s.off(event, fn);
    s.setTimeout(0);
  }
}
