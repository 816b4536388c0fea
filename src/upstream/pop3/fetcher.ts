/**
 * POP3 pull (RFC 1939): diff the server's UIDL list against the cache, RETR each new message
 * straight into the Maildir's tmp/, commit in durable batches, and only then — when the account
 * does not keep mail on the server — DELE what is durable (invariant 3: a crash never loses mail). Sessions
 * loop until the server offers nothing new (Gmail shows ~250 messages per session).
 *
 * Gmail counts a message as popped only when the session that RETRed it ends with a clean QUIT,
 * and offers it again otherwise (docs/pitfalls.md#gmail-pop-window). So when mail is kept on the
 * server, the keys about to be RETRed are noted in state.db first and cleared once QUIT succeeded;
 * a noted key the server offers again is cached already and is RETRed once more, into nothing,
 * so that the window moves on. A session counts as progress when it stored a message or settled
 * (DELE or re-RETR, then a clean QUIT) a key not settled earlier in the pull.
 * Messages deleted locally with `onLocalDelete: delete-upstream` (tombstones marked pending)
 * get a DELE in the same session; they are recorded as deleted upstream once QUIT succeeded.
 *
 * Keys: `p` + 24 hex digits of sha256(UIDL) (UIDLs may exceed 70 characters; keys must be file-name
 * safe). A UIDL listed twice in one session gets an occurrence suffix before hashing, so
 * neither copy is lost nor fetched twice. Each message's UIDL goes to `store.begin()`, which may
 * serve it locally (cache/uidl-mode.ts); a repeated one does not, so it is served only once.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { AccountStore, CachedMessage, PendingMessage } from '../../cache/message-store.js';
import { INBOX } from '../../cache/message-store.js';
import { type Clock, systemClock } from '../../shared/clock.js';
import { BatchWriter } from '../batch.js';
import { OversizeError, receiveLimit } from '../size-guard.js';
import type { Fetcher, FetchProgress, FetchResult, PullOptions, UpstreamEndpoint } from '../types.js';
import { emptyResult } from '../types.js';
import { Pop3Client, pop3Login } from './client.js';
import { adoptRenumbered, looksRenumbered } from './renumbering.js';
import { HOLD_MAX, RetrSpool } from './spool.js';

/** How many sessions one pull may use at most (a safety net against a server that never settles). */
const MAX_SESSIONS = 1000;
/**
 * How far RETR runs ahead of the disk: at most RETR_AHEAD messages sent for and not yet handed
 * to the batch, costing at most RETR_AHEAD_BYTES of memory, where a message costs what it may
 * hold (its receive limit, at most HOLD_MAX: past that a reply waits for its file). Replies
 * wait in memory (spool.ts) meanwhile, so finishes and commits do not stall the wire.
 */
const RETR_AHEAD = 512;
const RETR_AHEAD_BYTES = 16 * 1024 * 1024;

/** Temp files opened ahead of the message being written. */
const OPEN_AHEAD = 4;

type Wanted = { msg: number; key: string; uidl?: string; size: number; limit: number };

export interface Pop3FetcherOptions {
  endpoint: UpstreamEndpoint;
  store: AccountStore;
  log: Logger;
  /** false: delete upstream once the local copy is durable. */
  keepOnServer: boolean;
  /** Larger messages are skipped and reported, never truncated. */
  maxMessageSize: number;
  clock?: Clock;
}

/** The cache key of a POP3 message. */
export function pop3Key(uidl: string): string {
  return `p${createHash('sha256').update(uidl, 'latin1').digest('hex').slice(0, 24)}`;
}

/**
 * Assigns keys to a UIDL listing, disambiguating UIDLs the server lists more than once; `uidl`
 * is kept for the first message listed with it only.
 */
export function keysForListing(
  listing: Array<{ msg: number; uidl: string }>,
): Array<{ msg: number; key: string; uidl?: string }> {
  const seen = new Map<string, number>();
  return listing.map(({ msg, uidl }) => {
    const n = (seen.get(uidl) ?? 0) + 1;
    seen.set(uidl, n);
    return n === 1 ? { msg, key: pop3Key(uidl), uidl } : { msg, key: pop3Key(`${uidl}\u0000${n}`) };
  });
}

