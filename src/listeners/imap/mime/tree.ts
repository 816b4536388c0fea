/**
 * Raw message bytes → MIME tree of byte offsets, in one forward pass, without recursion.
 *
 * Invariants:
 * - Offsets index the original Buffer: a part's header is [start, bodyStart), its body
 *   [bodyStart, end); BODY[section] answers are slices of it (byte-exact, no re-encoding).
 * - Multipart bodies are split the way Dovecot's message-parser does (RFC 2046 with its
 *   tolerances): a boundary line is `--` + boundary as a prefix of the line, the longest of all
 *   open boundaries wins, the line end before it belongs to the delimiter, preamble/epilogue are
 *   not parts, a missing close delimiter ends the part at its parent's delimiter or at EOF.
 * - Bounded on hostile input: an explicit state loop (no recursion), nesting capped at
 *   MAX_DEPTH and the part count at MAX_PARTS (beyond them a part is a leaf), header lines are
 *   scanned with byte loops bounded by the line (no regex, no quadratic rescans).
 * Header values are kept as latin1 "binary" strings so every byte maps 1:1 back to the wire.
 */
import { type ContentType, parseContentType } from './fields.js';

/** Dovecot's message_max_nested_mime_parts default: parts in one chain, the root included. */
export const MAX_DEPTH = 100;
/** Dovecot's message_max_mime_parts default. */
export const MAX_PARTS = 10_000;

/** One header field: [start, end) covers the name, the value and its folded continuation lines. */
export interface HeaderField {
  /** Lower-cased name, trailing blanks before the colon removed. */
  name: string;
  start: number;
  /** First byte after the colon (= end when the line has no colon). */
  valueStart: number;
  end: number;
}

export interface MimePart {
  start: number;
  /** Where the blank line ending the header starts (= bodyStart when there is none). */
  headerEnd: number;
  bodyStart: number;
  end: number;
  depth: number;
  fields: HeaderField[];
  contentType: ContentType;
  /** Multipart children (empty for leaves and message/rfc822). */
  children: MimePart[];
  /** The embedded message of a message/rfc822 part. */
  message: MimePart | null;
  kind: 'leaf' | 'multipart' | 'message';
  /** A multipart or message/rfc822 past the limits, kept as a leaf: shown as application/octet-stream. */
  capped: boolean;
}

interface Boundary {
  bytes: Buffer;
  owner: MimePart;
}

interface Hit {
  /** Index of the line terminator before the boundary line (or the line start when none). */
  term: number;
  /** First byte after the boundary line. */
  next: number;
  owner: number;
  close: boolean;
}

const LF = 10;
const CR = 13;
const DASH = 45;
const LF_DASHES = Buffer.from('\n--');

