/**
 * A POP3 provider that renumbers every UIDL at once (a platform migration,
 * docs/pitfalls.md#pop3-uidl-renumbering): without care each message would get a new key, be
 * downloaded again and served under a new local UIDL, and messages deleted locally would come
 * back. `looksRenumbered` tells that from a normal listing; `adoptRenumbered` then matches the
 * unknown listed messages to what the cache holds or has deleted by content identity
 * (`cache/content-identity.ts`: Message-ID and size, else the digest of the bytes) and moves
 * those records to the new keys (`AccountStore.adoptKeys`), so only what is really new is
 * downloaded.
 *
 * Identity of a listed message: its Message-ID from `TOP n 0` and its LIST size. Stored sizes
 * are the octets RETR delivered, which equal LIST's on servers that count what they send
 * (Dovecot does); Dovecot adds a CRLF to a message without a final line end, so LIST + 2 is
 * accepted too. A known message with that Message-ID but another size, a message without a
 * Message-ID while digests are known, or a server without TOP: the message is RETRieved into
 * memory and its exact identity taken from the bytes, which are kept for the download if new.
 *
 * Resumable: the change is recorded (`noteKeyChange`) before the first move and its count
 * updated after each durable chunk; a change left unfinished by a crash is matched again at the
 * next pull whatever the listing looks like.
 */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { identityOf, identityOfBytes, messageIdOfHeader } from '../../cache/content-identity.js';
import { matchByIdentity } from '../../cache/known-messages.js';
import { isLocalKey } from '../../cache/maildir.js';
import type { AccountStore, KeyChange } from '../../cache/message-store.js';
import { INBOX } from '../../cache/message-store.js';
import type { Clock } from '../../shared/clock.js';
import { receiveLimit } from '../size-guard.js';
import { type Pop3Client, Pop3ReplyError } from './client.js';

/** Fewest held keys that must vanish from the listing before a renumbering is suspected. */
export const MIN_VANISHED = 10;
/** TOP commands written at once (pipelined). */
const HEAD_BATCH = 100;
/** Moves per step; the change's count is updated after each (a crash loses at most one step's count, never a move). */
const ADOPT_CHUNK = 25;
/** Bytes RETRieved for identity that are kept in memory for the download when new. */
const KEEP_BYTES = 32 * 1024 * 1024;

/** What one listing says, counted against the cache. */
export interface ListingSigns {
  /** Messages listed. */
  listed: number;
  /** Listed messages whose key the cache neither holds nor has tombstoned. */
  unknown: number;
  /** Live POP3 rows of the folder. */
  held: number;
  /** Live POP3 rows whose key is not in the listing. */
  vanished: number;
  /** false: the account deletes upstream what it downloaded, so held keys are absent by design. */
  keepOnServer: boolean;
}

/**
 * True when the listing looks renumbered: most of it is unknown, most of what the cache holds
 * vanished from it (at least `MIN_VANISHED` keys), and about as many messages are listed as are
 * held (not a window of new mail, as Gmail's POP3 shows). A normal day's mail adds unknown keys
 * but removes none; mail deleted on the webmail removes keys but adds none. With
 * `keepOnServer: false` the server holds only mail not downloaded yet: nothing to match. A
 * false alarm costs TOP commands, never a wrong match (that takes the same content).
 */
export function looksRenumbered(s: ListingSigns): boolean {
  if (!s.keepOnServer || s.listed === 0) return false;
  return s.unknown * 2 >= s.listed && s.vanished >= MIN_VANISHED && s.vanished * 2 >= s.held && s.listed * 2 >= s.held;
}

/** A listed message the cache does not know by key. */
export interface UnknownListed {
  msg: number;
  key: string;
  /** LIST size. */
  size: number;
}

export interface AdoptContext {
  client: Pop3Client;
  store: AccountStore;
  log: Logger;
  clock: Clock;
  /** Every key listed in this session. */
  listedKeys: ReadonlySet<string>;
  /** Larger messages are never RETRieved (the pull skips them anyway). */
  maxMessageSize: number;
  /** Held under the key listed now (the change in progress, if any, continues). */
  change?: KeyChange;
}

/** What an adoption did; `kept` holds the bytes of new messages RETRieved for identity, by message number. */
export interface AdoptResult {
  change?: KeyChange;
  matched: number;
  kept: Map<number, Buffer>;
}