/** A sink for a message RETRed again only so that the server counts it as popped. */
function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}

/** Pulls one POP3 account. */
export class Pop3Fetcher implements Fetcher {
  constructor(private readonly opts: Pop3FetcherOptions) {}

  async pull(pullOpts: PullOptions = {}): Promise<FetchResult> {
    // Messages an earlier pull finished but could not commit (the disk was full) are still
    // pending, and has() already counts them: commit them first, so that they are neither
    // deleted before they are durable nor sent a second DELE by this session's first commit.
    if (this.opts.store.pendingCount > 0) await this.opts.store.commit();
    const result = emptyResult();
    const skippedKeys = new Set<string>();
    const settled = new Set<string>(); // cached keys DELEd or re-RETRed, then QUIT, in this pull
    // one progress across sessions: each session adds what it found to the total
    const progress: FetchProgress = { folder: INBOX, total: 0, done: 0, bytes: 0 };
    for (let s = 0; s < MAX_SESSIONS; s++) {
      const fetched = await this.session(result, skippedKeys, settled, progress, pullOpts);
      if (fetched === 0 || pullOpts.signal?.aborted) break;
    }
    return result;
  }

  /** One POP3 session; returns how many new messages it stored plus the cached keys it settled first. */
  private async session(
    result: FetchResult,
    skippedKeys: Set<string>,
    settled: Set<string>,
    progress: FetchProgress,
    pullOpts: PullOptions,
  ): Promise<number> {
    const { endpoint, store, log, keepOnServer, maxMessageSize } = this.opts;
    const client = await Pop3Client.connect({
      host: endpoint.host,
      port: endpoint.port,
      tls: endpoint.tls,
      ca: endpoint.ca,
      timeoutMs: endpoint.timeoutMs,
      connectTimeoutMs: endpoint.connectTimeoutMs,
      log: log.child({ component: 'pop3-client' }),
    });
    result.sessions++;
    pullOpts.onLogin?.();
    let stored = 0;
    let abandoned: { key: string; msg: number; err: OversizeError } | undefined;
    try {
      await pop3Login(client, endpoint);
      const listing = keysForListing(await client.uidl());
      const sizes = await client.list();
      const kept = await this.adoptIfRenumbered(client, listing, sizes);
      const msgByKey = new Map(listing.map((l) => [l.key, l.msg]));
      const toDelete: number[] = [];
      // RETRed before in a session that never QUIT cleanly: Gmail offers these again
      const unconfirmed = keepOnServer ? store.unconfirmedRetrievals() : new Set<string>();
      const again: Array<{ msg: number; key: string }> = [];
      const settling: string[] = [];
      // Deleted locally with onLocalDelete: delete-upstream (tombstoned, so has() is true).
      const pendingDeletes = new Set(store.pendingUpstreamDeletes(INBOX));
      const localDeletes: string[] = [];
      const wanted: Wanted[] = [];
      const oversized = store.oversized(INBOX);
      for (const { msg, key, uidl } of listing) {
        if (store.has(INBOX, key)) {
          // durable already (a DELE that never reached QUIT), or deleted locally
          if (!keepOnServer || pendingDeletes.has(key)) toDelete.push(msg);
          if (pendingDeletes.has(key)) localDeletes.push(key);
          if (unconfirmed.has(key)) again.push({ msg, key });
          if (!keepOnServer || pendingDeletes.has(key) || unconfirmed.has(key)) settling.push(key);
          continue;
        }
        const size = sizes.get(msg) ?? 0;
        const limit = receiveLimit(sizes.get(msg), maxMessageSize);
        // abandoned before for sending more than its limit: tried again only once the limit grew
        const over = oversized.get(key);
        if (size > maxMessageSize || (over && limit <= over.limit)) {
          if (!skippedKeys.has(key)) {
            skippedKeys.add(key);
            const reason = over
              ? `sent more than ${over.limit} bytes (declared ${size})`
              : `larger than maxMessageSize (${maxMessageSize} bytes)`;
            result.skipped.push({ folder: INBOX, key, size: over ? over.received : size, reason });
            log.warn({ n: msg, size, maxMessageSize }, `message skipped: ${reason}`);
          }
          continue;
        }
        wanted.push({ msg, key, size, limit, ...(uidl === undefined ? {} : { uidl }) });
      }
      log.debug({ offered: listing.length, new: wanted.length, deletable: toDelete.length }, 'pop3 listing');
      if (toDelete.length) {
        await client.deleMany(toDelete);
        result.deletedUpstream += toDelete.length;
      }
      // noted before any RETR, so a crash before QUIT leaves them to RETR again (module comment)
      if (keepOnServer)
        store.noteRetrievals(
          wanted.map((w) => w.key),
          false,
        );
      const batch = new BatchWriter(store, {
        afterCommit: async (committed: CachedMessage[]) => {
          if (keepOnServer) return;
          const msgs = committed.map((m) => msgByKey.get(m.key)).filter((n): n is number => n !== undefined);
          await client.deleMany(msgs);
          result.deletedUpstream += msgs.length;
        },
      });
      if (wanted.length || progress.total === 0) {
        progress.total += wanted.length;
        pullOpts.onProgress?.({ ...progress });
      }
      // Whatever happens, what was downloaded is made durable (drain commits it). Its DELEs
      // follow if the connection still works; otherwise the next session sends them.
      try {
        await batch.drain(() =>
          this.download(client, batch, wanted, sizes, kept, progress, pullOpts, (a) => {
            abandoned = a;
          }),
        );
      } finally {
        stored = batch.committedCount;
        result.newMessages += batch.committedCount;
        result.bytes += batch.committedBytes;
      }
      await Promise.all(again.map((a) => client.retr(a.msg, discard()))); // pipelined when offered
      await client.quit(); // UPDATE state: the DELEs (and Gmail's "popped") take effect only now
      store.markUpstreamDeleted(INBOX, localDeletes);
      if (keepOnServer) store.noteRetrievals([...wanted.map((w) => w.key), ...again.map((a) => a.key)], true);
      for (const key of settling) {
        if (settled.has(key)) continue;
        settled.add(key);
        stored++;
      }
    } catch (err) {
      client.close();
      if (!(err instanceof OversizeError) || !abandoned) throw err;
      // the connection is out of step mid-body: note the message, go on in a new session
      const { key, msg, err: over } = abandoned;
      store.noteOversized(INBOX, key, { limit: over.limit, received: over.received });
      skippedKeys.add(key);
      result.skipped.push({ folder: INBOX, key, size: over.received, reason: over.reason });
      log.warn({ msg, declared: over.declared, limit: over.limit }, `message skipped: ${over.reason}`);
      return stored + 1;
    }
    return stored;
  }

