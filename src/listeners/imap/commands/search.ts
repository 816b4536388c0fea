/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4; CONDSTORE MODSEQ, RFC 7162 §3.1.5): the parsed key
 * tree evaluated over the session's view of the mailbox.
 *
 * Invariants:
 * - Keys on flags, size, dates of arrival, sequence numbers, UIDs and MODSEQ cost no file
 *   read; a message's file is read (once) only when a header, body, text or sent-date key
 *   has to be looked at for it, and `and`/`or` stop as soon as the answer is known.
 * - String keys match case-insensitively as substrings (RFC 3501 §6.4.4) on the decoded text
 *   the MIME module gives (RFC 2047 words, transfer encodings and charsets of text parts).
 * - RECENT, NEW and OLD use the session's own `\Recent` set (`../recent.ts`).
 */
import type { MailboxMessage } from '../../../cache/mailboxes.js';
import type { Command } from '../command-reader.js';
import { dayNumber, hostOffsetMinutes } from '../imap-date.js';
import { addressText, bodyText, headerText, type MimePart, parseMessage, sentDate } from '../mime/index.js';
import { parseSearch, type SearchKey, usesModseq } from '../search-args.js';
import type { RangeList } from '../sequence-set.js';
import { ok, parsed, type Reply, type SessionContext } from '../types.js';
import { storeOf } from './folders.js';
import { selectedOf } from './messages.js';

/** One message under evaluation; its bytes are loaded on first need. */
interface Candidate {
  seq: number;
  m: MailboxMessage;
  /** `\Recent` in this session. */
  recent: boolean;
  load(): Promise<{ bytes: Buffer; root: MimePart } | undefined>;
}

/** Sequence and UID sets resolved once per command, not once per message. */
type Resolved = Map<SearchKey, RangeList>;

const lower = (s: string): string => s.toLowerCase();

function compareDay(day: number | undefined, op: 'before' | 'on' | 'since', want: number): boolean {
  if (day === undefined) return false;
  return op === 'before' ? day < want : op === 'on' ? day === want : day >= want;
}

async function matches(k: SearchKey, c: Candidate, sets: Resolved): Promise<boolean> {
  const { m, recent } = c;
  switch (k.kind) {
    case 'and':
      for (const x of k.keys) if (!(await matches(x, c, sets))) return false;
      return true;
    case 'or':
      return (await matches(k.a, c, sets)) || (await matches(k.b, c, sets));
    case 'not':
      return !(await matches(k.key, c, sets));
    case 'all':
      return true;
    case 'old':
      return !recent;
    case 'recent':
      return recent;
    case 'new':
      return recent && !m.flags.includes('\\Seen');
    case 'flag': {
      const want = k.flag.startsWith('\\') ? k.flag : lower(k.flag);
      const has = m.flags.some((f) => (f.startsWith('\\') ? f : lower(f)) === want);
      return has === k.has;
    }
    case 'size':
      return k.op === 'larger' ? m.size > k.n : m.size < k.n;
    case 'seq':
      return (sets.get(k) as RangeList).has(c.seq);
    case 'uid':
      return (sets.get(k) as RangeList).has(m.uid);
    case 'modseq':
      return BigInt(m.modseq || 1) >= k.modseq;
    case 'date':
      if (k.of === 'internal')
        return compareDay(dayNumber(m.internalDate, hostOffsetMinutes(m.internalDate)), k.op, k.day);
      break;
    default:
      break;
  }
  const msg = await c.load();
  if (!msg) return false;
  const { bytes, root } = msg;
  if (k.kind === 'date') {
    // No or an unparsable Date: compares as sent on day 0 (as Dovecot).
    const sent = sentDate(bytes, root);
    return compareDay(sent ? Math.floor(sent.day / 86_400_000) : 0, k.op, k.day);
  }
  if (k.kind === 'header') {
    const name = lower(k.field);
    const want = lower(k.value);
    const values = ADDRESS_FIELDS.has(name) ? addressText(bytes, name, root) : headerText(bytes, name, root);
    return values.some((v) => lower(v).includes(want));
  }
  if (k.kind === 'body' || k.kind === 'text') {
    const want = lower(k.value);
    if (lower(bodyText(bytes, root)).includes(want)) return true;
    return k.kind === 'text' && lower(bytes.toString('utf8', 0, root.bodyStart)).includes(want);
  }
  return false;
}

/** Searched as "Name <local@domain>" strings. */
const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc']);

/** Resolves every `seq`/`uid` set of the tree against the view. */
function resolveSets(k: SearchKey, count: number, maxUid: number, into: Resolved): void {
  if (k.kind === 'seq') into.set(k, k.set.resolve(count));
  else if (k.kind === 'uid') into.set(k, k.set.resolve(maxUid));
  else if (k.kind === 'and') for (const x of k.keys) resolveSets(x, count, maxUid, into);
  else if (k.kind === 'or') {
    resolveSets(k.a, count, maxUid, into);
    resolveSets(k.b, count, maxUid, into);
  } else if (k.kind === 'not') resolveSets(k.key, count, maxUid, into);
}

export async function search(s: SessionContext, cmd: Command): Promise<Reply> {
  const { key } = parsed(parseSearch(cmd.args));
  const box = selectedOf(s);
  const st = storeOf(s);
  const withModseq = usesModseq(key);
  if (withModseq) s.condstore = true;
  const sets: Resolved = new Map();
  resolveSets(key, box.exists, box.uids.at(-1) ?? 0, sets);
  const hits: number[] = [];
  let highest = 0;
  const { msgs } = box;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i] as MailboxMessage;
    let loaded: { bytes: Buffer; root: MimePart } | undefined | null = null;
    const c: Candidate = {
      seq: i + 1,
      m,
      recent: box.isRecent(m.uid),
      load: async () => {
        if (loaded === null) {
          try {
            const bytes = await st.read(box.name, m.uid);
            loaded = { bytes, root: parseMessage(bytes) };
          } catch {
            loaded = undefined; // expunged meanwhile: matches no content key
          }
        }
        return loaded;
      },
    };
    if (await matches(key, c, sets)) {
      hits.push(cmd.uid ? m.uid : i + 1);
      highest = Math.max(highest, m.modseq || 1);
    }
  }
  const tail = withModseq && hits.length ? ` (MODSEQ ${highest})` : '';
  await s.write(`* SEARCH${hits.length ? ` ${hits.join(' ')}` : ''}${tail}\r\n`);
  return ok(`${cmd.uid ? 'UID ' : ''}SEARCH completed`);
}
