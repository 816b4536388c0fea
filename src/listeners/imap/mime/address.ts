/**
 * RFC 5322 address lists → IMAP ENVELOPE address structures, following Dovecot's
 * message-address parser with FILL_MISSING: groups open with (NIL NIL "name" NIL) and close with
 * (NIL NIL NIL NIL), a missing local part or domain becomes MISSING_MAILBOX / MISSING_DOMAIN, a
 * lone comment stands in for a missing display name. Never throws; every loop step consumes input.
 */
import { Lexer } from './lexer.js';

export interface Address {
  name: string | null;
  route: string | null;
  /** Mailbox, or the group name for a group start; null for a group end. */
  mailbox: string | null;
  /** Null for group start/end. */
  host: string | null;
}

const MISSING_MAILBOX = 'MISSING_MAILBOX';
const MISSING_DOMAIN = 'MISSING_DOMAIN';

/** Display-name words: atoms and quoted strings joined by one blank (as Dovecot's phrase parser). */
function phrase(lx: Lexer): string {
  const words: string[] = [];
  for (;;) {
    const c = lx.peek();
    if (c === '"') words.push(lx.quoted());
    else {
      const a = lx.atom();
      if (!a) {
        if (c === '.') {
          lx.pos++;
          lx.skipCfws();
          words.push('.');
          continue;
        }
        break;
      }
      words.push(a);
    }
  }
  return words.join(' ').replace(/ \. /g, '.');
}

function localPart(lx: Lexer): string {
  let out = '';
  for (;;) {
    if (lx.peek() === '"') out += lx.quoted();
    else out += lx.atom();
    if (lx.peek() !== '.') break;
    lx.pos++;
    lx.skipCfws();
    out += '.';
  }
  return out;
}

function domain(lx: Lexer): string {
  return lx.peek() === '[' ? lx.domainLiteral() : lx.dotAtom();
}

/** `@domain` after a local part, or '' when there is none. */
function atDomain(lx: Lexer): string {
  if (lx.peek() !== '@') return '';
  lx.pos++;
  lx.skipCfws();
  return domain(lx);
}

/** `<[route:]local@domain>` at pos (which is '<'). */
function angleAddr(lx: Lexer, name: string | null): Address {
  lx.pos++;
  lx.skipCfws();
  let route: string | null = null;
  if (lx.peek() === '@') {
    const hops: string[] = [];
    while (lx.peek() === '@') {
      lx.pos++;
      lx.skipCfws();
      hops.push(`@${domain(lx)}`);
      if (lx.peek() === ',') {
        lx.pos++;
        lx.skipCfws();
      }
    }
    route = hops.join(',');
    if (lx.peek() === ':') {
      lx.pos++;
      lx.skipCfws();
    }
  }
  const mailbox = localPart(lx);
  const host = atDomain(lx);
  while (!lx.done && lx.peek() !== '>' && lx.peek() !== ',') lx.pos++;
  if (lx.peek() === '>') {
    lx.pos++;
    lx.skipCfws();
  }
  return { name, route, mailbox: mailbox || MISSING_MAILBOX, host: host || MISSING_DOMAIN };
}

/** One mailbox (name-addr or addr-spec) at pos. */
function mailbox(lx: Lexer): Address | null {
  const start = lx.pos;
  lx.lastComment = null;
  if (lx.peek() === '<') return angleAddr(lx, null);
  const name = phrase(lx);
  const phraseEnd = lx.pos;
  if (lx.peek() === '<') return angleAddr(lx, name || null);
  // addr-spec: re-read from the start as local@domain
  lx.pos = start;
  lx.lastComment = null;
  const local = localPart(lx);
  const host = atDomain(lx);
  if (!host && name && lx.pos < phraseEnd) {
    // words that are no address: a display name with no mailbox (as Dovecot)
    lx.pos = phraseEnd;
    return { name, route: null, mailbox: MISSING_MAILBOX, host: MISSING_DOMAIN };
  }
  if (!local && !host) return null;
  return { name: lx.lastComment, route: null, mailbox: local || MISSING_MAILBOX, host: host || MISSING_DOMAIN };
}

/** Parse an address-list header value; null when the header is absent. */
export function parseAddresses(value: string): Address[] {
  const lx = new Lexer(value);
  const out: Address[] = [];
  let inGroup = false;
  lx.skipCfws();
  while (!lx.done) {
    const before = lx.pos;
    // group: phrase ':' ... ';'
    if (!inGroup) {
      const save = lx.pos;
      const name = phrase(lx);
      if (lx.peek() === ':' && name) {
        lx.pos++;
        lx.skipCfws();
        out.push({ name: null, route: null, mailbox: name, host: null });
        inGroup = true;
        continue;
      }
      lx.pos = save;
    }
    if (inGroup && lx.peek() === ';') {
      lx.pos++;
      lx.skipCfws();
      out.push({ name: null, route: null, mailbox: null, host: null });
      inGroup = false;
      continue;
    }
    const c = lx.peek();
    if (c === ',') {
      lx.pos++;
      lx.skipCfws();
      continue;
    }
    const a = mailbox(lx);
    if (a) {
      out.push(a);
      // Junk after an address ends the list (as Dovecot); it also keeps parsing linear.
      if (!lx.done && lx.peek() !== ',' && !(inGroup && lx.peek() === ';')) break;
    }
    if (lx.pos === before) {
      lx.pos++;
      lx.skipCfws();
    }
  }
  if (inGroup) out.push({ name: null, route: null, mailbox: null, host: null });
  return out;
}
