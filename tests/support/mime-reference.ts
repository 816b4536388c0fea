/**
 * The MIME corpus (tests/fixtures/mime/*.eml plus generated.ts), the FETCH items asked for each
 * message, our answers for them, and Dovecot's answers fetched live from a testbed instance.
 *
 * Values are latin1 strings (one char per byte). Section contents are the literal's bytes (the
 * `{n}` prefix removed); ENVELOPE/BODY/BODYSTRUCTURE are the wire text. Values longer than
 * BIG are stored as `sha256:<hex>:<length>` to keep expected.json small.
 *
 * Run directly to (re)write tests/fixtures/mime/expected.json from a private Dovecot:
 *   node --import tsx tests/support/mime-reference.ts
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  addressText,
  bodyStructure,
  bodyText,
  envelope,
  headerText,
  type MimePart,
  parseMessage,
  parseSection,
  partial,
  section,
  sentDate,
} from '../../src/listeners/imap/mime/index.js';
import { type CorpusMessage, generatedMessages } from '../fixtures/mime/generated.js';
import { rawImap } from './imap-raw.js';
import { REPO_ROOT, startTestbed } from './testbed.js';

export const MIME_DIR = join(REPO_ROOT, 'tests/fixtures/mime');
export const EXPECTED_FILE = join(MIME_DIR, 'expected.json');
export const EXPECTED_SEARCH_FILE = join(MIME_DIR, 'expected-search.json');

/** SEARCH criteria checked against Dovecot: [criterion, value]; the value is sent as a UTF-8 literal. */
export const SEARCH_KEYS: Array<[string, string]> = [
  ['SUBJECT', 'élève'],
  ['SUBJECT', 'CAFÉ'],
  ['SUBJECT', 'folded subject'],
  ['SUBJECT', 'grüße'],
  ['SUBJECT', 'été'],
  ['FROM', 'andré'],
  ['FROM', 'alice@example'],
  ['FROM', 'jörg'],
  ['FROM', 'doe, john'],
  ['TO', 'team'],
  ['TO', 'carol c.'],
  ['TO', 'josé'],
  ['CC', 'undisclosed'],
  ['BCC', 'hidden'],
  ['BODY', 'café au lait'],
  ['BODY', 'hello world'],
  ['BODY', 'été chaud'],
  ['BODY', 'inner plain'],
  ['BODY', 'crème brûlée'],
  ['BODY', 'AAECAwQF'],
  ['HEADER X-LONG', 'two'],
  ['SENTON', '7-Dec-2026'],
  ['SENTBEFORE', '7-Dec-2026'],
  ['SENTSINCE', '7-Dec-2026'],
];
export type SearchAnswers = Record<string, string[]>;
const searchKey = ([c, v]: [string, string]) => `${c} ${v}`;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** Does a message match one criterion, using our text helpers (case-insensitive substring)? */
export function ourSearch(raw: Buffer, root: MimePart, criterion: string, value: string): boolean {
  const has = (texts: string[]) => texts.some((t) => t.toLowerCase().includes(value.toLowerCase()));
  const [c, name] = criterion.split(' ') as [string, string | undefined];
  if (c === 'SUBJECT') return has(headerText(raw, 'subject', root));
  if (c === 'HEADER') return has(headerText(raw, name ?? '', root));
  if (c === 'BODY') return has([bodyText(raw, root)]);
  if (c.startsWith('SENT')) {
    const [d, m, y] = value.split('-');
    const day = Date.UTC(Number(y), MONTHS.indexOf((m ?? '').toLowerCase()), Number(d));
    const sent = sentDate(raw, root)?.day ?? 0; // no usable Date: 1970, as Dovecot
    return c === 'SENTON' ? sent === day : c === 'SENTBEFORE' ? sent < day : sent >= day;
  }
  return has(addressText(raw, c.toLowerCase(), root));
}

/** The corpus names each SEARCH criterion finds with our helpers. */
export function ourSearchAnswers(): SearchAnswers {
  const msgs = mimeCorpus().map((m) => ({ ...m, root: parseMessage(m.raw) }));
  const out: SearchAnswers = {};
  for (const k of SEARCH_KEYS)
    out[searchKey(k)] = msgs.filter((m) => ourSearch(m.raw, m.root, k[0], k[1])).map((m) => m.name);
  return out;
}
const BIG = 4096;
const MAX_PATHS = 40;

export type Answers = Record<string, Record<string, string>>;

export function mimeCorpus(): CorpusMessage[] {
  const files = readdirSync(MIME_DIR)
    .filter((f) => f.endsWith('.eml'))
    .sort();
  return [
    ...files.map((f) => ({ name: f.slice(0, -4), raw: readFileSync(join(MIME_DIR, f)) })),
    ...generatedMessages(),
  ];
}

