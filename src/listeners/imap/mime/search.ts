/**
 * Text for the SEARCH keys: header values (unfolded, RFC 2047 decoded, case-insensitive names),
 * address fields as "Name <local@domain>" strings, the decoded text of text/* parts for BODY/TEXT,
 * and the Date: header for SENT*. The case-insensitive substring match is the session's job.
 * Only text parts are converted to strings; walks are iterative.
 */
import { parseAddresses } from './address.js';
import { decodeCharset, decodeTransfer, decodeWords } from './decode.js';
import { fieldValue, firstField, type MimePart, parseMessage, rawFieldValue } from './tree.js';

/** Every `name:` field of the message header, unfolded (a fold is one blank, as Dovecot searches) and decoded. */
export function headerText(buf: Buffer, name: string, root: MimePart = parseMessage(buf)): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const f of root.fields) {
    if (f.name === want)
      out.push(
        decodeWords(
          rawFieldValue(buf, f)
            .replace(/\r?\n[ \t]/g, ' ')
            .trim(),
        ),
      );
  }
  return out;
}

/** The addresses of every `name:` field (From/To/Cc/Bcc…) as "Name <local@domain>" (or the bare address). */
export function addressText(buf: Buffer, name: string, root: MimePart = parseMessage(buf)): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const f of root.fields) {
    if (f.name !== want) continue;
    for (const a of parseAddresses(fieldValue(buf, f))) {
      if (a.host === null) {
        if (a.mailbox !== null) out.push(decodeWords(a.mailbox)); // a group's name
        continue;
      }
      const addr = `${a.mailbox}@${a.host}`;
      out.push(a.name ? `${decodeWords(a.name)} <${addr}>` : addr);
    }
  }
  return out;
}

/** The decoded text of every text/* part (embedded messages included), joined by newlines. */
export function bodyText(buf: Buffer, root: MimePart = parseMessage(buf)): string {
  const out: string[] = [];
  const todo: MimePart[] = [root];
  while (todo.length) {
    const p = todo.pop() as MimePart;
    if (p.kind === 'multipart') for (let i = p.children.length - 1; i >= 0; i--) todo.push(p.children[i] as MimePart);
    else if (p.kind === 'message' && p.message) todo.push(p.message);
    else if (p.contentType.type === 'text' && !p.capped) {
      const bytes = decodeTransfer(buf.subarray(p.bodyStart, p.end), firstField(buf, p, 'content-transfer-encoding'));
      const cs = p.contentType.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
      out.push(decodeCharset(bytes, cs));
    }
  }
  return out.join('\n');
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DATE =
  /(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\s+(\d{2,4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([+-]\d{4}|[A-Za-z]{1,5}))?)?/;

export interface SentDate {
  /** The instant, ms since the epoch (UTC). */
  ms: number;
  /** The calendar date as written (its own zone, time ignored), as ms of 00:00 UTC that day: for SENTON/SENTBEFORE/SENTSINCE. */
  day: number;
}

/**
 * The first Date: header (RFC 5322 §3.3, obsolete forms tolerated), or null when absent or
 * unparsable — Dovecot then compares as if sent at 0 (1970): SENTBEFORE matches such messages.
 */
export function sentDate(buf: Buffer, root: MimePart = parseMessage(buf)): SentDate | null {
  const v = firstField(buf, root, 'date');
  if (v === null) return null;
  const m = DATE.exec(v.slice(0, 200));
  if (!m) return null;
  const mon = MONTHS.indexOf((m[2] ?? '').toLowerCase());
  if (mon < 0) return null;
  let year = Number(m[3]);
  if ((m[3] ?? '').length <= 2) year += year < 50 ? 2000 : 1900;
  else if ((m[3] ?? '').length === 3) year += 1900;
  const dayNum = Number(m[1]);
  const day = Date.UTC(year, mon, dayNum);
  const zone = m[7] ?? '+0000';
  let offsetMin = 0;
  if (/^[+-]\d{4}$/.test(zone)) {
    offsetMin = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3))) * (zone[0] === '-' ? -1 : 1);
  } else {
    const named: Record<string, number> = {
      ut: 0,
      gmt: 0,
      z: 0,
      est: -5,
      edt: -4,
      cst: -6,
      cdt: -5,
      mst: -7,
      mdt: -6,
      pst: -8,
      pdt: -7,
    };
    offsetMin = (named[zone.toLowerCase()] ?? 0) * 60;
  }
  const ms = Date.UTC(year, mon, dayNum, Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)) - offsetMin * 60_000;
  return Number.isNaN(ms) ? null : { ms, day };
}
