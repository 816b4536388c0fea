/**
 * What clients learn about folders without selecting them: LIST (RFC 3501 §6.3.8, with
 * LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154 §3 and LIST-STATUS RFC 5819), LSUB and STATUS.
 *
 * Invariants:
 * - The RFC 3501 form of LIST (`LIST ref pattern`, no option, no pattern list) answers as it always
 *   did: `\Noselect` for names that are only parents, `\HasChildren`/`\HasNoChildren` and the
 *   special use on every line. Clients pin these bytes.
 * - The extended form answers as Dovecot does (checked against the testbed): a name that is only a
 *   parent is `\NonExistent`; children, subscription and special-use attributes only when asked
 *   for (or implied by the selection option); CHILDINFO only under RECURSIVEMATCH, for a listed
 *   name with a descendant that meets the selection criteria but matches no pattern.
 * - A STATUS line follows the LIST line of each selectable folder listed (never a `\NonExistent` one).
 */
import type { MailboxInfo } from '../../../cache/mailboxes.js';
import { type ListExtended, parseList, parseListExtended, parseStatus, type StatusItem } from '../command-args.js';
import type { Command } from '../command-reader.js';
import { DELIMITER, listPattern, patternMatcher } from '../mailbox-name.js';
import { recentFloors } from '../recent.js';
import { flagList, mailboxName, toBuffer } from '../response.js';
import { no, ok, parsed, type Reply, type SessionContext } from '../types.js';
import { storeOf } from './folders.js';

/** Names that are the parent of some other name. */
function parentsOf(folders: readonly MailboxInfo[]): Set<string> {
  const parents = new Set<string>();
  for (const f of folders) {
    const i = f.name.lastIndexOf(DELIMITER);
    if (i > 0) parents.add(f.name.slice(0, i));
  }
  return parents;
}

/** RFC 3501 LIST attributes: selectability, children (RFC 3348), special use (RFC 6154). */
function attributes(f: MailboxInfo, parents: ReadonlySet<string>): string[] {
  const attrs: string[] = [];
  if (!f.selectable) attrs.push('\\Noselect');
  attrs.push(parents.has(f.name) ? '\\HasChildren' : '\\HasNoChildren');
  if (f.specialUse) attrs.push(f.specialUse);
  return attrs;
}

const listLine = (cmd: string, attrs: readonly string[], name: string, extra = ''): Buffer =>
  toBuffer([`* ${cmd} ${flagList(attrs)} "/" `, mailboxName(name), `${extra}\r\n`]);

async function writeAll(s: SessionContext, out: Buffer[]): Promise<void> {
  if (out.length) await s.write(Buffer.concat(out));
}

/** Messages of `f` no session has claimed as `\Recent` (`../recent.ts`); reads the list only when some may be. */
function unclaimed(s: SessionContext, f: MailboxInfo): number {
  const floor = recentFloors(storeOf(s)).floor(f.uidValidity);
  if (floor >= f.uidNext || f.messages === 0) return 0;
  return storeOf(s)
    .select(f.name)
    .messages.filter((m) => m.uid >= floor).length;
}

/** `* STATUS name (items)` of a selectable folder. */
export function statusLine(s: SessionContext, f: MailboxInfo, items: readonly StatusItem[]): Buffer {
  const value: Record<StatusItem, number> = {
    MESSAGES: f.messages,
    RECENT: items.includes('RECENT') ? unclaimed(s, f) : 0,
    UIDNEXT: f.uidNext,
    UIDVALIDITY: f.uidValidity,
    UNSEEN: f.unseen,
    HIGHESTMODSEQ: Math.max(1, f.highestModseq),
  };
  if (items.includes('HIGHESTMODSEQ')) s.condstore = true;
  const counts = items.map((i) => `${i} ${value[i]}`).join(' ');
  return toBuffer(['* STATUS ', mailboxName(f.name), ` (${counts})\r\n`]);
}

