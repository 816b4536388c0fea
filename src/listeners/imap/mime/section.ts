/**
 * BODY[section]<partial> contents (RFC 3501 §6.4.5) as slices of the original Buffer: whole
 * message, HEADER, HEADER.FIELDS[.NOT], TEXT, MIME and part paths through multiparts and
 * message/rfc822 (part 1 of a non-multipart message is its body). HEADER.FIELDS keeps the
 * matching lines with their folded continuations, then the blank line (as Dovecot).
 */
import type { MimePart } from './tree.js';

export type SectionKind = '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface SectionSpec {
  /** Part numbers, 1-based; empty for the whole message. */
  path: number[];
  kind: SectionKind;
  /** Field names for HEADER.FIELDS[.NOT], any case. */
  fields?: string[];
}

const CRLF = Buffer.from('\r\n');
const KINDS: readonly SectionKind[] = ['HEADER.FIELDS.NOT', 'HEADER.FIELDS', 'HEADER', 'TEXT', 'MIME'];

/** Parse the text between `[` and `]`, e.g. `1.2.HEADER.FIELDS (From To)`; null when invalid. */
export function parseSection(text: string): SectionSpec | null {
  const path: number[] = [];
  let rest = text;
  for (;;) {
    const m = /^([1-9][0-9]{0,8})(\.|$)/.exec(rest);
    if (!m) break;
    path.push(Number(m[1]));
    rest = rest.slice(m[0].length);
    if (m[2] === '') return { path, kind: '' };
  }
  if (rest === '') return path.length ? null : { path, kind: '' };
  const upper = rest.toUpperCase();
  const kind = KINDS.find((k) => upper === k || upper.startsWith(`${k} `));
  if (!kind || (kind === 'MIME' && path.length === 0)) return null;
  if (kind !== 'HEADER.FIELDS' && kind !== 'HEADER.FIELDS.NOT') return upper === kind ? { path, kind } : null;
  const list = /^ \(([^()]*)\)$/.exec(rest.slice(kind.length));
  if (!list?.[1]) return null;
  const fields = list[1].split(' ').filter((f) => f !== '');
  return fields.length ? { path, kind, fields } : null;
}

/**
 * The part a path names, or null. The root is the message; part 1 of a non-multipart message
 * (the root or an embedded one) is that message's body part.
 */
export function resolvePart(root: MimePart, path: number[]): MimePart | null {
  let cur: MimePart = root;
  for (let i = 0; i < path.length; i++) {
    const n = path[i] as number;
    if (i > 0 && cur.kind === 'message' && cur.message) cur = cur.message;
    else if (i > 0 && cur === root) return null; // BODY[1.1] of a single-part message is empty (as Dovecot)
    if (cur.kind === 'multipart') {
      const c = cur.children[n - 1];
      if (!c) return null;
      cur = c;
    } else if (n !== 1) return null; // a leaf's part 1 is itself (as Dovecot)
  }
  return cur;
}

/** The matching field lines, then the header's own blank line (none when it had none, as Dovecot). */
function headerFields(buf: Buffer, msg: MimePart, names: string[], not: boolean): Buffer {
  const want = new Set(names.map((n) => n.toLowerCase()));
  const out: Buffer[] = [];
  for (const f of msg.fields) {
    if (want.has(f.name) === not) continue;
    out.push(buf.subarray(f.start, f.end));
    if (buf[f.end - 1] !== 10) out.push(CRLF); // a last line cut off by EOF still ends (as Dovecot)
  }
  out.push(buf.subarray(msg.headerEnd, msg.bodyStart));
  return Buffer.concat(out);
}

/** The bytes of BODY[spec] (before any partial), or an empty Buffer when the part does not exist. */
export function section(buf: Buffer, root: MimePart, spec: SectionSpec): Buffer {
  const part = resolvePart(root, spec.path);
  if (!part) return Buffer.alloc(0);
  if (spec.kind === '') return spec.path.length === 0 ? buf : buf.subarray(part.bodyStart, part.end);
  if (spec.kind === 'MIME') return buf.subarray(part.start, part.bodyStart);
  // HEADER / TEXT / HEADER.FIELDS: of the message itself or of an embedded message/rfc822.
  // (of any other part they are empty, as Dovecot answers)
  const msg = spec.path.length === 0 ? root : part.kind === 'message' ? part.message : null;
  if (!msg) return Buffer.alloc(0);
  if (spec.kind === 'HEADER') return buf.subarray(msg.start, msg.bodyStart);
  if (spec.kind === 'TEXT') return buf.subarray(msg.bodyStart, msg.end);
  return headerFields(buf, msg, spec.fields ?? [], spec.kind === 'HEADER.FIELDS.NOT');
}

/** Apply `<origin.count>`: the octets from origin, at most count of them (empty past the end). */
export function partial(bytes: Buffer, origin: number, count?: number): Buffer {
  if (origin >= bytes.length) return Buffer.alloc(0);
  return bytes.subarray(origin, count === undefined ? bytes.length : Math.min(bytes.length, origin + count));
}
