/**
 * Writing replies with backpressure, shared by the local POP3 and IMAP listeners: a full socket
 * suspends the writer until 'drain', and nothing is written after the socket closed.
 */
import type { Socket } from 'node:net';

/** Raised when the peer is gone while a reply is being written. */
export class ConnectionClosedError extends Error {
  override name = 'ConnectionClosedError';
}

/** Write and, when the socket buffer is full, wait for it to drain or close. */
export function writeWithBackpressure(s: Socket, buf: Buffer | string): Promise<void> {
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