/** Part paths of a tree, depth-first, at most MAX_PATHS of them. */
function partPaths(root: MimePart): Array<{ path: string; message: boolean }> {
  const out: Array<{ path: string; message: boolean }> = [];
  const todo: Array<{ part: MimePart; path: string; top: boolean }> = [{ part: root, path: '', top: true }];
  while (todo.length && out.length < MAX_PATHS) {
    const { part, path, top } = todo.shift() as { part: MimePart; path: string; top: boolean };
    const inner = !top && part.kind === 'message' && part.message ? part.message : part;
    const kids = inner.kind === 'multipart' ? inner.children : top || inner !== part ? [inner] : [];
    kids.forEach((k, i) => {
      const p = path ? `${path}.${i + 1}` : `${i + 1}`;
      out.push({ path: p, message: k.kind === 'message' });
      if (k !== part) todo.push({ part: k, path: p, top: false });
    });
  }
  return out.slice(0, MAX_PATHS);
}

/** The FETCH items asked for one message. */
export function fetchItems(raw: Buffer): string[] {
  const items = [
    'ENVELOPE',
    'BODY',
    'BODYSTRUCTURE',
    'BODY.PEEK[]',
    'BODY.PEEK[HEADER]',
    'BODY.PEEK[TEXT]',
    'BODY.PEEK[HEADER.FIELDS (SUBJECT FROM CONTENT-TYPE X-LONG)]',
    'BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM)]',
    'BODY.PEEK[]<5.20>',
    'BODY.PEEK[1]<2.3>',
    'BODY.PEEK[9]',
    'BODY.PEEK[1.HEADER]',
    'BODY.PEEK[1.TEXT]',
    'BODY.PEEK[1.1]',
    'BODY.PEEK[1.1.MIME]',
    'BODY.PEEK[HEADER.FIELDS (subject Date)]<0.30>',
  ];
  for (const { path, message } of partPaths(parseMessage(raw))) {
    items.push(`BODY.PEEK[${path}]`, `BODY.PEEK[${path}.MIME]`);
    if (message)
      items.push(`BODY.PEEK[${path}.HEADER]`, `BODY.PEEK[${path}.TEXT]`, `BODY.PEEK[${path}.HEADER.FIELDS (SUBJECT)]`);
  }
  return items;
}

function store(v: Buffer): string {
  return v.length > BIG ? `sha256:${createHash('sha256').update(v).digest('hex')}:${v.length}` : v.toString('latin1');
}

/** Our answer for one item, in the stored form. */
export function ourAnswer(raw: Buffer, root: MimePart, item: string): string {
  if (item === 'ENVELOPE') return store(envelope(raw, root));
  if (item === 'BODY' || item === 'BODYSTRUCTURE') return store(bodyStructure(raw, root, item === 'BODYSTRUCTURE'));
  const m = /^BODY\.PEEK\[(.*)\](?:<(\d+)\.(\d+)>)?$/.exec(item);
  const spec = m ? parseSection(m[1] ?? '') : null;
  if (!m || !spec) throw new Error(`bad item ${item}`);
  const bytes = section(raw, root, spec);
  return store(m[2] === undefined ? bytes : partial(bytes, Number(m[2]), Number(m[3])));
}

/** Dovecot's answer value → stored form (section literals unwrapped). */
function fromWire(item: string, v: Buffer | null): string {
  if (v === null) return '<none>';
  if (item.startsWith('BODY.PEEK[')) {
    const m = /^\{(\d+)\}\r\n/.exec(v.subarray(0, 24).toString('latin1'));
    if (m) return store(v.subarray(m[0].length));
    if (v.toString('latin1') === '""') return '';
    return `<${v.toString('latin1')}>`;
  }
  return store(v);
}

/** Append every corpus message to a fresh Dovecot, fetch every item and run every SEARCH key. */
export async function dovecotAnswers(): Promise<{ answers: Answers; search: SearchAnswers }> {
  const tb = await startTestbed({ postfix: false });
  try {
    const imap = await rawImap(tb.imapPort, 'alice', 'alicepw');
    const out: Answers = {};
    const names = new Map<number, string>();
    for (const m of mimeCorpus()) {
      const uid = await imap.append(m.raw);
      names.set(uid, m.name);
      const answers: Record<string, string> = {};
      for (const item of fetchItems(m.raw)) answers[item] = fromWire(item, await imap.fetch(uid, item));
      out[m.name] = answers;
    }
    const search: SearchAnswers = {};
    for (const k of SEARCH_KEYS)
      search[searchKey(k)] = (await imap.search(k[0], k[1])).map((u) => names.get(u) ?? `uid ${u}`);
    imap.close();
    return { answers: out, search };
  } finally {
    await tb.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { answers, search } = await dovecotAnswers();
  writeFileSync(EXPECTED_FILE, `${JSON.stringify(answers, null, 1)}\n`);
  writeFileSync(EXPECTED_SEARCH_FILE, `${JSON.stringify(search, null, 1)}\n`);
  console.log(`wrote ${Object.keys(answers).length} messages, ${Object.keys(search).length} searches`);
}