/** Match `unknown` against the cache's known records by content and move the matches to their listed keys. */
export async function adoptRenumbered(ctx: AdoptContext, unknown: readonly UnknownListed[]): Promise<AdoptResult> {
  const { store, clock, listedKeys } = ctx;
  const kept = new Map<number, Buffer>();
  const known = await store.known(INBOX, (k) => !listedKeys.has(k) && !isLocalKey(k)); // local keys were never listed
  if (!known.length || !unknown.length) return finish(ctx, 0, unknown.length, kept);
  const idents = new Set(known.map((k) => k.ident));
  const midPrefixes = new Set(known.map((k) => k.ident.slice(0, k.ident.lastIndexOf(':') + 1)));
  const digests = known.some((k) => k.ident.startsWith('sha256:'));
  const listed: Array<{ key: string; ident: string }> = [];
  const toRetr: UnknownListed[] = [];
  const heads = await headsOf(ctx.client, unknown, ctx.maxMessageSize);
  for (const [i, u] of unknown.entries()) {
    const head = heads[i];
    if (head === undefined) {
      if (u.size <= ctx.maxMessageSize) toRetr.push(u); // no TOP: the bytes tell
      continue;
    }
    const exact = identityOf(messageIdOfHeader(head), u.size);
    const padded = identityOf(messageIdOfHeader(head), u.size + 2);
    if (exact && idents.has(exact)) listed.push({ key: u.key, ident: exact });
    else if (padded && idents.has(padded)) listed.push({ key: u.key, ident: padded });
    else if (u.size > ctx.maxMessageSize) continue;
    else if (exact ? midPrefixes.has(exact.slice(0, exact.lastIndexOf(':') + 1)) : digests) toRetr.push(u);
    // else: nothing known could be this message (new)
  }
  let keptBytes = 0;
  for (const u of toRetr) {
    const bytes = await retrToMemory(ctx.client, u.msg, receiveLimit(u.size, ctx.maxMessageSize));
    listed.push({ key: u.key, ident: identityOfBytes(bytes) });
    if (keptBytes + bytes.length <= KEEP_BYTES) {
      kept.set(u.msg, bytes);
      keptBytes += bytes.length;
    }
  }
  const moves = matchByIdentity(known, listed);
  let change = ctx.change;
  let matched = 0;
  for (let i = 0; i < moves.length; i += ADOPT_CHUNK) {
    // recorded before the first move, so a crash from here on is resumed at the next pull
    change ??= { folder: INBOX, kind: 'uidl', detectedAt: clock.now(), matched: 0, fresh: 0 };
    if (i === 0) {
      if (!ctx.change) store.noteKeyChange(change);
      ctx.log.debug({ moves: moves.length }, 'adopting the new UIDLs of known messages');
    }
    const n = await store.adoptKeys(INBOX, moves.slice(i, i + ADOPT_CHUNK));
    matched += n;
    change = { ...change, matched: change.matched + n };
    store.noteKeyChange(change);
  }
  const msgOf = new Map(unknown.map((u) => [u.key, u.msg]));
  for (const m of moves) kept.delete(msgOf.get(m.to) ?? 0);
  return finish({ ...ctx, change }, matched, unknown.length - matched, kept);
}

/** Close the change (if one was recorded) with the count of new messages, and log it once. */
function finish(ctx: AdoptContext, matched: number, fresh: number, kept: Map<number, Buffer>): AdoptResult {
  const { change } = ctx;
  if (!change) return { matched, kept };
  const done: KeyChange = { ...change, fresh: change.fresh + fresh, finishedAt: ctx.clock.now() };
  ctx.store.noteKeyChange(done);
  ctx.log.warn(
    { matched: done.matched, new: done.fresh, adoptedNow: matched },
    `provider renumbered its POP3 UIDLs: ${done.matched} messages matched by content and kept (none downloaded again), ${done.fresh} new`,
  );
  return { change: done, matched, kept };
}

/** `TOP n 0` of each message, pipelined in batches; all undefined when the server has no TOP. */
async function headsOf(
  client: Pop3Client,
  unknown: readonly UnknownListed[],
  maxSize: number,
): Promise<Array<Buffer | undefined>> {
  const out: Array<Buffer | undefined> = [];
  if (!client.hasTop) return unknown.map(() => undefined);
  for (let i = 0; i < unknown.length; i += HEAD_BATCH) {
    const batch = unknown.slice(i, i + HEAD_BATCH);
    const settled = await Promise.allSettled(batch.map((u) => client.head(u.msg, 0, receiveLimit(u.size, maxSize))));
    for (const r of settled) {
      if (r.status === 'fulfilled') out.push(r.value);
      else if (r.reason instanceof Pop3ReplyError)
        out.push(undefined); // TOP refused: fall back to RETR
      else throw r.reason;
    }
  }
  return out;
}

/** RETR one message into memory; a body past `limit` fails the pull (docs/guarantees.md#hostile-upstream-servers). */
async function retrToMemory(client: Pop3Client, msg: number, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await client.retr(msg, sink, limit);
  return Buffer.concat(chunks);
}
