/**
 * FETCH BODY / BODYSTRUCTURE (RFC 3501 §7.4.2) from a MIME tree, following Dovecot's
 * imap-bodystructure: type/subtype as sent, text parts without a charset get ("charset"
 * "us-ascii") appended, a missing Content-Type is "text" "plain", a missing encoding "7bit",
 * message/rfc822 is written lower case with its envelope, structure and lines, an empty
 * multipart gets one empty text/plain child. Sizes are raw octets; lines count LFs.
 * Iterative (explicit stack) so depth is bounded only by the tree, which the parser caps.
 */
import { envelopeString } from './envelope.js';
import { type Params, parseDisposition, parseLanguage } from './fields.js';
import { imapNStringNoLf, imapString } from './imap-string.js';
import { firstField, type MimePart } from './tree.js';

const EMPTY_BODY = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)';
const EMPTY_BODYSTRUCTURE = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)';

/** Number of LF bytes in [start, end). */
export function countLines(buf: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

function params(list: Params, defaultCharset: boolean): string {
  let seen = false;
  const items: string[] = [];
  for (const [k, v] of list) {
    if (k.toLowerCase() === 'charset') seen = true;
    items.push(`${imapString(k)} ${imapString(v)}`);
  }
  if (defaultCharset && !seen) items.push('"charset" "us-ascii"');
  return items.length ? `(${items.join(' ')})` : 'NIL';
}

/** Disposition, language and location: the extension data common to all part kinds. */
function common(buf: Buffer, part: MimePart): string {
  const d = parseDisposition(firstField(buf, part, 'content-disposition'));
  const lang = parseLanguage(firstField(buf, part, 'content-language'));
  return [
    d ? `(${imapString(d.value)} ${params(d.params, false)})` : 'NIL',
    lang ? `(${lang.map(imapString).join(' ')})` : 'NIL',
    imapNStringNoLf(firstField(buf, part, 'content-location')),
  ].join(' ');
}

type Frame = { part: MimePart; stage: 'open' } | { text: string };

/** The BODY (extended=false) or BODYSTRUCTURE (extended=true) value of `part`, as latin1. */
export function structureString(buf: Buffer, part: MimePart, extended: boolean): string {
  let out = '';
  const todo: Frame[] = [{ part, stage: 'open' }];
  while (todo.length) {
    const f = todo.pop() as Frame;
    if ('text' in f) {
      out += f.text;
      continue;
    }
    const p = f.part;
    const ct = p.contentType;
    if (p.kind === 'multipart') {
      out += '(';
      const tail = extended
        ? ` ${imapString(ct.rawSubtype ?? '')} ${params(ct.params, false)} ${common(buf, p)})`
        : ` ${imapString(ct.rawSubtype ?? '')})`;
      todo.push({ text: tail });
      if (p.children.length === 0) out += extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY;
      for (let i = p.children.length - 1; i >= 0; i--) todo.push({ part: p.children[i] as MimePart, stage: 'open' });
      continue;
    }
    const message = p.kind === 'message' && p.message !== null;
    const text = !message && !p.capped && (ct.rawType === null ? !ct.digestDefault : ct.type === 'text');
    let head = '(';
    if (message) head += '"message" "rfc822"';
    else if (p.capped) head += '"application" "octet-stream"';
    else if (ct.rawType === null) head += ct.digestDefault ? '"message" "rfc822"' : '"text" "plain"';
    else head += `${imapString(ct.rawType)} ${imapString(ct.rawSubtype ?? '')}`;
    const cte = firstField(buf, p, 'content-transfer-encoding');
    const size = p.end - p.bodyStart;
    head += ` ${params(ct.params, text)} ${imapNStringNoLf(firstField(buf, p, 'content-id'))} ${imapNStringNoLf(
      firstField(buf, p, 'content-description'),
    )} ${cte === null ? '"7bit"' : imapString(cte)} ${size}`;
    let tail = '';
    if (text) head += ` ${countLines(buf, p.bodyStart, p.end)}`;
    if (extended) tail += ` ${imapNStringNoLf(firstField(buf, p, 'content-md5'))} ${common(buf, p)}`;
    tail += ')';
    if (message && p.message) {
      out += `${head} ${envelopeString(buf, p.message)} `;
      todo.push({ text: ` ${countLines(buf, p.bodyStart, p.end)}${tail}` });
      todo.push({ part: p.message, stage: 'open' });
    } else out += head + tail;
  }
  return out;
}

/** FETCH BODY / BODYSTRUCTURE value bytes. */
export function bodyStructure(buf: Buffer, root: MimePart, extended: boolean): Buffer {
  return Buffer.from(structureString(buf, root, extended), 'latin1');
}
