/**
 * Accepting one submitted message into the outbox (invariant 7: 250 means durable). The
 * Outbox calls `accept()`; its failure semantics:
 *
 * 1. DATA is streamed into `outbox/tmp/<id>.eml` while its size, SHA-256, 8-bit bytes and
 *    Message-ID are noted; the source is always read to its end, so the SMTP session can
 *    answer even after a failure or an oversized message (MessageTooLargeError → 552).
 * 2. A copy of a message accepted within the dedupe window is recognised here (clients resend); its temp
 *    file is removed and the earlier id returned. Two identical submissions at the same time:
 *    the second waits for the first's outcome.
 * 3. The `.eml` fsync and the write + fsync of `tmp/<id>.json` run side by side; then the
 *    commit, shared by the acceptances ready at the same time (`commit-group.ts`): the index
 *    rows in one transaction, each `.eml` renamed into `outbox/`, then its `.json`, then one
 *    directory fsync. Only after that does the caller answer 250. The file operations are
 *    `io.ts`'s: two thread-pool hops per message (its fsyncs) plus a share of the directory's.
 * 3a. Before that, the caller's `checkHeader` may refuse the message (a From: that is not the
 *    account's); the refusal is rethrown like any failure below.
 * 4. Any failure removes every file created so far and the row, and rejects (→ 451): nothing
 *    half-written stays. A crash leaves temp files or a lone `.eml`, which start-up deletes.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.js';
import type { CommitGroup, PendingCommit } from './commit-group.js';
import { dedupeKey, HeaderCollector, messageIdOf, newOutboxId, type OutboxEntry, serializeEntry } from './entry.js';
import type { OutboxIo, OutboxWriteHandle } from './io.js';
import type { OutboxIndex } from './rows.js';

/** The message is larger than the account allows: answer 552, nothing was kept. */
export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError';
  constructor(readonly limit: number) {
    super(`message exceeds the maximum size of ${limit} bytes`);
  }
}

/** What the SMTP listener hands over. */
export interface EnqueueRequest {
  account: string;
  /** MAIL FROM ('' for the null sender). */
  from: string;
  /** Every RCPT TO, in order. */
  to: string[];
  /** Refuse (after reading it all) a message larger than this. */
  maxBytes?: number;
  /**
   * Called with the message header once DATA is read, before anything is committed; an error
   * it returns is thrown and nothing is kept.
   */
  checkHeader?: (header: string) => Error | undefined;
}

/** The outcome of `enqueue`. */
export interface EnqueueResult {
  id: string;
  /** True when it was recognised as a copy of `id`, queued or sent before. */
  duplicate: boolean;
}

/** What `accept` needs from the Outbox. */
export interface AcceptContext {
  /** `outbox/` */
  dir: string;
  io: OutboxIo;
  /** Commits the rows, renames and directory fsync of acceptances ready together. */
  commits: CommitGroup;
  index: OutboxIndex;
  clock: Clock;
  log: Logger;
  dedupeWindowMs: number;
  /** Dedupe keys of acceptances in progress → the id they end with (undefined: failed). */
  inflight: Map<string, Promise<string | undefined>>;
}

