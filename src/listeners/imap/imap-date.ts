/**
 * IMAP dates (RFC 3501 §9): `date-time` for INTERNALDATE and APPEND, `date` for SEARCH.
 *
 * Invariants:
 * - Times are epoch milliseconds; a zone is an offset in minutes east of UTC, as in the
 *   `+hhmm` of the wire form. Only `hostOffsetMinutes` reads the host's time zone.
 * - SEARCH compares dates without time (RFC 3501 §6.4.4): both sides become day numbers
 *   (days since 1970-01-01) in one zone, so SINCE/ON/BEFORE are integer comparisons.
 * - Parsers check ranges (day of month, hour 0..23, zone ±2359) and never throw.
 */
import { err, ok, type Result } from './result.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_MS = 86_400_000;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `17-Jul-1996 02:44:25 -0700` (unquoted), the instant `ms` seen in zone `offsetMinutes`. */
export function formatDateTime(ms: number, offsetMinutes: number): string {
  const d = new Date(ms + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(offsetMinutes);
  return (
    `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCFullYear(), 4)} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ` +
    `${sign}${pad(Math.floor(off / 60))}${pad(off % 60)}`
  );
}

/** The zone offset of the host at instant `ms`, minutes east of UTC (for the server's default). */
export function hostOffsetMinutes(ms: number): number {
  return -new Date(ms).getTimezoneOffset();
}

const DATE_TIME = /^([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;
const DATE = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/;

function monthIndex(name: string): number {
  return MONTHS.findIndex((m) => m.toLowerCase() === name.toLowerCase());
}

/** Days since 1970-01-01 of a calendar date, or undefined if it does not exist. */
function dayOf(year: number, month: number, day: number): number | undefined {
  const t = Date.UTC(year, month, day);
  const d = new Date(t);
  if (month < 0 || d.getUTCFullYear() !== year || d.getUTCMonth() !== month || d.getUTCDate() !== day) return undefined;
  return Math.floor(t / DAY_MS);
}

/** Parses an APPEND `date-time` (the quoted string's content) into epoch milliseconds. */
export function parseDateTime(text: string): Result<number> {
  const m = DATE_TIME.exec(text);
  if (!m) return err('invalid date-time');
  const [, dd, mon, yyyy, hh, mi, ss, sign, zh, zm] = m as unknown as string[];
  const day = dayOf(Number(yyyy), monthIndex(mon as string), Number((dd as string).trim()));
  const h = Number(hh);
  const min = Number(mi);
  const s = Number(ss);
  const off = (Number(zh) * 60 + Number(zm)) * (sign === '-' ? -1 : 1);
  if (day === undefined || h > 23 || min > 59 || s > 60 || Number(zm) > 59) return err('invalid date-time');
  return ok(day * DAY_MS + ((h * 60 + min - off) * 60 + s) * 1000);
}

/** Parses a SEARCH `date` (`1-Feb-1994`) into a day number. */
export function parseDate(text: string): Result<number> {
  const m = DATE.exec(text);
  if (!m) return err('invalid date');
  const day = dayOf(Number(m[3]), monthIndex(m[2] as string), Number(m[1]));
  return day === undefined ? err('invalid date') : ok(day);
}

/** The day number of instant `ms` in zone `offsetMinutes`, to compare with `parseDate`. */
export function dayNumber(ms: number, offsetMinutes: number): number {
  return Math.floor((ms + offsetMinutes * 60_000) / DAY_MS);
}
