/**
 * Typed arguments of the IMAP commands other than FETCH and SEARCH (RFC 3501 §6, CONDSTORE
 * RFC 7162, UIDPLUS RFC 4315, MOVE RFC 6851, ENABLE RFC 5161, ID RFC 2971).
 *
 * Invariants: each parser takes the command's arguments (tag, name and a `UID` prefix already
 * removed by the reader), consumes all of them and returns a `Result`; it never throws. Mailbox
 * names come back decoded from modified UTF-7 with INBOX normalised.
 */
import { ArgError, type ArgErrorCode, type Args, parseWith } from './args.js';
import { parseDateTime } from './imap-date.js';
import type { Token } from './lexer.js';
import type { Result } from './result.js';
import type { SequenceSet } from './sequence-set.js';

type Parsed<T> = Result<T, ArgErrorCode>;

/** Commands without arguments (CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, EXPUNGE, IDLE, ...). */
export function parseNoArgs(args: readonly Token[]): Parsed<null> {
  return parseWith(args, () => null);
}

export interface Login {
  readonly user: string;
  readonly password: string;
}

export function parseLogin(args: readonly Token[]): Parsed<Login> {
  return parseWith(args, (a) => ({ user: a.astring('user name'), password: a.astring('password') }));
}

export interface Authenticate {
  readonly mechanism: string;
  /** SASL-IR initial response (RFC 4959), base64 or `=`. */
  readonly initial?: string;
}

export function parseAuthenticate(args: readonly Token[]): Parsed<Authenticate> {
  return parseWith(args, (a) => {
    const mechanism = a.keyword('mechanism');
    return a.done ? { mechanism } : { mechanism, initial: a.atom('initial response') };
  });
}

/** CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE. */
export function parseMailboxArg(args: readonly Token[]): Parsed<string> {
  return parseWith(args, (a) => a.mailbox());
}

export interface Rename {
  readonly from: string;
  readonly to: string;
}

export function parseRename(args: readonly Token[]): Parsed<Rename> {
  return parseWith(args, (a) => ({ from: a.mailbox(), to: a.mailbox() }));
}

export interface Select {
  readonly mailbox: string;
  /** `(CONDSTORE)` select parameter (RFC 7162 §3.1.8). */
  readonly condstore: boolean;
  /** `(QRESYNC (...))` select parameter (RFC 7162 §3.2.5). */
  readonly qresync?: QresyncParam;
}

/** `QRESYNC (uidvalidity modseq [known-uids [(known-seqs known-uid-set)]])`; no set may use `*`. */
export interface QresyncParam {
  readonly uidValidity: number;
  readonly modseq: bigint;
  readonly knownUids?: SequenceSet;
  /** Message sequence match data: sequence numbers and the UIDs the client had at them. */
  readonly seqMatch?: { readonly seqs: SequenceSet; readonly uids: SequenceSet };
}

/** A sequence set of known numbers: `*` has no meaning there (RFC 7162 §7 `known-uids`). */
function knownSet(a: Args): SequenceSet {
  const set = a.sequenceSet();
  if (set.usesStar) throw new ArgError('* is not allowed in QRESYNC sets');
  return set;
}

function parseQresync(a: Args): QresyncParam {
  const l = a.list('QRESYNC parameters');
  const uidValidity = l.nzNumber('UIDVALIDITY');
  const modseq = l.modseq();
  if (l.done) return { uidValidity, modseq };
  const knownUids = knownSet(l);
  if (l.done) return { uidValidity, modseq, knownUids };
  const m = l.list('sequence match data');
  const seqs = knownSet(m);
  const uids = knownSet(m);
  if (!m.done || seqs.count() !== uids.count()) throw new ArgError('invalid QRESYNC sequence match data');
  return { uidValidity, modseq, knownUids, seqMatch: { seqs, uids } };
}

/** SELECT and EXAMINE. */
export function parseSelect(args: readonly Token[]): Parsed<Select> {
  return parseWith(args, (a) => {
    const mailbox = a.mailbox();
    let condstore = false;
    let qresync: QresyncParam | undefined;
    if (!a.done) {
      const l = a.list('select parameters');
      while (!l.done) {
        const p = l.keyword('select parameter');
        if (p === 'CONDSTORE' && !condstore) condstore = true;
        else if (p === 'QRESYNC' && !qresync) qresync = parseQresync(l);
        else throw new ArgError(`unknown or repeated select parameter ${p}`);
      }
    }
    return qresync ? { mailbox, condstore, qresync } : { mailbox, condstore };
  });
}

