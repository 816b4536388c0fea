/**
 * Upstream changes back into the cache, for IMAP accounts (they keep their mail upstream, and
 * other devices change it): after the pull of a folder, the flags of cached messages and the
 * messages expunged upstream; once per pull, the upstream's folders with their special use
 * (`listUpstream`; which of them are shown and pulled: folder-set.ts) and the folders gone from
 * them (`reconcileFolders`).
 * The cache applies them (`cache/mailboxes.ts` UpstreamMirror: an upstream expunge wins, flags
 * merge per flag with a still pending local change winning).
 *
 * Wire cost, bounded memory (docs/imap-server.md#journal):
 * - nothing when CONDSTORE says the folder's HIGHESTMODSEQ did not move since the last pull;
 * - with QRESYNC and a stored HIGHESTMODSEQ, flags and expunges together: `UID FETCH <cached UIDs
 *   as ranges> (FLAGS) (CHANGEDSINCE <stored> VANISHED)`, one per MAX_SET_CHARS of UID set (one
 *   for a folder whose UIDs run in long ranges); answers only for messages changed or expunged;
 * - otherwise (no QRESYNC, the folder's first mirror, a UIDVALIDITY change): expunges by one
 *   `UID SEARCH ALL` compared with the cached keys of the current UIDVALIDITY (a listing of every
 *   UID), flags by `UID FETCH 1:* (FLAGS) (CHANGEDSINCE <stored>)` with CONDSTORE, else
 *   `UID FETCH <ranges> (FLAGS)` over the cached UIDs in chunks of FLAG_CHUNK.
 *
 * VANISHED comes from the FETCH, not from EXAMINE's `QRESYNC` parameter: the FETCH replaces the
 * flags FETCH (a changed folder costs one round trip, was two), its UID set restricts the answer
 * to cached UIDs (imapflow's EXAMINE cannot send known UIDs), and it runs under the mirror's lock
 * on the folder the pull already opened (one EXAMINE per folder per pull), after the download, so
 * nothing has to be held from the EXAMINE across it.
 *
 * Invariant: VANISHED since m misses nothing only when every expunge up to m was applied, so the
 * fetcher stores a folder's HIGHESTMODSEQ only after its mirror completed (fetcher.ts).
 *
 * imapflow rule: no IMAP command inside a fetch() loop — each chunk is collected, then applied.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { SpecialUse, UpstreamMirror } from '../../cache/mailboxes.js';
import { TemporaryError } from '../../shared/errors.js';
import { normaliseInbox } from '../../shared/list-pattern.js';
import type { UpstreamFolder } from './folder-set.js';
import { isMissingFolder, uidSet, uidSetChunks, upstreamPath } from './names.js';

/** Cached UIDs per FETCH FLAGS without CONDSTORE. */
const FLAG_CHUNK = 2000;

/** Characters of a UID set per `FETCH ... VANISHED` (servers cap a command line near 8–64 KiB). */
const MAX_SET_CHARS = 8000;

const SPECIAL_USES = new Set<string>(['\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive', '\\All', '\\Flagged']);

/** The cache as the mirror sees it. */
export interface MirrorStore extends UpstreamMirror {
  /** Live rows of a folder with their upstream keys. */
  list(folder: string): ReadonlyArray<{ uid: number; key: string }>;
}

/** What the mirror changed locally. */
export interface MirrorCounts {
  flags: number;
  expunged: number;
}

/**
 * The upstream's selectable folders (one LIST per pull): cache names with `/` as delimiter,
 * `\Noselect` ones left out. The pull's folder set comes from it (folder-set.ts).
 */