export async function list(s: SessionContext, cmd: Command): Promise<Reply> {
  const lsub = cmd.name === 'LSUB';
  const args = lsub ? undefined : parsed(parseListExtended(cmd.args));
  if (args?.extended) return listExtended(s, args);
  const { reference, pattern } = args
    ? { reference: args.reference, pattern: args.patterns[0] as string }
    : parsed(parseList(cmd.args));
  if (pattern === '' && !lsub) {
    // RFC 3501 §6.3.8: the delimiter and the root of the reference.
    await s.send('* LIST (\\Noselect) "/" ""');
    return ok('LIST completed');
  }
  const match = parsed(patternMatcher(listPattern(reference, pattern)));
  const folders = storeOf(s).folders();
  const parents = parentsOf(folders);
  const out: Buffer[] = [];
  for (const f of folders) {
    if (lsub ? !f.subscribed : false) continue;
    if (!match(f.name)) continue;
    const attrs = lsub ? (f.selectable ? [] : ['\\Noselect']) : attributes(f, parents);
    out.push(listLine(cmd.name, attrs, f.name));
  }
  await writeAll(s, out);
  return ok(`${cmd.name} completed`);
}

/** LIST-EXTENDED (RFC 5258 §3), SPECIAL-USE selection (RFC 6154 §3), LIST-STATUS (RFC 5819). */
async function listExtended(s: SessionContext, a: ListExtended): Promise<Reply> {
  if (a.patterns.length === 1 && a.patterns[0] === '') {
    await s.send('* LIST (\\Noselect) "/" ""');
    return ok('LIST completed');
  }
  const matchers = a.patterns.filter((p) => p !== '').map((p) => parsed(patternMatcher(listPattern(a.reference, p))));
  const matches = (name: string): boolean => matchers.some((m) => m(name));
  const subscribed = a.select.has('SUBSCRIBED');
  const specialUse = a.select.has('SPECIAL-USE');
  const meets = (f: MailboxInfo): boolean => (!subscribed || f.subscribed) && (!specialUse || !!f.specialUse);
  const folders = storeOf(s).folders();
  const parents = a.returns.has('CHILDREN') ? parentsOf(folders) : undefined;
  // RECURSIVEMATCH: the ancestors of names that meet the criteria but match no pattern.
  const childInfo = new Set<string>();
  if (a.select.has('RECURSIVEMATCH')) {
    for (const f of folders) {
      if (!meets(f) || matches(f.name)) continue;
      for (let i = f.name.lastIndexOf(DELIMITER); i > 0; i = f.name.lastIndexOf(DELIMITER, i - 1))
        childInfo.add(f.name.slice(0, i));
    }
  }
  const info = subscribed ? ' (CHILDINFO ("SUBSCRIBED"))' : ' (CHILDINFO ("SPECIAL-USE"))';
  const out: Buffer[] = [];
  for (const f of folders) {
    if (!matches(f.name)) continue;
    const child = childInfo.has(f.name);
    if (!meets(f) && !child) continue;
    const attrs: string[] = [];
    if (a.returns.has('SUBSCRIBED') && f.subscribed) attrs.push('\\Subscribed');
    if (!f.selectable) attrs.push('\\NonExistent');
    if (parents) attrs.push(parents.has(f.name) ? '\\HasChildren' : '\\HasNoChildren');
    if (a.returns.has('SPECIAL-USE') && f.specialUse) attrs.push(f.specialUse);
    out.push(listLine('LIST', attrs, f.name, child ? info : ''));
    if (a.status && f.selectable) out.push(statusLine(s, f, a.status));
  }
  await writeAll(s, out);
  return ok('LIST completed');
}

export async function status(s: SessionContext, cmd: Command): Promise<Reply> {
  const { mailbox, items } = parsed(parseStatus(cmd.args));
  const f = storeOf(s).folder(mailbox);
  if (!f?.selectable) return no('no such mailbox', 'NONEXISTENT');
  await s.write(statusLine(s, f, items));
  return ok('STATUS completed');
}