  /**
   * RETRs `wanted` in order, up to RETR_AHEAD(_BYTES) ahead of the disk, and hands each
   * message to the batch as soon as its file is written; without PIPELINING the connection
   * still sends them one at a time. Stops sending on abort; what was sent is still stored.
   */
  private async download(
    client: Pop3Client,
    batch: BatchWriter,
    wanted: readonly Wanted[],
    sizes: ReadonlyMap<number, number>,
    kept: ReadonlyMap<number, Buffer>,
    progress: FetchProgress,
    pullOpts: PullOptions,
    onAbandon: (a: { key: string; msg: number; err: OversizeError }) => void,
  ): Promise<void> {
    const { store } = this.opts;
    const ahead: Array<{ w: Wanted; spool: RetrSpool; retr: Promise<number>; file?: Promise<PendingMessage> }> = [];
    let next = 0;
    let aheadBytes = 0;
    const sendAhead = (): void => {
      for (; next < wanted.length && !pullOpts.signal?.aborted; next++) {
        const w = wanted[next] as Wanted;
        const cost = Math.min(w.limit, HOLD_MAX);
        if (ahead.length && (ahead.length >= RETR_AHEAD || aheadBytes + cost > RETR_AHEAD_BYTES)) return;
        const spool = new RetrSpool();
        const bytes = kept.get(w.msg); // RETRieved already to tell its identity
        const retr = bytes ? writeAll(spool, bytes) : client.retr(w.msg, spool, w.limit, sizes.get(w.msg));
        retr.catch(() => undefined); // observed below, or dropped with the failed session
        ahead.push({ w, spool, retr });
        aheadBytes += cost;
      }
    };
    // the next few files are opened while earlier messages are written (UIDs stay in order)
    const openAhead = (): void => {
      for (const a of ahead.slice(0, OPEN_AHEAD)) {
        if (a.file) continue;
        a.file = store.begin(INBOX, a.w.key, a.w.uidl === undefined ? {} : { uidl: a.w.uidl });
        a.file.catch(() => undefined); // observed below
      }
    };
    sendAhead();
    // Replies come in order, so messages are stored in order; after a failure, what is still
    // ahead lives in memory only and goes with the session, and the files opened for it go too.
    try {
      for (let head = ahead.shift(); head; head = ahead.shift()) {
        const { w, spool, retr } = head;
        aheadBytes -= Math.min(w.limit, HOLD_MAX);
        // refilled by halves, so that RETRs leave in batches rather than one packet each
        if (ahead.length <= RETR_AHEAD / 2 && aheadBytes <= RETR_AHEAD_BYTES / 2) sendAhead();
        const file = head.file ?? store.begin(INBOX, w.key, w.uidl === undefined ? {} : { uidl: w.uidl });
        openAhead();
        const pending = await file;
        spool.attach(pending.stream);
        let bytes: number;
        try {
          bytes = await retr;
        } catch (err) {
          await pending.abort();
          // the body that went past its limit is the head's, the first reply not yet complete
          if (err instanceof OversizeError) onAbandon({ key: w.key, msg: w.msg, err });
          throw err;
        }
        await batch.add(pending);
        progress.done++;
        progress.bytes += bytes;
        pullOpts.onProgress?.({ ...progress });
      }
    } finally {
      for (const a of ahead.splice(0)) await (await a.file?.catch(() => undefined))?.abort();
    }
  }