export interface ListArgs {
  /** Decoded reference name. */
  readonly reference: string;
  /** Decoded pattern, `*` and `%` kept; see `listPattern` and `patternMatcher`. */
  readonly pattern: string;
}

/** LSUB, and LIST in its RFC 3501 form (see `parseListExtended`). */
export function parseList(args: readonly Token[]): Parsed<ListArgs> {
  return parseWith(args, (a) => {
    const reference = a.mailbox('reference name');
    const pattern = a.mailbox('mailbox pattern');
    return { reference, pattern };
  });
}

export const LIST_SELECT = ['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE'] as const;
export const LIST_RETURN = ['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE'] as const;
export type ListSelect = (typeof LIST_SELECT)[number];
export type ListReturn = (typeof LIST_RETURN)[number];

export interface ListExtended {
  readonly reference: string;
  /** Decoded patterns (one in the basic form). */
  readonly patterns: string[];
  /** The RFC 5258 form: selection options, a pattern list or RETURN was given. */
  readonly extended: boolean;
  readonly select: ReadonlySet<ListSelect>;
  /** Return options, implied ones included (SUBSCRIBED and SPECIAL-USE selection imply theirs). */
  readonly returns: ReadonlySet<ListReturn>;
  /** LIST-STATUS (RFC 5819): `RETURN (STATUS (...))`. */
  readonly status?: StatusItem[];
}

const oneOf = <T extends string>(all: readonly T[], k: string): T | undefined => all.find((x) => x === k);

/**
 * LIST with LIST-EXTENDED (RFC 5258 §6): `LIST [(selection options)] reference (pattern | (patterns))
 * [RETURN (return options)]`, SPECIAL-USE options (RFC 6154 §3) and LIST-STATUS (RFC 5819).
 * Unknown options, RECURSIVEMATCH without a base option and an empty STATUS list are errors (BAD).
 */
export function parseListExtended(args: readonly Token[]): Parsed<ListExtended> {
  return parseWith(args, (a) => {
    const select = new Set<ListSelect>();
    const returns = new Set<ListReturn>();
    let extended = false;
    if (a.atList) {
      extended = true;
      const l = a.list('selection options');
      while (!l.done) {
        const k = l.keyword('selection option');
        const o = oneOf(LIST_SELECT, k);
        if (!o) throw new ArgError(`unknown selection option ${k}`);
        select.add(o);
      }
      if (select.has('RECURSIVEMATCH') && !select.has('SUBSCRIBED') && !select.has('SPECIAL-USE'))
        throw new ArgError('RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE');
    }
    const reference = a.mailbox('reference name');
    const patterns: string[] = [];
    if (a.atList) {
      extended = true;
      const l = a.list('mailbox patterns');
      do patterns.push(l.mailbox('mailbox pattern'));
      while (!l.done);
    } else patterns.push(a.mailbox('mailbox pattern'));
    let status: StatusItem[] | undefined;
    if (!a.done) {
      extended = true;
      if (a.keyword('RETURN') !== 'RETURN') throw new ArgError('expected RETURN');
      const l = a.list('return options');
      while (!l.done) {
        const k = l.keyword('return option');
        if (k === 'STATUS') {
          if (status) throw new ArgError('STATUS given twice');
          status = statusItems(l.list('status items'));
          continue;
        }
        const o = oneOf(LIST_RETURN, k);
        if (!o) throw new ArgError(`unknown return option ${k}`);
        returns.add(o);
      }
    }
    if (select.has('SUBSCRIBED')) returns.add('SUBSCRIBED');
    if (select.has('SPECIAL-USE')) returns.add('SPECIAL-USE');
    const base = { reference, patterns, extended, select, returns };
    return status ? { ...base, status } : base;
  });
}

export const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ'] as const;
export type StatusItem = (typeof STATUS_ITEMS)[number];

export interface Status {
  readonly mailbox: string;
  readonly items: StatusItem[];
}

