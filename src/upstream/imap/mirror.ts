/**
 * Upstream changes back into the cache, for IMAP accounts (they keep their mail upstream, and
 * other devices change it): after the pull of a folder, the flags of cached messages and the
 * messages expunged upstream; once per pull, the upstream's folders with their special use
 * (`listUpstream`; which of them are shown and pulled: folder-set.ts).
 * The cache applies them (`cache/mailboxes.ts` UpstreamMirror: an upstream expunge wins, flags
 * merge per flag with a still pending local change winning).
 *
 * Wire cost, bounded memory:
 * - nothing when CONDSTORE says the folder's HIGHESTMODSEQ did not move since the last pull;
 * - flags: `UID FETCH 1:* (FLAGS) (CHANGEDSINCE <stored HIGHESTMODSEQ>)` with CONDSTORE, else
 *   `UID FETCH <ranges> (FLAGS)` over the cached UIDs in chunks of FLAG_CHUNK;
 * - expunges: one `UID SEARCH ALL`, compared with the cached keys of the current UIDVALIDITY.
 *
 * imapflow rule: no IMAP command inside a fetch() loop — each chunk is collected, then applied.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { SpecialUse, UpstreamMirror } from '../../cache/mailboxes.js';
import { TemporaryError } from '../../shared/errors.js';
import { normaliseInbox } from '../../shared/list-pattern.js';
import type { UpstreamFolder } from './folder-set.js';
import { uidSet, upstreamPath } from './names.js';

/** Cached UIDs per FETCH FLAGS without CONDSTORE. */
const FLAG_CHUNK = 2000;

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
 * Flags and expunges of `folder` (its cache name; `path` upstream). `sinceModseq`: the folder's
 * HIGHESTMODSEQ at the previous pull, when its UIDVALIDITY is unchanged since.
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

    // Expunges: the cached UIDs the upstream does not list any more.
    let listed: Set<number>;
    if (mb.exists === 0) listed = new Set();
    else {
      const found = await client.search({ all: true }, { uid: true });
      if (!Array.isArray(found)) throw new TemporaryError(`IMAP UID SEARCH in ${folder} failed`);
      listed = new Set(found);
    }
    const gone = [...cached].filter(([uid]) => !listed.has(uid)).map(([, key]) => key);
    if (gone.length) counts.expunged = await store.applyUpstreamExpunges(folder, gone);
    for (const [uid] of [...cached]) if (!listed.has(uid)) cached.delete(uid);
    if (!cached.size) return counts;

    // Flags of the cached messages still there.
    const useModseq = sinceModseq !== undefined && modseq !== undefined && client.enabled.has('CONDSTORE');
    const uids = [...cached.keys()].sort((a, b) => a - b);
    const chunks = useModseq ? [undefined] : chunked(uids, FLAG_CHUNK);
    for (const chunk of chunks) {
      const got: Array<{ key: string; flags: string[] }> = [];
      const range = chunk ? uidSet(chunk) : '1:*';
      const opts = useModseq ? { uid: true, changedSince: BigInt(sinceModseq as string) } : { uid: true };
      for await (const m of client.fetch(range, { uid: true, flags: true }, opts)) {
        const key = cached.get(m.uid);
        if (key && m.flags) got.push({ key, flags: [...m.flags].filter((f) => f !== '\\Recent') });
      }
      if (got.length) counts.flags += await store.applyUpstreamFlags(folder, got);
    }
    if (counts.flags || counts.expunged) log.info({ folder, ...counts }, 'upstream changes applied locally');
    return counts;
  } finally {
    lock.release();
  }
}

function chunked<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