export async function listUpstream(client: ImapFlow): Promise<UpstreamFolder[]> {
  const list = await client.list();
  return list
    .filter((f) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent'))
    .map((f) => {
      const name = normaliseInbox(f.delimiter && f.delimiter !== '/' ? f.path.split(f.delimiter).join('/') : f.path);
      const use = f.specialUse && SPECIAL_USES.has(f.specialUse) ? (f.specialUse as SpecialUse) : undefined;
      return use ? { name, path: f.path, specialUse: use } : { name, path: f.path };
    });
}

/**
 * The cache follows the upstream's folders (`UpstreamMirror.reconcileUpstreamFolders`): folders
 * pulled before and gone from this LIST (confirmed by a STATUS answered NONEXISTENT) are removed
 * locally (an upstream expunge wins), unless a local change must still be carried; a folder cached under its upstream spelling by an older
 * localpost takes its name. Returns the names not to pull in this pull (their mail still waits
 * under the old spelling: pulling them would download it twice).
 */
export async function reconcileFolders(
  client: ImapFlow,
  store: UpstreamMirror,
  upstream: readonly UpstreamFolder[],
  log: Logger,
): Promise<Set<string>> {
  // confirmed before its cached mail goes: a LIST may leave out a folder that still exists
  const gone = async (folder: string): Promise<boolean> => {
    try {
      await client.status(upstreamPath(client, folder), { messages: true });
      return false;
    } catch (err) {
      if (isMissingFolder(err)) return true;
      throw err;
    }
  };
  const r = await store.reconcileUpstreamFolders(upstream, gone);
  for (const a of r.adopted)
    log.info(a, 'folder cached under its upstream spelling renamed locally (not downloaded again)');
  if (r.removed.length) log.info({ folders: r.removed }, 'folders deleted or renamed upstream: removed locally');
  for (const k of r.kept) log.warn(k, 'folder missing from the upstream LIST kept locally');
  for (const w of r.waiting) log.warn(w, 'folder not pulled yet: a local change to it waits to be carried upstream');
  return new Set(r.waiting.map((w) => w.folder));
}

/**
 * Flags and expunges of `folder` (its cache name; `path` upstream). `sinceModseq`: the folder's
 * HIGHESTMODSEQ at the previous pull, when its UIDVALIDITY is unchanged since and the previous
 * mirror of the folder completed (the fetcher stores it only then).
 */
export async function mirrorFolder(
  client: ImapFlow,
  store: MirrorStore,
  log: Logger,
  folder: string,
  sinceModseq: string | undefined,
): Promise<MirrorCounts> {
  const counts: MirrorCounts = { flags: 0, expunged: 0 };
  const lock = await client.getMailboxLock(upstreamPath(client, folder), { readOnly: true });
  try {
    const mb = client.mailbox;
    if (!mb) throw new Error(`could not open folder ${folder}`);
    const uv = String(mb.uidValidity);
    const modseq = mb.highestModseq !== undefined ? String(mb.highestModseq) : undefined;
    if (sinceModseq !== undefined && modseq === sinceModseq) return counts;
    const prefix = `i${uv}_`;
    const cached = new Map<number, string>();
    for (const m of store.list(folder))
      if (m.key.startsWith(prefix)) cached.set(Number(m.key.slice(prefix.length)), m.key);
    if (!cached.size) return counts;

    const since = sinceModseq !== undefined && modseq !== undefined && !mb.noModseq ? sinceModseq : undefined;
    const condstore = since !== undefined && client.enabled.has('CONDSTORE');
    const uids = [...cached.keys()].sort((a, b) => a - b);
    let changes: Changes;
    if (mb.exists === 0) changes = { gone: new Set(uids), flags: [] };
    else if (condstore && client.enabled.has('QRESYNC')) changes = await changedSince(client, uids, since);
    else changes = { gone: await notListed(client, folder, cached), flags: undefined };

    const gone = [...changes.gone].map((uid) => cached.get(uid) as string);
    if (gone.length) counts.expunged = await store.applyUpstreamExpunges(folder, gone);
    for (const uid of changes.gone) cached.delete(uid);
    if (!cached.size) return counts;

    // Flags of the cached messages still there (with QRESYNC they came with the expunges),
    // applied per FETCH so that without CONDSTORE at most FLAG_CHUNK are held at once.
    const apply = async (flagged: ReadonlyArray<{ uid: number; flags: string[] }>) => {
      const got = flagged.flatMap((m) => {
        const key = cached.get(m.uid);
        return key ? [{ key, flags: m.flags }] : [];
      });
      if (got.length) counts.flags += await store.applyUpstreamFlags(folder, got);
    };
    if (changes.flags) await apply(changes.flags);
    else if (condstore) await apply(await fetchFlags(client, '1:*', since));
    else for (const chunk of chunked(uids, FLAG_CHUNK)) await apply(await fetchFlags(client, uidSet(chunk), undefined));
    if (counts.flags || counts.expunged) log.info({ folder, ...counts }, 'upstream changes applied locally');
    return counts;
  } finally {
    lock.release();
  }
}

/** UIDs expunged upstream and flags of the messages read so far (undefined: not read yet). */
interface Changes {
  gone: Set<number>;
  flags: Array<{ uid: number; flags: string[] }> | undefined;
}

/**
 * QRESYNC: `UID FETCH <cached> (FLAGS) (CHANGEDSINCE m VANISHED)` per chunk of the cached UIDs,
 * giving the flags changed since `m` and, as `VANISHED (EARLIER)`, the cached UIDs expunged since.
 * The UID set is the known-UIDs restriction (RFC 7162 §3.2.6): a server may also name UIDs that
 * never were there, which are ignored. imapflow reports VANISHED as 'expunge' events (one per UID,
 * before the tagged OK ends the fetch); a plain VANISHED (another session expunging right now)
 * counts too: the message is gone either way.
 */
async function changedSince(client: ImapFlow, uids: readonly number[], since: string): Promise<Changes> {
  const cached = new Set(uids);
  const gone = new Set<number>();
  const onExpunge = (e: { uid?: number; vanished?: boolean }) => {
    if (e.vanished && e.uid !== undefined && cached.has(e.uid)) gone.add(e.uid);
  };
  client.on('expunge', onExpunge);
  try {
    const flags: Array<{ uid: number; flags: string[] }> = [];
    for (const set of uidSetChunks(uids, MAX_SET_CHARS)) flags.push(...(await fetchFlags(client, set, since)));
    return { gone, flags: flags.filter((m) => !gone.has(m.uid)) };
  } finally {
    client.off('expunge', onExpunge);
  }
}

/** Without QRESYNC: the cached UIDs the upstream does not list any more (one `UID SEARCH ALL`). */
async function notListed(client: ImapFlow, folder: string, cached: ReadonlyMap<number, string>): Promise<Set<number>> {
  const found = await client.search({ all: true }, { uid: true });
  if (!Array.isArray(found)) throw new TemporaryError(`IMAP UID SEARCH in ${folder} failed`);
  const listed = new Set(found);
  return new Set([...cached.keys()].filter((uid) => !listed.has(uid)));
}

/** `UID FETCH <set> (UID FLAGS)`, CHANGEDSINCE `since` when given (and VANISHED with QRESYNC). */
async function fetchFlags(
  client: ImapFlow,
  set: string,
  since: string | undefined,
): Promise<Array<{ uid: number; flags: string[] }>> {
  const out: Array<{ uid: number; flags: string[] }> = [];
  const opts = since !== undefined ? { uid: true, changedSince: BigInt(since) } : { uid: true };
  for await (const m of client.fetch(set, { uid: true, flags: true }, opts))
    if (m.flags) out.push({ uid: m.uid, flags: [...m.flags].filter((f) => f !== '\\Recent') });
  return out;
}

function chunked<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
