/**
 * One message being written into an account's Maildir: the first half of the write path of
 * `account-store.ts`. The upstream bytes stream into a temp file of `tmp/` (created ahead of
 * need, `tmp-pool.ts`); `finish()` ends the stream (its last writev), checks that every byte was
 * written, fsyncs and closes the file, names it with S= and W= (counted while writing) and
 * renames it into `new/` without a directory fsync (the commit does that once per batch), then
 * hands it to its owner's open batch. Raw descriptors: four thread-pool jobs per message
 * (writev, fsync, close, rename), no fstat (the written count is known).
 *
 * Invariants:
 * - A message is finished at most once; `abort()` after `finish()` waits for it and leaves the
 *   message in the batch.
 * - Whatever fails (write, size check, fsync, rename), the temp file is removed and the key
 *   released, so it can be downloaded again; a crash leaves only files recovery understands.
 * - A write error never becomes an unhandled 'error' event: it surfaces through `finish()`.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Clock } from '../shared/clock.js';
import { closeFd, fsyncFd } from '../shared/durable-fs.js';
import type { MessageRow } from './ledger.js';
import { formatName, MessageFileWriter, uidl } from './maildir.js';
import type { CachedMessage, PendingMessage } from './message-store.js';
import { discardTmp, type TmpFile } from './tmp-pool.js';

/** Where a finished or thrown-away message is reported: the account store's open batch. */
export interface PendingOwner {
  /** The message's file is in `new/`; it belongs to the batch until the next commit. */
  addFinished(msg: CachedMessage, newDir: string): void;
  /** The message was thrown away; its key (and upstream UIDL) may be begun again. */
  release(folder: string, key: string, uidl?: string): void;
}

/** What `begin()` prepared: the UID, the key and the open temp file. */
export interface PendingInit {
  uid: number;
  key: string;
  folder: string;
  /** The folder's Maildir directory. */
  dir: string;
  /** The open temp file in `tmp/`. */
  tmp: TmpFile;
  /** The upstream UIDL it will serve (`uidl-mode.ts`); absent: the local UID in hex. */
  uidl?: string;
}

/** A message being written into `tmp/`. */
export class PendingWrite implements PendingMessage {
  readonly uid: number;
  readonly key: string;
  readonly stream: MessageFileWriter;
  private finishing?: Promise<CachedMessage>;
  private aborted = false;
  private closed = false;

  constructor(
    private readonly owner: PendingOwner,
    private readonly clock: Clock,
    private readonly p: PendingInit,
  ) {
    this.uid = p.uid;
    this.key = p.key;
    this.stream = new MessageFileWriter(p.tmp.fd);
    // A write error (ENOSPC, EIO) may come after the writer's producer stopped listening; it
    // surfaces through finish(), never as an unhandled 'error' event that ends the process.
    this.stream.on('error', () => undefined);
  }

  finish(): Promise<CachedMessage> {
    if (this.aborted) return Promise.reject(new Error(`message ${this.key} was aborted`));
    this.finishing ??= this.doFinish();
    return this.finishing;
  }

  async abort(): Promise<void> {
    if (this.finishing) {
      // Already finishing or finished: the message belongs to the batch (or failed and was discarded).
      await this.finishing.catch(() => undefined);
      return;
    }
    if (this.aborted) return;
    this.aborted = true;
    await this.discard();
  }

  private async doFinish(): Promise<CachedMessage> {
    const { p, stream } = this;
    let msg: CachedMessage;
    try {
      if (!stream.writableEnded) stream.end();
      await finished(stream);
      if (stream.written !== stream.bytes)
        throw new Error(`temp file has ${stream.written} bytes, ${stream.bytes} were written`);
      await fsyncFd(p.tmp.fd);
      this.closed = true;
      await closeFd(p.tmp.fd);
      const storedAt = this.clock.now();
      const name = formatName({
        storedSec: Math.floor(storedAt / 1000),
        uid: p.uid,
        size: stream.bytes,
        wsize: stream.wsize,
        key: p.key,
        ...(p.uidl === undefined ? {} : { uidl: p.uidl }),
      });
      const newDir = path.join(p.dir, 'new');
      await rename(p.tmp.path, path.join(newDir, name));
      msg = {
        uid: p.uid,
        uidl: p.uidl ?? uidl(p.uid),
        folder: p.folder,
        path: path.join(newDir, name),
        size: stream.bytes,
        wsize: stream.wsize,
        key: p.key,
        flags: '',
        storedAt,
        hasEoh: stream.hasEoh,
      };
      this.owner.addFinished(msg, newDir);
    } catch (err) {
      await this.discard();
      throw err;
    }
    return msg;
  }

  private async discard(): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    await this.stream.settled(); // a raw descriptor closed under a writev could be reused meanwhile
    if (!this.closed) {
      this.closed = true;
      await discardTmp(this.p.tmp);
    } else await rm(this.p.tmp.path, { force: true }).catch(() => undefined);
    this.owner.release(this.p.folder, this.p.key, this.p.uidl);
  }
}

/** The ledger row of a finished message (its file still in `new/`). */
export function rowOf(account: string, m: CachedMessage): MessageRow {
  return {
    account,
    uid: m.uid,
    folder: m.folder,
    file: `new/${path.basename(m.path)}`,
    size: m.size,
    wsize: m.wsize,
    key: m.key,
    flags: m.flags,
    storedAt: m.storedAt,
    eoh: m.hasEoh === undefined ? null : m.hasEoh ? 1 : 0,
    // a servable upstream UIDL never looks like a local one (uidl-mode.ts)
    uidl: m.uidl === uidl(m.uid) ? null : m.uidl,
  };
}
