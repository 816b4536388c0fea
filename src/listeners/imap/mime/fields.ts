/**
 * Content-* field parsing as Dovecot's message-part-data does it: type and subtype kept as sent
 * (the flags that drive structure compare case-insensitively), parameters in order with their
 * names as sent, RFC 2231 continuations merged into `name*` (values left encoded, as Dovecot).
 */
import { Lexer } from './lexer.js';

export type Params = Array<[string, string]>;

export interface ContentType {
  /** Lower-cased, for decisions; 'text'/'plain' when the field is absent. */
  type: string;
  subtype: string;
  /** As sent; null when the field is absent (or unparsable). */
  rawType: string | null;
  rawSubtype: string | null;
  params: Params;
  boundary: string | null;
  /** No Content-Type inside multipart/digest: message/rfc822 by default (RFC 2046 §5.1.5). */
  digestDefault: boolean;
}

/** Parse `; key=value` parameters from the lexer's position (Dovecot's rfc2231_parse). */
export function parseParams(lx: Lexer): Params {
  const plain: Params = [];
  const ext: Array<{ key: string; idx: number; extended: boolean; value: string }> = [];
  while (!lx.done) {
    if (lx.peek() !== ';') {
      lx.pos++;
      continue;
    }
    lx.pos++;
    if (!lx.skipCfws()) break;
    const key = lx.token();
    if (!key || lx.peek() !== '=') continue;
    lx.pos++;
    let value = '';
    if (lx.skipCfws()) value = lx.peek() === '"' ? lx.quoted() : lx.token();
    const star = key.indexOf('*');
    if (star < 0) {
      plain.push([key, value]);
      continue;
    }
    let p = star + 1;
    let idx = 0;
    if (p === key.length) {
      // `name*=charset'lang'value`: one extended section
      ext.push({ key: key.slice(0, star), idx: 0, extended: true, value });
      continue;
    }
    for (let d = key.charCodeAt(p); d >= 48 && d <= 57; d = key.charCodeAt(++p)) idx = idx * 10 + d - 48;
    const extended = key[p] === '*';
    if (extended) p++;
    if (p !== key.length) plain.push([key, value]);
    else ext.push({ key: key.slice(0, star), idx, extended, value });
  }
  if (ext.length === 0) return plain;
  ext.sort((a, b) => {
    const ka = a.key.toLowerCase();
    const kb = b.key.toLowerCase();
    return ka < kb ? -1 : ka > kb ? 1 : a.idx - b.idx;
  });
  for (let i = 0; i < ext.length; ) {
    const first = ext[i] as (typeof ext)[number];
    const lk = first.key.toLowerCase();
    let j = i;
    let ok = true;
    let anyExt = false;
    for (let n = 0; j < ext.length && (ext[j] as (typeof ext)[number]).key.toLowerCase() === lk; j++, n++) {
      const e = ext[j] as (typeof ext)[number];
      if (e.idx !== n) ok = false;
      if (e.extended) anyExt = true;
    }
    const group = ext.slice(i, j);
    if (!ok) {
      for (const e of group) plain.push([`${e.key}*${e.idx}${e.extended ? '*' : ''}`, e.value]);
    } else {
      let v = !first.extended && anyExt ? "''" : '';
      // Dovecot 2.3 leaves non-extended sections unescaped.
      for (const e of group) v += e.value;
      plain.push([anyExt ? `${first.key}*` : first.key, v]);
    }
    i = j;
  }
  return plain;
}

export function parseContentType(value: string | null, inDigest: boolean): ContentType {
  const ct: ContentType = {
    type: inDigest ? 'message' : 'text',
    subtype: inDigest ? 'rfc822' : 'plain',
    rawType: null,
    rawSubtype: null,
    params: [],
    boundary: null,
    digestDefault: inDigest && value === null,
  };
  if (value === null) return ct;
  const lx = new Lexer(value);
  lx.skipCfws();
  const type = lx.token();
  if (!type) return ct;
  ct.rawType = type;
  ct.type = type.toLowerCase();
  ct.subtype = '';
  if (lx.peek() !== '/') return ct;
  lx.pos++;
  lx.skipCfws();
  const sub = lx.token();
  ct.rawSubtype = sub;
  ct.subtype = sub.toLowerCase();
  if (!sub) return ct;
  ct.params = parseParams(lx);
  for (const [k, v] of ct.params)
    if (k.toLowerCase() === 'boundary' && v !== '' && ct.boundary === null) ct.boundary = v;
  return ct;
}

export interface Disposition {
  value: string;
  params: Params;
}

export function parseDisposition(value: string | null): Disposition | null {
  if (value === null) return null;
  const lx = new Lexer(value);
  lx.skipCfws();
  const v = lx.token();
  if (!v) return null;
  return { value: v, params: parseParams(lx) };
}

export function parseLanguage(value: string | null): string[] | null {
  if (value === null) return null;
  const lx = new Lexer(value);
  lx.skipCfws();
  const out: string[] = [];
  for (;;) {
    const a = lx.atom();
    if (!a) break;
    out.push(a);
    if (lx.peek() !== ',') break;
    lx.pos++;
    lx.skipCfws();
  }
  return out.length ? out : null;
}
