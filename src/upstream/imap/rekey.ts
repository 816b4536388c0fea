/**
 * A folder's UIDVALIDITY changed (a server move, a rebuilt index): every `i<old>_<uid>` key is
 * dead, but the messages are mostly still there. What the user already has or already dealt with
 * (live rows, tombstones, and the Trash rows of deleted messages: `cache/known-messages.ts`) is
 * matched by content identity (`cache/content-identity.ts`: Message-ID + size, else a digest of
 * the bytes; never the UID) to the new listing and moved to the new keys (`adoptKeys`), so
 * nothing is downloaded twice and nothing deleted comes back. The folder's journal entries still
 * to replay follow in the same transactions (`cache/journal-keys.ts`): a queued expunge or
 * move-out of a message that is only a tombstone now names its new upstream UID.
 *
 * Resumable: each move is durable on its own and the caller advances the folder's cursor to the
 * new UIDVALIDITY only after this returns, so after a crash the records still under old keys are
 * matched again; listed keys the store already has are left out of the matching.
 *
 * imapflow rule: no IMAP command inside a fetch() loop — the listing is collected first.
 */
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { identityOf, identityOfBytes, identityOfDigest, messageIdOfHeader } from '../../cache/content-identity.js';
import { matchByIdentity } from '../../cache/known-messages.js';
import type { AccountStore, ListedMessage } from '../../cache/message-store.js';

/** Messages up to this size come whole in one pipelined FETCH; larger ones stream via download(). */
export const INLINE_MAX = 1024 * 1024;
/** UIDs per FETCH of bodies to digest. */
const DIGEST_CHUNK = 200;

/** The cache key of an IMAP message. */
export function imapKey(uidValidity: string, uid: number): string {
  return `i${uidValidity}_${uid}`;
}

/** Re-key `folder` (open in `client`) from `oldUv` to `newUv`; returns the number of records moved. */
export async function rekeyFolder(
  client: ImapFlow,
  store: AccountStore,
  log: Logger,
  folder: string,
  oldUv: string,
  newUv: string,
): Promise<number> {
  const prefix = `i${oldUv}_`;
  const known = await store.known(folder, (k) => k.startsWith(prefix));
  log.warn(
    { folder, oldUidValidity: oldUv, newUidValidity: newUv, known: known.length },
    'UIDVALIDITY changed: re-keying the cache by content identity (nothing local is deleted)',
  );
  if (known.length === 0) return 0;

  const listed: ListedMessage[] = [];
  const noId: Array<{ uid: number; size: number }> = [];
  if (client.mailbox && client.mailbox.exists > 0) {
    const q = { uid: true, size: true, headers: ['message-id'] };
    for await (const m of client.fetch('1:*', q, { uid: true })) {
      const key = imapKey(newUv, m.uid);
      if (store.has(folder, key)) continue; // adopted before a crash, or already cached
      const ident = identityOf(m.headers && messageIdOfHeader(m.headers), m.size ?? 0);
      if (ident) listed.push({ key, ident });
      else noId.push({ uid: m.uid, size: m.size ?? 0 });
    }
  }
  // Without a Message-ID the identity is the digest of the bytes: fetched only when a known
  // record could match one.
  if (noId.length && known.some((k) => k.ident.startsWith('sha256:')))
    for (const d of await digests(client, noId)) listed.push({ key: imapKey(newUv, d.uid), ident: d.ident });

  const moves = matchByIdentity(known, listed);
  const moved = await store.adoptKeys(folder, moves);
  const live = moves.filter((m) => m.kind === 'live').length;
  log.info(
    { folder, matchedLive: live, matchedDeleted: moves.length - live, unmatched: known.length - moves.length, moved },
    'UIDVALIDITY re-key done',
  );
  return moved;
}

/** The digest identity of each message in `list` (vanished ones are left out). */
export async function digests(
  client: ImapFlow,
  list: ReadonlyArray<{ uid: number; size: number }>,
): Promise<Array<{ uid: number; ident: string }>> {
  const out: Array<{ uid: number; ident: string }> = [];
  const small = list.filter((m) => m.size <= INLINE_MAX).map((m) => m.uid);
  for (let i = 0; i < small.length; i += DIGEST_CHUNK) {
    const chunk = small.slice(i, i + DIGEST_CHUNK).join(',');
    for await (const m of client.fetch(chunk, { uid: true, source: true }, { uid: true }))
      if (m.source) out.push({ uid: m.uid, ident: identityOfBytes(m.source) });
  }
  for (const m of list) {
    if (m.size <= INLINE_MAX) continue;
    const dl = await client.download(String(m.uid), undefined, { uid: true });
    const content = 'content' in dl ? dl.content : undefined;
    if (!content) continue;
    const h = createHash('sha256');
    for await (const b of content) h.update(b as Buffer);
    out.push({ uid: m.uid, ident: identityOfDigest(h.digest('hex')) });
  }
  return out;
}