/** `(item ...)`, at least one, duplicates dropped. */
function statusItems(l: Args): StatusItem[] {
  const items: StatusItem[] = [];
  do {
    const k = l.keyword('status item');
    const item = oneOf(STATUS_ITEMS, k);
    if (!item) throw new ArgError(`unknown status item ${k}`);
    if (!items.includes(item)) items.push(item);
  } while (!l.done);
  return items;
}

export function parseStatus(args: readonly Token[]): Parsed<Status> {
  return parseWith(args, (a) => {
    const mailbox = a.mailbox();
    return { mailbox, items: statusItems(a.list('status items')) };
  });
}

export interface Append {
  readonly mailbox: string;
  readonly flags: string[];
  /** Epoch ms of the optional date-time. */
  readonly date?: number;
  /** The message, byte-exact. */
  readonly message: Buffer;
}

export function parseAppend(args: readonly Token[]): Parsed<Append> {
  return parseWith(args, (a) => {
    const mailbox = a.mailbox();
    const flags = a.atList ? a.flagList() : [];
    let date: number | undefined;
    if (a.peek()?.kind === 'quoted') {
      const r = parseDateTime(a.string('date-time'));
      if (!r.ok) throw new ArgError(r.error);
      date = r.value;
    }
    const t = a.next('message literal');
    if (t.kind !== 'literal') throw new ArgError('message must be a literal');
    return date === undefined ? { mailbox, flags, message: t.value } : { mailbox, flags, date, message: t.value };
  });
}

export interface Store {
  readonly set: SequenceSet;
  /** `+FLAGS` add, `-FLAGS` remove, `FLAGS` replace. */
  readonly mode: 'add' | 'remove' | 'replace';
  readonly silent: boolean;
  readonly flags: string[];
  /** CONDSTORE `(UNCHANGEDSINCE n)`. */
  readonly unchangedSince?: bigint;
}

const STORE_ITEM = /^([+-]?)FLAGS(\.SILENT)?$/;

export function parseStore(args: readonly Token[]): Parsed<Store> {
  return parseWith(args, (a) => {
    const set = a.sequenceSet();
    let unchangedSince: bigint | undefined;
    if (a.atList) {
      const l = a.list('store modifiers');
      while (!l.done) {
        const m = l.keyword('store modifier');
        if (m !== 'UNCHANGEDSINCE' || unchangedSince !== undefined) throw new ArgError(`invalid store modifier ${m}`);
        unchangedSince = l.modseq();
      }
    }
    const item = STORE_ITEM.exec(a.keyword('store item'));
    if (!item) throw new ArgError('store item must be FLAGS, +FLAGS or -FLAGS');
    const mode = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'replace';
    const flags: string[] = [];
    if (a.atList) flags.push(...a.flagList());
    else
      do flags.push(a.flag());
      while (!a.done);
    const base = { set, mode, silent: item[2] !== undefined, flags } as const;
    return unchangedSince === undefined ? base : { ...base, unchangedSince };
  });
}

export interface CopyMove {
  readonly set: SequenceSet;
  readonly mailbox: string;
}

/** COPY and MOVE (RFC 6851). */
export function parseCopyMove(args: readonly Token[]): Parsed<CopyMove> {
  return parseWith(args, (a) => ({ set: a.sequenceSet(), mailbox: a.mailbox() }));
}

/** UID EXPUNGE (RFC 4315 §2.1). */
export function parseUidExpunge(args: readonly Token[]): Parsed<SequenceSet> {
  return parseWith(args, (a) => a.sequenceSet());
}

/** ENABLE (RFC 5161): capability names, upper-cased. */
export function parseEnable(args: readonly Token[]): Parsed<string[]> {
  return parseWith(args, (a) => {
    const caps: string[] = [];
    do caps.push(a.keyword('capability'));
    while (!a.done);
    return caps;
  });
}

/** ID (RFC 2971): NIL, or field/value pairs (at most 30, values may be NIL). */
export function parseId(args: readonly Token[]): Parsed<[string, string | null][] | null> {
  return parseWith(args, (a) => {
    if (!a.atList) {
      if (a.keyword('ID parameters') !== 'NIL') throw new ArgError('ID parameters must be NIL or a list');
      return null;
    }
    const l: Args = a.list('ID parameters');
    const pairs: [string, string | null][] = [];
    while (!l.done) {
      if (pairs.length >= 30) throw new ArgError('too many ID fields');
      pairs.push([l.string('ID field'), l.nstring('ID value')]);
    }
    return pairs;
  });
}
