/**
 * IMAP pull (RFC 3501, RFC 7162) through imapflow. One LIST gives the folders to pull (folder-set.ts;
 * a configured name the upstream lacks is reported, not fatal), and the cached folders follow it
 * first (mirror.ts `reconcileFolders`: those gone upstream removed, older spellings renamed). Per
 * folder: EXAMINE it (read-only, so nothing is marked \Seen upstream), compare UIDVALIDITY with
 * the stored cursor, skip the folder at once when CONDSTORE's HIGHESTMODSEQ or UIDNEXT says
 * nothing changed, list the UIDs above the cursor with one UID SEARCH, then download the new
 * ones in UID order into the Maildir (INBOX) or the Maildir++ folder with one `UID FETCH a:b
 * (UID RFC822.SIZE BODY.PEEK[]<0.INLINE_MAX>)` per chunk of messages, committing in durable
 * batches that advance the cursor in the same transaction. The wire and CPU budget is in docs/benchmarks.md.
 *
 * Keys: `i<UIDVALIDITY>_<UID>` within the folder. A UIDVALIDITY change (a server move) is not a deletion:
 * cached and locally deleted messages are matched to the new UIDs by content identity and
 * re-keyed (rekey.ts); only the rest is downloaded; nothing local is deleted, nothing deleted returns.
 *
 * Local deletions with `onLocalDelete: delete-upstream` are applied after each folder's pull:
 * the folder is reopened read-write only then, and the tombstones are marked done after the
 * server confirmed the EXPUNGE.
 *
 * IMAP accounts with a local IMAP server (`changes`): the change journal is replayed upstream
 * first, on the same connection (journal-replay.ts); the upstream's folders, and after each
 * folder's pull its flags and expunges, come back into the cache (mirror.ts; QRESYNC is enabled
 * when offered, for its VANISHED). The folder's HIGHESTMODSEQ is stored only after its mirror
 * applied them, since the next mirror asks only for what changed after it. A folder with a
 * journal entry still inflight (applied upstream or not: unknown) is not pulled.
 *
 * imapflow rules: no IMAP command inside a fetch() loop (it deadlocks). Memory stays bounded
 * without knowing sizes beforehand: the bulk FETCH asks for at most INLINE_MAX bytes of each body;
 * a message that fills that window is streamed with download() after the loop (its first
 * INLINE_MAX bytes cross the wire twice). A size declared over maxMessageSize is skipped and
 * reported; a body past its receive limit (size-guard.ts) is cut off.
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { UpstreamMirror } from '../../cache/mailboxes.js';
import type { AccountStore, ImapCursor } from '../../cache/message-store.js';
import { AuthError, TemporaryError, ThrottledError } from '../../shared/errors.js';
import { BatchWriter } from '../batch.js';
import { ByteLimit, DECLARED_SLACK, OversizeError, receiveLimit } from '../size-guard.js';
import { withTlsHint } from '../tls-hint.js';
import type { Fetcher, FetchResult, PullOptions, UpstreamEndpoint } from '../types.js';
import { emptyResult } from '../types.js';
import { bufferLimits, createImapClient } from './connect.js';
import { fetchChunks, writeAll } from './fetch-chunks.js';
import { folderSet } from './folder-set.js';
import { type ImapChanges, replayJournal } from './journal-replay.js';
import { listUpstream, mirrorFolder, reconcileFolders } from './mirror.js';
import { isMissingFolder, upstreamPath } from './names.js';
import { INLINE_MAX, imapKey, rekeyFolder } from './rekey.js';

/** imapflow's codes for a response past `bufferLimits()` (connect.ts); the connection is gone then. */
const OVER_LIMIT_CODES = new Set(['LiteralTooLarge', 'LineTooLarge', 'ResponseTooLarge', 'TooManyTokens']);

/** Messages per bulk FETCH command. */
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
  /** The account's change journal and cache views: replay before the pull, upstream changes back after. */
  changes?: ImapChanges;
  /** Without `changes`: cached folders still follow the upstream's (mirror.ts `reconcileFolders`). */
  folderLife?: UpstreamMirror;
}

/** Pulls one IMAP account. */
export class ImapFetcher implements Fetcher {
  constructor(private readonly opts: ImapFetcherOptions) {}

