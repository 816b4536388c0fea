/**
 * IMAP pull (RFC 3501, RFC 7162) through imapflow. Per configured folder: EXAMINE it
 * (read-only, so nothing is marked \Seen upstream), compare UIDVALIDITY with the stored cursor,
 * skip the folder at once when CONDSTORE's HIGHESTMODSEQ or UIDNEXT says nothing changed,
 * list the UIDs above the cursor with their sizes, then download the new ones in UID order into
 * the Maildir (INBOX) or the Maildir++ folder, committing in durable batches that advance the
 * cursor in the same transaction.
 *
 * Keys: `i<UIDVALIDITY>_<UID>` within the folder. A UIDVALIDITY change (a server move) is not a deletion:
 * cached and locally deleted messages are matched to the new UIDs by content identity and
 * re-keyed (rekey.ts); only the rest is downloaded; nothing local is deleted, nothing deleted returns.
 *
 * Local deletions with `onLocalDelete: delete-upstream` are applied after each folder's pull:
 * the folder is reopened read-write only then, and the tombstones are marked done after the
 * server confirmed the EXPUNGE.
 *
 * imapflow rules: no IMAP command inside a fetch() loop (it deadlocks) — metadata is collected first;
 * large messages are streamed with download(); small ones arrive whole in one pipelined FETCH.
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { AccountStore, ImapCursor } from '../../cache/message-store.js';
import { AuthError, TemporaryError, ThrottledError } from '../../shared/errors.js';
import { BatchWriter } from '../batch.js';
import { ByteLimit, DECLARED_SLACK, OversizeError, receiveLimit } from '../size-guard.js';
import { withTlsHint } from '../tls-hint.js';
import type { Fetcher, FetchResult, PullOptions, UpstreamEndpoint } from '../types.js';
import { emptyResult } from '../types.js';
import { bufferLimits, createImapClient } from './connect.js';
import { INLINE_MAX, imapKey, rekeyFolder } from './rekey.js';

/** imapflow's codes for a response past `bufferLimits()` (connect.ts); the connection is gone then. */
const OVER_LIMIT_CODES = new Set(['LiteralTooLarge', 'LineTooLarge', 'ResponseTooLarge', 'TooManyTokens']);

/** UIDs per bulk FETCH command. */
const FETCH_CHUNK = 500;

/** Cursor storage the fetcher needs (implemented by the Cache). */
export interface CursorStore {
  getCursor(account: string, folder: string): ImapCursor | undefined;
  setCursor(account: string, folder: string, c: ImapCursor): void;
}

export interface ImapFetcherOptions {
  endpoint: UpstreamEndpoint;
  store: AccountStore;
  cursors: CursorStore;
  log: Logger;
  folders: string[];
  maxMessageSize: number;
}

/** Pulls one IMAP account. */
export class ImapFetcher implements Fetcher {
  constructor(private readonly opts: ImapFetcherOptions) {}

