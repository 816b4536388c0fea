/**
 * The folders one pull of an IMAP account downloads, and so the folders the local IMAP server
 * shows (shown = pulled, docs/imap-server.md "Which folders"): computed once per pull from the
 * upstream LIST the mirror does anyway, no further round trip.
 *
 * An upstream folder is in the set when
 * - a name of `incoming.folders` without wildcards names it (INBOX in any case; the upstream's own
 *   spelling with its delimiter is accepted too, as configs written before patterns used it);
 * - a pattern with `*` or `%` matches its name (`/` as delimiter, RFC 3501 LIST rules), unless it
 *   is a virtual folder (\All, \Flagged: every message again, Gmail's "All Mail"), which only an
 *   exact name brings;
 * - it has the special use \Sent, \Drafts, \Trash or \Junk: clients file into these, and without
 *   the provider's Junk Thunderbird creates a second one (see ALWAYS_PULLED);
 * - it was created (or renamed to) through the local IMAP server.
 * The last two only for an account the local IMAP server serves.
 * An exact name the upstream does not list is `missing`: reported, the others still pulled.
 */
import type { SpecialUse } from '../../cache/mailboxes.js';
import { hasWildcard, listMatcher, normaliseInbox } from '../../shared/list-pattern.js';

/**
 * Special uses pulled whatever `folders` says. \Junk is in: a client's junk controls move mail
 * there, spam is bounded (providers expire it), and false positives must be visible. \Archive is
 * not (it can hold years of mail: a pattern brings it).
 */
export const ALWAYS_PULLED: ReadonlySet<SpecialUse> = new Set<SpecialUse>(['\\Sent', '\\Drafts', '\\Trash', '\\Junk']);

/** Views of other folders' messages: pulled only when named exactly. */
const VIRTUAL: ReadonlySet<SpecialUse> = new Set<SpecialUse>(['\\All', '\\Flagged']);

/** A selectable upstream folder: its cache name (`/` delimiter), its upstream path, its special use. */
export interface UpstreamFolder {
  name: string;
  path: string;
  specialUse?: SpecialUse;
}

/** What one pull downloads, in order (INBOX first), and the exact names the upstream lacks. */
export interface FolderSet {
  pull: UpstreamFolder[];
  missing: string[];
}

/**
 * The folder set of one pull (see the module comment). `served`: the account is served by the
 * local IMAP server; without it nothing shows the special-use or local folders, so only
 * `patterns` are pulled (as before the local server existed).
 */
export function folderSet(
  upstream: readonly UpstreamFolder[],
  patterns: readonly string[],
  served: { localFolders: Iterable<string> } | undefined,
): FolderSet {
  const exact = patterns.filter((p) => !hasWildcard(p)).map(normaliseInbox);
  const wild = patterns.filter(hasWildcard).map((p) => listMatcher(p));
  const local = new Set(served?.localFolders ?? []);
  const always = served ? ALWAYS_PULLED : new Set<SpecialUse>();
  const named = new Set(exact);
  const wanted = (f: UpstreamFolder): boolean =>
    named.has(f.name) ||
    named.has(f.path) ||
    local.has(f.name) ||
    (f.specialUse !== undefined && always.has(f.specialUse)) ||
    (!(f.specialUse && VIRTUAL.has(f.specialUse)) && wild.some((m) => m(f.name)));
  const pull = upstream.filter(wanted).sort(inboxFirst);
  const found = new Set(upstream.flatMap((f) => [f.name, f.path]));
  const missing = [...new Set(exact)].filter((n) => !found.has(n));
  return { pull, missing };
}

/** INBOX first, then by name. */
function inboxFirst(a: UpstreamFolder, b: UpstreamFolder): number {
  if (a.name === 'INBOX' || b.name === 'INBOX') return a.name === 'INBOX' ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