  async pull(pullOpts: PullOptions = {}): Promise<FetchResult> {
    const result = emptyResult();
    // a literal past twice maxMessageSize fails the connection; below that, it is counted and skipped
    // QRESYNC (when offered) is what lets the mirror learn expunges without listing every UID
    const client = createImapClient(this.opts.endpoint, this.opts.log, {
      ...bufferLimits(2 * this.opts.maxMessageSize + DECLARED_SLACK),
      qresync: true,
    });
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
      const changes = this.opts.changes;
      if (changes) {
        const r = await replayJournal(client, {
          ...changes,
          cursors: this.opts.cursors,
          log: this.opts.log,
          signal: pullOpts.signal,
        });
        result.replayed = r.applied;
        if (!client.usable) throw new TemporaryError(`connection lost during the journal replay: ${r.stopped ?? ''}`);
      }
      for (const folder of await this.folderSet(client, result)) {
        if (pullOpts.signal?.aborted) break;
        if (changes?.store.unresolvedChanges(folder)) {
          this.opts.log.info(
            { folder },
            'folder not pulled: a local change to it may or may not have reached the upstream',
          );
          continue;
        }
        const account = this.opts.store.accountId;
        const before = this.opts.cursors.getCursor(account, folder);
        const mirrored = !!changes && !!before;
        const settled = await this.pullFolder(client, folder, result, pullOpts, mirrored);
        if (settled === false) continue;
        if (changes && before) {
          const after = this.opts.cursors.getCursor(account, folder);
          const since = after?.uidValidity === before.uidValidity ? before.highestModseq : undefined;
          const c = await mirrorFolder(client, changes.store, this.opts.log, folder, since);
          result.upstreamFlags = (result.upstreamFlags ?? 0) + c.flags;
          result.upstreamExpunges = (result.upstreamExpunges ?? 0) + c.expunged;
          // only now: the next mirror asks for what changed since this HIGHESTMODSEQ
          if (after && settled !== undefined)
            this.opts.cursors.setCursor(account, folder, { ...after, highestModseq: settled });
        }
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

  /**
   * The folders this pull downloads (folder-set.ts), from the one LIST of the pull; an IMAP
   * account served locally shows exactly these, after the cache followed the LIST (folders gone
   * upstream removed, old spellings renamed: `reconcileFolders`). Configured names the upstream
   * lacks are logged once and reported in the result.
   */
  private async folderSet(client: ImapFlow, result: FetchResult): Promise<string[]> {
    const { changes, log } = this.opts;
    const upstream = await listUpstream(client);
    const life = changes?.store ?? this.opts.folderLife;
    const waiting = life ? await reconcileFolders(client, life, upstream, log) : new Set<string>();
    const set = folderSet(upstream, this.opts.folders, changes && { localFolders: changes.store.localFolders() });
    const pulled = new Set(set.pull.map((f) => f.name).filter((n) => !waiting.has(n)));
    if (changes)
      await changes.store.noteUpstreamFolders(
        upstream.map((f) => ({
          name: f.name,
          pulled: pulled.has(f.name),
          ...(f.specialUse ? { specialUse: f.specialUse } : {}),
        })),
      );
    if (set.missing.length) {
      result.missingFolders = set.missing;
      log.warn(
        { folders: set.missing },
        'configured folders not found upstream, not pulled (incoming.folders); the others are',
      );
    }
    return [...pulled];
  }

  /**
   * Pulls one folder; false when it went away upstream since the LIST. `mirrored`: the mirror
   * follows, so the cursor keeps its HIGHESTMODSEQ (what the mirror asks changes since) and the
   * new one is returned, to be stored once the mirror applied them; a pull or mirror cut short
   * asks again since the old one.
   */
  private async pullFolder(
    client: ImapFlow,
    folder: string,
    result: FetchResult,
    pullOpts: PullOptions,
    mirrored: boolean,
  ): Promise<string | undefined | false> {
    const { store, cursors, log, maxMessageSize } = this.opts;
    const account = store.accountId;
    let lock: Awaited<ReturnType<ImapFlow['getMailboxLock']>>;
    try {
      lock = await client.getMailboxLock(upstreamPath(client, folder), { readOnly: true });
    } catch (err) {
      if (!isMissingFolder(err)) throw err;
      log.warn({ folder }, 'folder deleted upstream since the listing: not pulled');
      return false;
    }
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
        if (mirrored) return modseq;
        cursors.setCursor(account, folder, { ...cursor, highestModseq: modseq });
        return;
      }
      if (cursor && mb.uidNext !== undefined && mb.uidNext <= lastUid + 1 && modseq === undefined) return;

      // 1. The UIDs above the cursor: one UID SEARCH, not a FETCH response per message. Sizes
      //    come with the bodies (step 2).
      const listed = mb.exists > 0 ? await searchUids(client, folder, lastUid) : [];
      const wanted = listed.filter((uid) => !store.has(folder, imapKey(uidValidity, uid)));
      log.debug({ folder, uidValidity, lastUid, listed: listed.length, new: wanted.length }, 'imap listing');

      // 2. Download; the cursor advances, in the same transaction as each committed batch, to
      //    the highest UID below which every listed message is stored or deliberately passed over.
      const done = new Set<number>();
      let donePrefix = 0; // index into `listed` of the first UID not yet done
      let cursorUid = lastUid;
      const maxListed = listed.at(-1) ?? lastUid;
      const markDone = (uid: number) => {
        done.add(uid);
        for (let next = listed[donePrefix]; next !== undefined && done.has(next); next = listed[donePrefix])
          donePrefix++;
      };
      let settled: string | undefined; // the HIGHESTMODSEQ to store after the mirror
      const batch = new BatchWriter(store, {
        inTransaction: () => {
          const lastDone = listed[donePrefix - 1]; // undefined while donePrefix is 0
          if (lastDone !== undefined) cursorUid = Math.max(cursorUid, lastDone);
          const complete = cursorUid >= maxListed;
          if (complete && mirrored) settled = modseq;
          cursors.setCursor(account, folder, {
            uidValidity,
            lastUid: cursorUid,
            highestModseq: complete && !mirrored ? modseq : cursor?.highestModseq,
          });
        },
      });
      const wantedUids = new Set(wanted);
      for (const uid of listed) if (!wantedUids.has(uid)) markDone(uid);
      const progress = { folder, total: wanted.length, done: 0, bytes: 0 };
      pullOpts.onProgress?.({ ...progress });
      const skip = (uid: number, size: number, reason: string) => {
        result.skipped.push({ folder, key: imapKey(uidValidity, uid), size, reason });
        markDone(uid);
      };
      const storeOne = async (uid: number, produce: (sink: Writable) => Promise<number>) => {
        let bytes = 0;
        try {
          await batch.write(folder, imapKey(uidValidity, uid), async (sink) => {
            bytes = await produce(sink);
          });
        } catch (err) {
          if (!(err instanceof OversizeError)) throw err;
          // the partial file is gone (batch.write); the cursor moves past it, so no pull fetches it again
          log.warn({ folder, uid, declared: err.declared, limit: err.limit }, `message skipped: ${err.reason}`);
          skip(uid, err.received, err.reason);
          return;
        }
        progress.done++;
        progress.bytes += bytes;
        pullOpts.onProgress?.({ ...progress });
        markDone(uid);
      };

      try {
        await batch.drain(async () => {
          for (const chunk of fetchChunks(listed, wantedUids, FETCH_CHUNK)) {
            if (pullOpts.signal?.aborted) break;
            // One pipelined FETCH per chunk (UID ranges), size and body together; the body only up
            // to INLINE_MAX, so memory stays bounded: a message that fills the window is streamed
            // after this FETCH (no IMAP command inside its loop).
            const large: Array<{ uid: number; size: number | undefined }> = [];
            const query = { uid: true, size: true, source: { start: 0, maxLength: INLINE_MAX } };
            for await (const m of client.fetch(chunk.set, query, { uid: true })) {
              const { source } = m;
              if (!source || done.has(m.uid) || !wantedUids.has(m.uid)) continue;
              const declared = m.size;
              if (declared !== undefined && declared > maxMessageSize) {
                log.warn(
                  { folder, uid: m.uid, size: declared, maxMessageSize },
                  'message skipped: larger than maxMessageSize',
                );
                skip(m.uid, declared, `larger than maxMessageSize (${maxMessageSize} bytes)`);
                continue;
              }
              const limit = receiveLimit(declared, maxMessageSize);
              // exactly the window: maybe more to come (a server ignoring the partial sent it all)
              if (source.length === INLINE_MAX && source.length <= limit) {
                large.push({ uid: m.uid, size: declared });
                continue;
              }
              await storeOne(m.uid, (sink) => {
                if (source.length > limit) throw new OversizeError(declared, limit, source.length);
                return writeAll(sink, source);
              });
              if (pullOpts.signal?.aborted) break;
            }
            const streamed = new Set(large.map((l) => l.uid));
            for (const uid of chunk.uids)
              if (!done.has(uid) && !streamed.has(uid) && !pullOpts.signal?.aborted) {
                log.warn({ folder, uid }, 'message not returned by FETCH (expunged meanwhile?)');
                markDone(uid);
              }
            for (const c of large) {
              if (pullOpts.signal?.aborted) break;
              const limit = receiveLimit(c.size, maxMessageSize);
              // maxBytes: imapflow stops asking for chunks one byte past the limit
              const dl = await client.download(String(c.uid), undefined, {
                uid: true,
                maxBytes: limit + 1,
                chunkSize: INLINE_MAX,
              });
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
      return settled;
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
    const lock = await client.getMailboxLock(upstreamPath(client, folder));
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

/**
 * The UIDs above `lastUid`, ascending, by one `UID SEARCH UID n:*` (`UID SEARCH ALL` without a
 * cursor). `n:*` always matches the last message, so UIDs at or below the cursor are dropped.
 */
async function searchUids(client: ImapFlow, folder: string, lastUid: number): Promise<number[]> {
  const found = await client.search(lastUid > 0 ? { uid: `${lastUid + 1}:*` } : { all: true }, { uid: true });
  if (!Array.isArray(found)) throw new TemporaryError(`IMAP UID SEARCH in ${folder} failed`);
  const uids = found.filter((u) => u > lastUid).sort((a, b) => a - b);
  return uids.filter((u, i) => i === 0 || u !== uids[i - 1]);
}