  async pull(pullOpts: PullOptions = {}): Promise<FetchResult> {
    const result = emptyResult();
    // a literal past twice maxMessageSize fails the connection; below that, it is counted and skipped
    const client = createImapClient(
      this.opts.endpoint,
      this.opts.log,
      bufferLimits(2 * this.opts.maxMessageSize + DECLARED_SLACK),
    );
    let overLimit: Error | undefined; // why imapflow dropped the connection, when a response was too large
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'string' && OVER_LIMIT_CODES.has(err.code)) overLimit ??= err;
      this.opts.log.debug({ err: err.message }, 'imap connection error');
    });
    await client.connect().catch((err: unknown) => {
      if (err instanceof AuthError || err instanceof ThrottledError) pullOpts.onLogin?.(); // a refused login counts
      throw withTlsHint(err);
    });
    pullOpts.onLogin?.();
    result.sessions = 1;
    try {
      for (const folder of this.opts.folders) {
        if (pullOpts.signal?.aborted) break;
        await this.pullFolder(client, folder, result, pullOpts);
        await this.deleteUpstream(client, folder, result);
      }
      await client.logout();
    } catch (err) {
      client.close();
      if (overLimit)
        throw new TemporaryError(`IMAP server sent a response over our limits: ${overLimit.message}`, { cause: err });
      throw err;
    }
    return result;
  }

  private async pullFolder(
    client: ImapFlow,
    folder: string,
    result: FetchResult,
    pullOpts: PullOptions,
  ): Promise<void> {
    const { store, cursors, log, maxMessageSize } = this.opts;
    const account = store.accountId;
    const lock = await client.getMailboxLock(folder, { readOnly: true });
    try {
      const mb = client.mailbox;
      if (!mb) throw new Error(`could not open folder ${folder}`);
      const uidValidity = String(mb.uidValidity);
      const modseq = mb.highestModseq !== undefined ? String(mb.highestModseq) : undefined;
      let cursor = cursors.getCursor(account, folder);
      if (cursor && cursor.uidValidity !== uidValidity) {
        // the cursor moves to the new UIDVALIDITY only once re-keying is durable (rekey.ts)
        await rekeyFolder(client, store, log, folder, cursor.uidValidity, uidValidity);
        cursor = { uidValidity, lastUid: 0 };
        cursors.setCursor(account, folder, cursor);
      }
      const lastUid = cursor?.lastUid ?? 0;
      if (cursor && modseq !== undefined && cursor.highestModseq === modseq) {
        log.debug({ folder, modseq }, 'imap folder unchanged (HIGHESTMODSEQ)');
        return;
      }
      if (cursor && mb.exists === 0) {
        cursors.setCursor(account, folder, { ...cursor, highestModseq: modseq });
        return;
      }
      if (cursor && mb.uidNext !== undefined && mb.uidNext <= lastUid + 1 && modseq === undefined) return;

      // 1. Metadata of everything above the cursor (no other command inside this loop).
      const candidates: Array<{ uid: number; size: number; key: string }> = [];
      if (mb.exists > 0) {
        for await (const m of client.fetch(`${lastUid + 1}:*`, { uid: true, size: true }, { uid: true })) {
          if (m.uid <= lastUid) continue; // `n:*` always returns the last message
          candidates.push({ uid: m.uid, size: m.size ?? 0, key: imapKey(uidValidity, m.uid) });
        }
      }
      candidates.sort((a, b) => a.uid - b.uid);
      const wanted = candidates.filter((c) => {
        if (store.has(folder, c.key)) return false;
        if (c.size > maxMessageSize) {
          result.skipped.push({
            folder,
            key: c.key,
            size: c.size,
            reason: `larger than maxMessageSize (${maxMessageSize} bytes)`,
          });
          log.warn({ folder, uid: c.uid, size: c.size, maxMessageSize }, 'message skipped: larger than maxMessageSize');
          return false;
        }
        return true;
      });
      log.debug({ folder, uidValidity, lastUid, listed: candidates.length, new: wanted.length }, 'imap listing');

      // 2. Download; the cursor advances, in the same transaction as each committed batch, to
      //    the highest UID below which every listed message is stored or deliberately passed over.
      const done = new Set<number>();
      let donePrefix = 0; // index into `candidates` of the first UID not yet done
      let cursorUid = lastUid;
      const maxListed = candidates.at(-1)?.uid ?? lastUid;
      const markDone = (uid: number) => {
        done.add(uid);
        for (let next = candidates[donePrefix]; next && done.has(next.uid); next = candidates[donePrefix]) donePrefix++;
      };
      const batch = new BatchWriter(store, {
        inTransaction: () => {
          const lastDone = candidates[donePrefix - 1]; // undefined while donePrefix is 0
          if (lastDone) cursorUid = Math.max(cursorUid, lastDone.uid);
          const complete = cursorUid >= maxListed;
          cursors.setCursor(account, folder, {
            uidValidity,
            lastUid: cursorUid,
            highestModseq: complete ? modseq : cursor?.highestModseq,
          });
        },
      });
      const wantedUids = new Set(wanted.map((w) => w.uid));
      const sizeOf = new Map(wanted.map((w) => [w.uid, w.size]));
      for (const c of candidates) if (!wantedUids.has(c.uid)) markDone(c.uid);
      const progress = { folder, total: wanted.length, done: 0, bytes: 0 };
      pullOpts.onProgress?.({ ...progress });
      const storeOne = async (uid: number, produce: (sink: Writable) => Promise<number>) => {
        let bytes = 0;
        try {
          await batch.write(folder, imapKey(uidValidity, uid), async (sink) => {
            bytes = await produce(sink);
          });
        } catch (err) {
          if (!(err instanceof OversizeError)) throw err;
          // the partial file is gone (batch.write); the cursor moves past it, so no pull fetches it again
          result.skipped.push({ folder, key: imapKey(uidValidity, uid), size: err.received, reason: err.reason });
          log.warn({ folder, uid, declared: err.declared, limit: err.limit }, `message skipped: ${err.reason}`);
          markDone(uid);
          return;
        }
        progress.done++;
        progress.bytes += bytes;
        pullOpts.onProgress?.({ ...progress });
        markDone(uid);
      };

      try {
        await batch.drain(async () => {
          for (let i = 0; i < wanted.length && !pullOpts.signal?.aborted; i += FETCH_CHUNK) {
            const chunk = wanted.slice(i, i + FETCH_CHUNK);
            const small = chunk.filter((c) => c.size <= INLINE_MAX).map((c) => c.uid);
            if (small.length) {
              // One pipelined FETCH for the chunk; each body is written as it arrives (no IMAP
              // command inside this loop).
              for await (const m of client.fetch(small.join(','), { uid: true, source: true }, { uid: true })) {
                const { source } = m;
                if (!source || done.has(m.uid) || !wantedUids.has(m.uid)) continue;
                const declared = sizeOf.get(m.uid);
                await storeOne(m.uid, (sink) => {
                  const limit = receiveLimit(declared, maxMessageSize);
                  if (source.length > limit) throw new OversizeError(declared, limit, source.length);
                  return writeAll(sink, source);
                });
                if (pullOpts.signal?.aborted) break;
              }
            }
            for (const c of chunk) {
              if (pullOpts.signal?.aborted || done.has(c.uid)) continue;
              if (c.size <= INLINE_MAX) {
                log.warn({ folder, uid: c.uid }, 'message not returned by FETCH (expunged meanwhile?)');
                markDone(c.uid);
                continue;
              }
              const limit = receiveLimit(c.size, maxMessageSize);
              // maxBytes: imapflow stops asking for chunks one byte past the limit
              const dl = await client.download(String(c.uid), undefined, { uid: true, maxBytes: limit + 1 });
              const content = 'content' in dl ? dl.content : undefined;
              if (!content) {
                log.warn({ folder, uid: c.uid }, 'message vanished before download');
                markDone(c.uid);
                continue;
              }
              await storeOne(c.uid, async (sink) => {
                const counted = new ByteLimit(c.size, limit);
                await pipeline(content, counted, sink, { end: false });
                return counted.passed;
              });
            }
          }
        });
      } finally {
        result.newMessages += batch.committedCount;
        result.bytes += batch.committedBytes;
      }
    } finally {
      lock.release();
    }
  }

  /**
   * Messages deleted locally with `onLocalDelete: delete-upstream`: \Deleted + EXPUNGE (UID
   * EXPUNGE when the server has UIDPLUS), with the folder opened read-write only when there is
   * something to delete. Requests re-keyed after a UIDVALIDITY change are carried out under the
   * new key; keys still of an older UIDVALIDITY matched no message upstream and are dropped.
   */
  private async deleteUpstream(client: ImapFlow, folder: string, result: FetchResult): Promise<void> {
    const { store, log } = this.opts;
    const pending = store.pendingUpstreamDeletes(folder);
    if (!pending.length) return;
    const lock = await client.getMailboxLock(folder);
    try {
      const prefix = `i${String(client.mailbox ? client.mailbox.uidValidity : '')}_`;
      const current = pending.filter((k) => k.startsWith(prefix));
      const stale = pending.filter((k) => !k.startsWith(prefix));
      if (stale.length)
        log.warn(
          { folder, keys: stale.length },
          'locally deleted messages cannot be deleted upstream: UIDVALIDITY changed and no message matches them',
        );
      if (current.length) {
        const uids = current.map((k) => k.slice(prefix.length)).join(',');
        if (!(await client.messageDelete(uids, { uid: true })))
          throw new Error(`IMAP delete of ${current.length} messages in ${folder} failed`);
        result.deletedUpstream += current.length;
      }
      store.markUpstreamDeleted(folder, pending);
    } finally {
      lock.release();
    }
  }
}

/** Write a buffer honouring backpressure; returns its length. */
async function writeAll(sink: Writable, buf: Buffer): Promise<number> {
  if (!sink.write(buf))
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        sink.off('error', onError);
        resolve();
      };
      const onError = (e: Error) => {
        sink.off('drain', onDrain);
        reject(e);
      };
      sink.once('drain', onDrain);
      sink.once('error', onError);
    });
  return buf.length;
}