  /**
   * A listing whose UIDLs were all renumbered, or an adoption a crash cut short, is first matched
   * by content (renumbering.ts). Returns the bytes of new messages already RETRieved for it.
   */
  private async adoptIfRenumbered(
    client: Pop3Client,
    listing: ReadonlyArray<{ msg: number; key: string }>,
    sizes: ReadonlyMap<number, number>,
  ): Promise<Map<number, Buffer>> {
    const { store, keepOnServer, log, maxMessageSize } = this.opts;
    const listedKeys = new Set(listing.map((l) => l.key));
    const unknown = listing.filter((l) => !store.has(INBOX, l.key)).map((l) => ({ ...l, size: sizes.get(l.msg) ?? 0 }));
    const change = store.unfinishedKeyChange(INBOX);
    if (!change) {
      if (!keepOnServer || unknown.length * 2 < listing.length) return new Map(); // the cheap test first
      const held = store.list(INBOX).filter((m) => m.key.startsWith('p'));
      const vanished = held.filter((m) => !listedKeys.has(m.key)).length;
      const signs = { listed: listing.length, unknown: unknown.length, held: held.length, vanished, keepOnServer };
      if (!looksRenumbered(signs)) return new Map();
      log.debug(signs, 'most POP3 UIDLs are unknown: matching the listing with the cache by content');
    }
    const clock = this.opts.clock ?? systemClock;
    const r = await adoptRenumbered({ client, store, log, clock, listedKeys, maxMessageSize, change }, unknown);
    return r.kept;
  }
}

/** Write bytes held in memory into a message's stream; resolves with their length. */
function writeAll(stream: Writable, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => stream.write(bytes, (err) => (err ? reject(err) : resolve(bytes.length))));
}
