/**
 * IMAP flags ⇄ what a `messages` row stores (docs/imap-server.md): system flags as Maildir
 * letters in `flags` (\Seen=S, \Answered=R, \Flagged=F, \Deleted=T, \Draft=D, $Forwarded=P),
 * every other keyword space-separated in `keywords`.
 *
 * Invariants: letters are kept sorted and unique (the Maildir convention, like `trash()` writes
 * them); IMAP flag lists come out sorted, unique, system flags in their canonical spelling;
 * `\Recent` is session state and never stored; letters this module does not know (written by
 * another Maildir reader) are kept untouched by every change.
 */
import type { FlagChange } from './mailboxes.js';

const LETTERS: ReadonlyArray<[string, string]> = [
  ['\\Seen', 'S'],
  ['\\Answered', 'R'],
  ['\\Flagged', 'F'],
  ['\\Deleted', 'T'],
  ['\\Draft', 'D'],
  ['$Forwarded', 'P'],
];
const LETTER_OF = new Map(LETTERS.map(([flag, letter]) => [flag.toLowerCase(), letter]));
const FLAG_OF = new Map(LETTERS.map(([flag, letter]) => [letter, flag]));

/** A row's flag state. */
export interface StoredFlags {
  letters: string;
  keywords: string;
}

/** Sorted unique letters. */
export function sortLetters(letters: string): string {
  return [...new Set(letters)].sort().join('');
}

/** The IMAP flags of a row, sorted and unique. */
export function imapFlags(letters: string, keywords: string): string[] {
  const out = new Set<string>();
  for (const l of letters) {
    const f = FLAG_OF.get(l);
    if (f) out.add(f);
  }
  for (const k of keywords.split(' ')) if (k) out.add(k);
  return [...out].sort();
}

/** Split IMAP flags into letters and keywords (`\Recent` and unknown `\` flags dropped). */
export function storedFlags(flags: readonly string[]): StoredFlags {
  let letters = '';
  const keywords = new Set<string>();
  for (const f of flags) {
    const l = LETTER_OF.get(f.toLowerCase());
    if (l) letters += l;
    else if (!f.startsWith('\\') && f && !/[\s()\]{%*"\\]/.test(f)) keywords.add(f);
  }
  return { letters: sortLetters(letters), keywords: [...keywords].sort().join(' ') };
}

/** The flag state after a STORE. */
export function applyFlagChange(cur: StoredFlags, change: Pick<FlagChange, 'op' | 'flags'>): StoredFlags {
  const c = storedFlags(change.flags);
  const known = new Set(FLAG_OF.keys());
  const foreign = [...cur.letters].filter((l) => !known.has(l)).join('');
  const has = new Set(imapFlags(cur.letters, cur.keywords));
  const given = imapFlags(c.letters, c.keywords);
  let next: Set<string>;
  if (change.op === 'replace') next = new Set(given);
  else if (change.op === 'add') next = new Set([...has, ...given]);
  else {
    const drop = new Set(given.map((f) => f.toLowerCase()));
    next = new Set([...has].filter((f) => !drop.has(f.toLowerCase())));
  }
  const s = storedFlags([...next]);
  return { letters: sortLetters(s.letters + foreign), keywords: s.keywords };
}

/** True when two flag states are the same. */
export function sameFlags(a: StoredFlags, b: StoredFlags): boolean {
  return a.letters === b.letters && a.keywords === b.keywords;
}
