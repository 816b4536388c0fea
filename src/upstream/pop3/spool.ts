/**
 * The sink of a RETR sent ahead of the disk (fetcher.ts): it holds the message's bytes in memory
 * until the message's temp file is open, then hands them over and streams the rest straight into
 * it. So the wire never waits for `begin()`, a finish or a commit, while memory stays bounded by
 * what the fetcher lets run ahead (its byte budget; the size guard caps each body).
 *
 * Invariants:
 * - Byte-exact and in order: held chunks go to the file first, in one corked write, then later ones.
 * - Before `attach()` writes complete at once until HOLD_MAX octets are held (RETR then pauses
 *   the socket until the file is attached); after it, a full file stream makes writes wait for
 *   its 'drain', so RETR's backpressure reaches the disk.
 * - A file stream that fails or closes fails the spool's pending write; the error itself surfaces
 *   through the message's `finish()`, never as an unhandled 'error' event here.
 */
import { Writable } from 'node:stream';

/** Octets held before attach() past which writes wait (a message larger than this streams). */
export const HOLD_MAX = 1024 * 1024;

type Callback = (err?: Error | null) => void;

/** Holds a RETR body in memory until its file stream is attached. */
export class RetrSpool extends Writable {
  private held: Buffer[] = [];
  private target: Writable | null = null;
  /** The write held past HOLD_MAX, completed once attached. */
  private waiting: Callback | null = null;
  /** Bytes held in memory, not yet handed to a file stream. */
  heldBytes = 0;

  constructor() {
    super({ highWaterMark: 64 * 1024 });
    this.on('error', () => undefined); // reported by finish(), see the module comment
  }

  /** Sends the held bytes to `target`, then every later write. */
  attach(target: Writable): void {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.target = target;
    let room = true;
    if (held.length) {
      target.cork();
      for (const chunk of held) room = target.write(chunk);
      target.uncork();
    }
    const cb = this.waiting;
    this.waiting = null;
    if (cb) this.afterWrite(target, room, cb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    const target = this.target;
    if (!target) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes > HOLD_MAX) this.waiting = cb;
      else cb();
      return;
    }
    if (target.destroyed || target.writableEnded) {
      cb(target.errored ?? new Error('message file stream closed before the message ended'));
      return;
    }
    this.afterWrite(target, target.write(chunk), cb);
  }

  /** Completes a write now, or once `target` drained (or failed) when it had no room. */
  private afterWrite(target: Writable, room: boolean, cb: Callback): void {
    if (room) {
      cb();
      return;
    }
    const done = (err?: Error | null): void => {
      target.off('drain', done).off('error', done).off('close', onClose);
      cb(err);
    };
    const onClose = (): void => done(target.errored ?? new Error('message file stream closed'));
    target.on('drain', done).on('error', done).on('close', onClose);
  }
}