/** Parse a whole message (the root part). Never throws. */
export function parseMessage(buf: Buffer): MimePart {
  const stack: Boundary[] = [];
  const open: MimePart[] = [];
  let count = 0;
  const newPart = (start: number, depth: number): MimePart => {
    count++;
    const p: MimePart = {
      start,
      headerEnd: start,
      bodyStart: start,
      end: buf.length,
      depth,
      fields: [],
      contentType: parseContentType(null, false),
      children: [],
      message: null,
      kind: 'leaf',
      capped: false,
    };
    open.push(p);
    return p;
  };

  /** Is there a boundary line at `p` (a line start)? The longest matching open boundary wins. */
  const matchAt = (p: number): Hit | null => {
    if (buf[p] !== DASH || buf[p + 1] !== DASH) return null;
    let best = -1;
    for (let k = stack.length - 1; k >= 0; k--) {
      const b = (stack[k] as Boundary).bytes;
      if (p + 2 + b.length > buf.length) continue;
      if (buf.compare(b, 0, b.length, p + 2, p + 2 + b.length) !== 0) continue;
      if (best < 0 || b.length > (stack[best] as Boundary).bytes.length) best = k;
    }
    if (best < 0) return null;
    const after = p + 2 + (stack[best] as Boundary).bytes.length;
    const lf = buf.indexOf(LF, p);
    let term = p;
    if (term > 0 && buf[term - 1] === LF) {
      term--;
      if (term > 0 && buf[term - 1] === CR) term--;
    }
    return {
      term,
      next: lf < 0 ? buf.length : lf + 1,
      owner: best,
      close: buf[after] === DASH && buf[after + 1] === DASH,
    };
  };

  /** The next boundary line at or after line start `p`, or null at EOF. */
  const findFrom = (p: number): Hit | null => {
    if (stack.length === 0) return null;
    if (p < buf.length) {
      const h = matchAt(p);
      if (h) return h;
    }
    let from = p;
    for (;;) {
      const i = buf.indexOf(LF_DASHES, from);
      if (i < 0) return null;
      const h = matchAt(i + 1);
      if (h) return h;
      from = i + 1;
    }
  };

  /** Scan the header of `part`; returns a boundary hit inside it, if any. */
  const readHeader = (part: MimePart): Hit | null => {
    let p = part.start;
    const n = buf.length;
    while (p < n) {
      const c = buf[p];
      if (c === LF || (c === CR && buf[p + 1] === LF)) {
        part.headerEnd = p;
        part.bodyStart = c === LF ? p + 1 : p + 2;
        return null;
      }
      if (c === DASH && stack.length > 0) {
        const h = matchAt(p);
        if (h) {
          part.headerEnd = part.bodyStart = p;
          return h;
        }
      }
      let e = p;
      let colon = -1;
      while (e < n && buf[e] !== LF) {
        if (colon < 0 && buf[e] === 0x3a) colon = e;
        e++;
      }
      const lineEnd = e < n ? e + 1 : n;
      const last = part.fields[part.fields.length - 1];
      if ((c === 0x20 || c === 0x09) && last) last.end = lineEnd;
      else {
        let ne = colon < 0 ? (e > p && buf[e - 1] === CR ? e - 1 : e) : colon;
        while (ne > p && (buf[ne - 1] === 0x20 || buf[ne - 1] === 0x09)) ne--;
        part.fields.push({
          name: buf.toString('latin1', p, ne).toLowerCase(),
          start: p,
          valueStart: colon < 0 ? lineEnd : colon + 1,
          end: lineEnd,
        });
      }
      p = lineEnd;
    }
    part.headerEnd = part.bodyStart = n;
    return null;
  };

  const root = newPart(0, 0);
  let begin: MimePart | null = root;
  let hit: Hit | null = null;
  let parentDigest = false;
  // After a close delimiter, the line end that ends it is the epilogue's, not the next delimiter's.
  let floor = 0;
  for (;;) {
    if (begin) {
      const part: MimePart = begin;
      begin = null;
      hit = readHeader(part);
      if (!hit) {
        const ctField = part.fields.find((f) => f.name === 'content-type');
        part.contentType = parseContentType(ctField ? fieldValue(buf, ctField) : null, parentDigest);
        const ct = part.contentType;
        const room = part.depth + 1 < MAX_DEPTH && count < MAX_PARTS;
        part.capped = !room && (ct.type === 'multipart' || (ct.type === 'message' && ct.subtype === 'rfc822'));
        if (room && ct.type === 'multipart') {
          // Without a boundary Dovecot still calls it a multipart, one with no parts.
          part.kind = 'multipart';
          if (ct.boundary !== null) stack.push({ bytes: Buffer.from(ct.boundary, 'latin1'), owner: part });
          parentDigest = ct.subtype === 'digest';
          hit = findFrom(part.bodyStart);
        } else if (room && ct.type === 'message' && ct.subtype === 'rfc822') {
          part.kind = 'message';
          part.message = newPart(part.bodyStart, part.depth + 1);
          begin = part.message;
          parentDigest = false;
          continue;
        } else {
          hit = findFrom(part.bodyStart);
        }
      }
    }
    if (!hit) break;
    // A delimiter of stack[hit.owner]: every part opened inside its owner ends here.
    const owner = (stack[hit.owner] as Boundary).owner;
    const oi = open.lastIndexOf(owner);
    const term = Math.max(hit.term, floor);
    for (let i = open.length - 1; i > oi; i--) {
      const p = open[i] as MimePart;
      // The line end before a delimiter belongs to it, even when it is the header's blank line.
      if (term < p.bodyStart) p.headerEnd = p.bodyStart = Math.max(p.start, Math.min(p.headerEnd, term));
      p.end = Math.max(p.bodyStart, term);
    }
    open.length = oi + 1;
    stack.length = hit.close ? hit.owner : hit.owner + 1;
    if (hit.close) {
      floor = hit.next;
      parentDigest = false;
      const h: Hit | null = findFrom(hit.next);
      hit = h;
      continue;
    }
    if (count >= MAX_PARTS) {
      // Too many parts: the rest of the message belongs to the open parts (bounded memory).
      break;
    }
    const child = newPart(hit.next, owner.depth + 1);
    owner.children.push(child);
    parentDigest = owner.contentType.subtype === 'digest';
    begin = child;
    hit = null;
  }
  for (const p of open) p.end = buf.length;
  return root;
}

/** A field's value as sent: leading blanks trimmed, inner line ends kept, the final one dropped. */
export function rawFieldValue(buf: Buffer, f: HeaderField): string {
  let s = f.valueStart;
  while (s < f.end && (buf[s] === 0x20 || buf[s] === 0x09)) s++;
  let e = f.end;
  if (e > s && buf[e - 1] === LF) e--;
  if (e > s && buf[e - 1] === CR) e--;
  return buf.toString('latin1', s, e);
}

/** A field's value, unfolded (CR/LF removed, folding blanks kept), leading blanks trimmed. */
export function fieldValue(buf: Buffer, f: HeaderField): string {
  let s = f.valueStart;
  while (s < f.end && (buf[s] === 0x20 || buf[s] === 0x09)) s++;
  let out = '';
  let from = s;
  for (let i = s; i < f.end; i++) {
    const c = buf[i];
    if (c === CR || c === LF) {
      if (i > from) out += buf.toString('latin1', from, i);
      from = i + 1;
    }
  }
  if (f.end > from) out += buf.toString('latin1', from, f.end);
  return out;
}

/** The first field called `name` (lower case), or null. */
export function firstField(buf: Buffer, part: MimePart, name: string): string | null {
  for (const f of part.fields) if (f.name === name) return fieldValue(buf, f);
  return null;
}