/** Accept one message (see the module comment): the new entry, or the id it duplicates. */
export async function accept(
  c: AcceptContext,
  req: EnqueueRequest,
  source: AsyncIterable<Buffer>,
): Promise<{ entry: OutboxEntry } | { duplicateOf: string }> {
  const now = c.clock.now();
  const id = newOutboxId(now);
  const tmpEml = path.join(c.dir, 'tmp', `${id}.eml`);
  const tmpJson = path.join(c.dir, 'tmp', `${id}.json`);
  const created: string[] = [];
  let pending: PendingCommit | undefined;
  let claim: { key: string; release: (id: string | undefined) => void } | undefined;
  let eml: OutboxWriteHandle | undefined;
  try {
    const written = await receive(c.io, tmpEml, source, req.maxBytes, () => created.push(tmpEml));
    eml = written.handle;
    const refusal = req.checkHeader?.(written.header);
    if (refusal) throw refusal;
    const entry: OutboxEntry = {
      v: 1,
      id,
      account: req.account,
      from: req.from,
      recipients: req.to.map((address) => ({ address, state: 'pending' })),
      createdAt: now,
      queuedAt: now,
      size: written.size,
      sha256: written.sha256,
      ...(written.messageId ? { messageId: written.messageId } : {}),
      eightBit: written.eightBit,
      tries: 0,
      nextAttempt: now,
    };
    const key = dedupeKey(entry);
    if (key) {
      const prior = c.inflight.get(key);
      const dup =
        (prior ? await prior.catch(() => undefined) : undefined) ?? c.index.findDuplicate(key, now - c.dedupeWindowMs);
      if (dup) {
        await closeQuietly(eml);
        eml = undefined;
        await removeAll(c, created);
        return { duplicateOf: dup };
      }
      let release!: (id: string | undefined) => void;
      c.inflight.set(
        key,
        new Promise((r) => {
          release = r;
        }),
      );
      claim = { key, release };
    }
    // The message's fsync and the envelope's write + fsync run side by side.
    const emlHandle = eml;
    const [synced, jsonWritten] = await Promise.allSettled([
      emlHandle.sync().finally(() => {
        eml = undefined;
        return emlHandle.close();
      }),
      writeNew(c.io, tmpJson, Buffer.from(serializeEntry(entry)), () => created.push(tmpJson)),
    ]);
    if (synced.status === 'rejected') throw synced.reason;
    if (jsonWritten.status === 'rejected') throw jsonWritten.reason;
    // Commit: .eml first, then .json (recovery deletes an .eml without its .json).
    pending = {
      entry,
      dedupe: key,
      moves: [
        [tmpEml, path.join(c.dir, `${id}.eml`)],
        [tmpJson, path.join(c.dir, `${id}.json`)],
      ],
      created,
    };
    await c.commits.commit(pending);
    unclaim(c, claim, id);
    return { entry };
  } catch (err) {
    await closeQuietly(eml);
    unclaim(c, claim, undefined);
    await removeAll(c, created.reverse());
    if (pending?.rowWritten) {
      try {
        c.index.remove(id);
      } catch (e) {
        c.log.error({ id, err: (e as Error).message }, 'could not remove the outbox row of a failed acceptance');
      }
    }
    throw err;
  }
}

/** Write the DATA stream to `file` (not yet fsynced, still open), draining the source whatever happens. */
async function receive(
  io: OutboxIo,
  file: string,
  source: AsyncIterable<Buffer>,
  maxBytes: number | undefined,
  onCreated: () => void,
) {
  const hash = createHash('sha256');
  const headers = new HeaderCollector();
  let size = 0;
  let eightBit = false;
  let failure: unknown;
  let fh: OutboxWriteHandle | undefined;
  try {
    fh = await io.create(file);
    onCreated();
  } catch (err) {
    failure = err;
  }
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (failure || !fh) continue;
      if (maxBytes !== undefined && size > maxBytes) {
        failure = new MessageTooLargeError(maxBytes);
        continue;
      }
      hash.update(chunk);
      headers.update(chunk);
      if (!eightBit) eightBit = chunk.some((b) => b >= 0x80);
      try {
        await fh.write(chunk);
      } catch (err) {
        failure = err;
      }
    }
  } catch (err) {
    failure ??= err;
  }
  if (failure || !fh) {
    await closeQuietly(fh);
    throw failure;
  }
  const header = headers.header;
  return { size, sha256: hash.digest('hex'), eightBit, messageId: messageIdOf(header), header, handle: fh };
}

/** Create `file` with `data`, fsynced and closed. */
async function writeNew(io: OutboxIo, file: string, data: Buffer, onCreated: () => void): Promise<void> {
  const fh = await io.create(file);
  onCreated();
  try {
    await fh.write(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** End a submission's claim on its dedupe key, telling waiting copies how it went. */
function unclaim(
  c: AcceptContext,
  claim: { key: string; release: (id: string | undefined) => void } | undefined,
  id: string | undefined,
): void {
  if (!claim) return;
  c.inflight.delete(claim.key);
  claim.release(id);
}

async function removeAll(c: AcceptContext, files: string[]): Promise<void> {
  for (const f of files) await rm(f, { force: true }).catch(() => undefined);
  await c.io.fsyncDir(c.dir).catch(() => undefined);
}

async function closeQuietly(fh: OutboxWriteHandle | undefined): Promise<void> {
  await fh?.close().catch(() => undefined);
}
