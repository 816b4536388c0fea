/**
 * FETCH arguments (RFC 3501 §6.4.5, §9 `fetch-att`; CONDSTORE RFC 7162 §3.1.4): the sequence
 * set, the attributes (macros expanded) and the `(CHANGEDSINCE n [VANISHED])` modifiers (QRESYNC
 * RFC 7162 §3.2.6).
 *
 * Invariants:
 * - A section atom (`BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>`) is re-lexed from the text
 *   between its brackets, so header names may be atoms or quoted strings.
 * - Part numbers are non-zero; MIME needs a part; HEADER.FIELDS needs at least one field name;
 *   a partial's length is non-zero. Field names come back upper-cased (headers match
 *   case-insensitively) and the section label echoed in the reply uses them as parsed.
 * - CHANGEDSINCE adds MODSEQ to the attributes (RFC 7162 §3.1.4.1).
 */
import { ArgError, type ArgErrorCode, type Args, parseWith } from './args.js';
import { CommandLexer, type Token } from './lexer.js';
import type { Result } from './result.js';
import type { SequenceSet } from './sequence-set.js';

export const SIMPLE_FETCH_ATTS = [
  'FLAGS',
  'INTERNALDATE',
  'RFC822',
  'RFC822.HEADER',
  'RFC822.SIZE',
  'RFC822.TEXT',
  'ENVELOPE',
  'BODY',
  'BODYSTRUCTURE',
  'UID',
  'MODSEQ',
] as const;
export type SimpleFetchAtt = (typeof SIMPLE_FETCH_ATTS)[number];

export type SectionKind = '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface Section {
  /** BODY.PEEK: do not set \Seen. */
  readonly peek: boolean;
  /** Part path, `[]` for the whole message. */
  readonly part: number[];
  readonly kind: SectionKind;
  /** For HEADER.FIELDS[.NOT], upper-cased. */
  readonly fields?: string[];
  readonly partial?: { readonly start: number; readonly length: number };
}

export type FetchAtt = { readonly kind: SimpleFetchAtt } | { readonly kind: 'BODY[]'; readonly section: Section };

export interface Fetch {
  readonly set: SequenceSet;
  readonly atts: FetchAtt[];
  readonly changedSince?: bigint;
  /** QRESYNC `VANISHED` modifier (RFC 7162 §3.2.6): only with CHANGEDSINCE. */
  readonly vanished?: boolean;
}

const MACROS: Record<string, SimpleFetchAtt[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

const SECTION_ATOM = /^(BODY|BODY\.PEEK)\[(.*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/is;
const PART = /^[1-9]\d{0,9}$/;

export function parseFetch(args: readonly Token[]): Result<Fetch, ArgErrorCode> {
  return parseWith(args, (a) => {
    const set = a.sequenceSet();
    const atts: FetchAtt[] = [];
    const macro = MACROS[a.peekAtom() ?? ''];
    if (macro) {
      a.next('attribute');
      for (const kind of macro) atts.push({ kind });
    } else if (a.atList) {
      const l = a.list('fetch attributes');
      do atts.push(fetchAtt(l));
      while (!l.done);
    } else atts.push(fetchAtt(a));
    let changedSince: bigint | undefined;
    let vanished = false;
    if (!a.done) {
      const l = a.list('fetch modifiers');
      while (!l.done) {
        const m = l.keyword('fetch modifier');
        if (m === 'CHANGEDSINCE' && changedSince === undefined) changedSince = l.modseq();
        else if (m === 'VANISHED' && !vanished) vanished = true;
        else throw new ArgError(`invalid fetch modifier ${m}`);
      }
      if (vanished && changedSince === undefined) throw new ArgError('VANISHED needs CHANGEDSINCE');
      if (!atts.some((x) => x.kind === 'MODSEQ')) atts.push({ kind: 'MODSEQ' });
    }
    if (changedSince === undefined) return { set, atts };
    return vanished ? { set, atts, changedSince, vanished } : { set, atts, changedSince };
  });
}

function fetchAtt(a: Args): FetchAtt {
  const raw = a.atom('fetch attribute');
  const upper = raw.toUpperCase();
  const simple = SIMPLE_FETCH_ATTS.find((s) => s === upper);
  if (simple) return { kind: simple };
  const m = SECTION_ATOM.exec(raw);
  if (!m) throw new ArgError(`unknown fetch attribute ${raw}`);
  const name = (m[1] as string).toUpperCase();
  const section = parseSection(m[2] as string, name === 'BODY.PEEK');
  if (m[3] === undefined) return { kind: 'BODY[]', section };
  const start = Number(m[3]);
  const length = Number(m[4]);
  if (start > 4294967295 || length === 0 || length > 4294967295) throw new ArgError('invalid partial');
  return { kind: 'BODY[]', section: { ...section, partial: { start, length } } };
}

/** Parses the text between the brackets of a section. */
function parseSection(text: string, peek: boolean): Section {
  const lexer = new CommandLexer(1, 1000);
  const end = lexer.lex(Buffer.from(text, 'latin1'));
  if (end.kind !== 'end' || !lexer.balanced) throw new ArgError('invalid section');
  const [spec, list, extra] = lexer.root;
  if (!spec) return { peek, part: [], kind: '' };
  if (spec.kind !== 'atom' || extra) throw new ArgError('invalid section');
  const pieces = spec.value.toUpperCase().split('.');
  const part: number[] = [];
  while (pieces.length && PART.test(pieces[0] as string)) part.push(Number(pieces.shift()));
  const kind = pieces.join('.');
  const needsList = kind === 'HEADER.FIELDS' || kind === 'HEADER.FIELDS.NOT';
  if (needsList !== (list !== undefined)) throw new ArgError('invalid section');
  if (!needsList) {
    if (kind === 'MIME' && part.length === 0) throw new ArgError('MIME needs a part number');
    if (kind !== '' && kind !== 'HEADER' && kind !== 'TEXT' && kind !== 'MIME') throw new ArgError('invalid section');
    if (kind === '' && spec.value.endsWith('.')) throw new ArgError('invalid section');
    return { peek, part, kind };
  }
  if (list?.kind !== 'list' || list.items.length === 0) throw new ArgError('header list must not be empty');
  const fields = list.items.map((t) => {
    if (t.kind === 'list' || t.kind === 'literal' || !/^[\x21-\x39\x3b-\x7e]+$/.test(t.value)) {
      throw new ArgError('invalid header field name');
    }
    return t.value.toUpperCase();
  });
  return { peek, part, kind: kind as SectionKind, fields };
}

/** The section as echoed in a FETCH reply: `BODY[1.HEADER.FIELDS (FROM TO)]<0>` (no PEEK, start only). */
export function sectionLabel(s: Section): string {
  const spec = [...s.part.map(String), ...(s.kind ? [s.kind] : [])].join('.');
  const fields = s.fields ? ` (${s.fields.join(' ')})` : '';
  const partial = s.partial ? `<${s.partial.start}>` : '';
  return `BODY[${spec}${fields}]${partial}`;
}
