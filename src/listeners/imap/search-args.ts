/**
 * SEARCH arguments (RFC 3501 §6.4.4, §9 `search-key`; CONDSTORE `MODSEQ`, RFC 7162 §3.1.5) as
 * an AST the session evaluates against its messages.
 *
 * Invariants:
 * - Every key of RFC 3501 §6.4.4 is accepted; the top-level keys form one `and`.
 * - `CHARSET` must be US-ASCII or UTF-8 (case-insensitive); any other fails with code
 *   BADCHARSET so the session answers `NO [BADCHARSET (US-ASCII UTF-8)]`.
 * - Nesting (NOT, OR, parentheses) is capped at MAX_SEARCH_DEPTH so recursion stays shallow
 *   whatever the input.
 * - BCC/CC/FROM/SUBJECT/TO become `header` keys with an upper-case field name; dates are day
 *   numbers (see imap-date.ts), compared without time.
 */
import { ArgError, type ArgErrorCode, type Args, parseWith } from './args.js';
import { parseDate } from './imap-date.js';
import type { Token } from './lexer.js';
import type { Result } from './result.js';
import type { SequenceSet } from './sequence-set.js';

export const MAX_SEARCH_DEPTH = 64;

export type FlagName = '\\Answered' | '\\Deleted' | '\\Draft' | '\\Flagged' | '\\Seen';

export type SearchKey =
  | { readonly kind: 'and'; readonly keys: SearchKey[] }
  | { readonly kind: 'or'; readonly a: SearchKey; readonly b: SearchKey }
  | { readonly kind: 'not'; readonly key: SearchKey }
  | { readonly kind: 'all' }
  /** A system flag or keyword set (`has`) or not set. */
  | { readonly kind: 'flag'; readonly flag: string; readonly has: boolean }
  | { readonly kind: 'recent' }
  /** NEW = RECENT and UNSEEN; OLD = NOT RECENT (kept as written for the session). */
  | { readonly kind: 'new' }
  | { readonly kind: 'old' }
  | { readonly kind: 'header'; readonly field: string; readonly value: string }
  | { readonly kind: 'body'; readonly value: string }
  | { readonly kind: 'text'; readonly value: string }
  /** `internal` = INTERNALDATE (BEFORE/ON/SINCE), `sent` = Date: header (SENT*); `day` from parseDate. */
  | {
      readonly kind: 'date';
      readonly of: 'internal' | 'sent';
      readonly op: 'before' | 'on' | 'since';
      readonly day: number;
    }
  | { readonly kind: 'size'; readonly op: 'larger' | 'smaller'; readonly n: number }
  | { readonly kind: 'seq'; readonly set: SequenceSet }
  | { readonly kind: 'uid'; readonly set: SequenceSet }
  | { readonly kind: 'modseq'; readonly modseq: bigint };

export interface Search {
  /** Upper-cased, when given. */
  readonly charset?: 'US-ASCII' | 'UTF-8';
  readonly key: SearchKey;
}

const FLAG_KEYS: Record<string, [FlagName, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const HEADER_KEYS = new Set(['BCC', 'CC', 'FROM', 'SUBJECT', 'TO']);

const DATE_KEYS: Record<string, ['internal' | 'sent', 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'],
  ON: ['internal', 'on'],
  SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'],
  SENTON: ['sent', 'on'],
  SENTSINCE: ['sent', 'since'],
};

const SEQ_START = /^[\d*]/;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

export function parseSearch(args: readonly Token[]): Result<Search, ArgErrorCode> {
  return parseWith(args, (a) => {
    let charset: Search['charset'];
    if (a.peekAtom() === 'CHARSET') {
      a.next('CHARSET');
      const c = a.astring('charset').toUpperCase();
      if (c !== 'US-ASCII' && c !== 'UTF-8') throw new ArgError(`unsupported charset ${c}`, 'BADCHARSET');
      charset = c;
    }
    const keys: SearchKey[] = [];
    do keys.push(searchKey(a, 0));
    while (!a.done);
    const key: SearchKey = keys.length === 1 ? (keys[0] as SearchKey) : { kind: 'and', keys };
    return charset ? { charset, key } : { key };
  });
}

function searchKey(a: Args, depth: number): SearchKey {
  if (depth >= MAX_SEARCH_DEPTH) throw new ArgError('search keys nested too deeply');
  if (a.atList) {
    const l = a.list('search key list');
    const keys: SearchKey[] = [];
    do keys.push(searchKey(l, depth + 1));
    while (!l.done);
    return keys.length === 1 ? (keys[0] as SearchKey) : { kind: 'and', keys };
  }
  const t = a.peek();
  if (t?.kind === 'atom' && SEQ_START.test(t.value)) return { kind: 'seq', set: a.sequenceSet() };
  const k = a.keyword('search key');
  const flag = FLAG_KEYS[k];
  if (flag) return { kind: 'flag', flag: flag[0], has: flag[1] };
  if (HEADER_KEYS.has(k)) return { kind: 'header', field: k, value: a.astring('search string') };
  const date = DATE_KEYS[k];
  if (date) {
    const r = parseDate(a.astring('date'));
    if (!r.ok) throw new ArgError(r.error);
    return { kind: 'date', of: date[0], op: date[1], day: r.value };
  }
  switch (k) {
    case 'ALL':
      return { kind: 'all' };
    case 'RECENT':
      return { kind: 'recent' };
    case 'NEW':
      return { kind: 'new' };
    case 'OLD':
      return { kind: 'old' };
    case 'BODY':
      return { kind: 'body', value: a.astring('search string') };
    case 'TEXT':
      return { kind: 'text', value: a.astring('search string') };
    case 'HEADER': {
      const field = a.astring('header field name');
      if (!FIELD_NAME.test(field)) throw new ArgError('invalid header field name');
      return { kind: 'header', field: field.toUpperCase(), value: a.astring('search string') };
    }
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { kind: 'flag', flag: a.flag(), has: k === 'KEYWORD' };
    case 'LARGER':
    case 'SMALLER':
      return { kind: 'size', op: k === 'LARGER' ? 'larger' : 'smaller', n: a.number('size') };
    case 'UID':
      return { kind: 'uid', set: a.sequenceSet() };
    case 'NOT':
      return { kind: 'not', key: searchKey(a, depth + 1) };
    case 'OR': {
      const left = searchKey(a, depth + 1);
      return { kind: 'or', a: left, b: searchKey(a, depth + 1) };
    }
    case 'MODSEQ': {
      // Optional entry name and type (RFC 7162 §3.1.5): accepted, not used.
      if (a.peek()?.kind !== 'atom' || !/^\d/.test(a.peekAtom() ?? '')) {
        a.string('entry name');
        const type = a.keyword('entry type');
        if (type !== 'PRIV' && type !== 'SHARED' && type !== 'ALL') throw new ArgError('invalid entry type');
      }
      return { kind: 'modseq', modseq: a.modseq() };
    }
    default:
      throw new ArgError(`unknown search key ${k}`);
  }
}

/** Whether the search names MODSEQ anywhere (the reply then carries `(MODSEQ n)`, RFC 7162 §3.1.5). */
export function usesModseq(key: SearchKey): boolean {
  switch (key.kind) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(usesModseq);
    case 'or':
      return usesModseq(key.a) || usesModseq(key.b);
    case 'not':
      return usesModseq(key.key);
    default:
      return false;
  }
}
