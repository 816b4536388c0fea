/**
 * IMAP LIST patterns (RFC 3501 §6.3.8): `*` matches any characters, `%` any but the hierarchy
 * delimiter. One matcher for the local IMAP server's LIST/LSUB and for the folders an IMAP
 * account pulls (`incoming.folders`).
 *
 * Invariants:
 * - Matching is a set-of-positions automaton, O(name × pattern), never a backtracking regex, so a
 *   pattern like `*a*a*a*b` cannot blow up.
 * - Only `INBOX` itself is case-insensitive (RFC 3501 §5.1), in names and patterns alike:
 *   `inbox/x` is not `INBOX/x`.
 */

/** `INBOX` in any case becomes `INBOX`. */
export function normaliseInbox(name: string): string {
  return name.length === 5 && name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/** True when the pattern has a wildcard (`*` or `%`). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('%');
}

/** A predicate over mailbox names for a LIST pattern (the caller bounds the pattern's length). */
export function listMatcher(pattern: string, delimiter = '/'): (name: string) => boolean {
  // Runs of wildcards collapse: `**` = `*`, `%*` = `*`, `%%` = `%`.
  const toks: string[] = [];
  for (const ch of pattern) {
    const last = toks[toks.length - 1];
    if ((ch === '*' || ch === '%') && (last === '*' || last === '%')) {
      if (ch === '*') toks[toks.length - 1] = '*';
      continue;
    }
    toks.push(ch);
  }
  const inboxToks = normaliseInbox(toks.slice(0, 5).join('')) === 'INBOX' ? ['INBOX', ...toks.slice(5)] : undefined;
  const run = (t: readonly string[], name: readonly string[]): boolean => {
    let states = closure(t, new Set([0]));
    for (const ch of name) {
      const next = new Set<number>();
      for (const p of states) {
        const tok = t[p];
        if (tok === '*' || (tok === '%' && ch !== delimiter)) next.add(p);
        else if (tok === ch) next.add(p + 1);
      }
      if (!next.size) return false;
      states = closure(t, next);
    }
    return states.has(t.length);
  };
  return (name: string) => {
    if (inboxToks && (name === 'INBOX' || name.startsWith(`INBOX${delimiter}`))) {
      return run(inboxToks, ['INBOX', ...name.slice(5)]);
    }
    return run(toks, [...name]);
  };
}

/** Adds the positions after wildcards, which may match nothing. */
function closure(toks: readonly string[], states: Set<number>): Set<number> {
  for (const p of states) {
    if (toks[p] === '*' || toks[p] === '%') states.add(p + 1);
  }
  return states;
}
