/**
 * Bounces (giving up visibly): when recipients of an outbox entry fail for good (a
 * permanent reply, or `outbox.maxAge` passed), an RFC 3464 delivery status notification is
 * written into the sender's **local** INBOX, because a POP3-only client has no other way to
 * learn about it. The report is a `multipart/report; report-type=delivery-status` with a
 * human-readable part, a `message/delivery-status` part (one block per failed recipient) and
 * the original message's header as `text/rfc822-headers` (RFC 3462 / RFC 6522).
 *
 * Idempotence: the bounce's cache key (`b<hex>`) is derived from the entry id and the failed
 * recipients, so a bounce written before a crash is not written a second time after it
 * (`AccountStore.has` also knows keys the user has deleted since).
 */
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { type AccountStore, INBOX, storeWholeMessage } from '../message-store.js';
import type { OutboxEntry, OutboxRecipient } from './entry.js';

/** Why the recipients failed. */
export type BounceReason = 'rejected' | 'expired';

/** What a bounce reports. */
export interface BounceInput {
  entry: OutboxEntry;
  failed: OutboxRecipient[];
  reason: BounceReason;
  /** The header block of the original message (raw bytes). */
  originalHeader: Buffer;
  now: number;
  /** Host name used in Reporting-MTA and the bounce's Message-ID. */
  reportingMta?: string;
}

const CRLF = '\r\n';

/** The cache key of the bounce for these failed recipients of an entry. */
export function bounceKey(entryId: string, failed: readonly OutboxRecipient[]): string {
  const h = createHash('sha256').update(entryId);
  for (const r of failed) h.update('\0').update(r.address);
  return `b${h.digest('hex').slice(0, 24)}`;
}

/** An RFC 5322 date (`Tue, 01 Jul 2025 10:00:00 +0000`). */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

/** The enhanced status code in a reply text (`550 5.1.1 ...` → `5.1.1`), or a default. */
export function statusOf(r: OutboxRecipient, reason: BounceReason): string {
  if (reason === 'expired') return '4.4.7';
  const m = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(r.response ?? '');
  if (m && m[1] === '5') return `${m[1]}.${m[2]}.${m[3]}`;
  return '5.0.0';
}

/** One line safe inside a header field or a DSN field (no CR/LF, printable ASCII). */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 900);
}

/** The header block of a message, with CRLF line ends, at most `limit` bytes. */
export async function readHeaderBlock(file: string, limit = 64 * 1024): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(limit);
    const { bytesRead } = await fh.read(buf, 0, limit, 0);
    const text = buf.subarray(0, bytesRead);
    const m = /\r?\n\r?\n/.exec(text.toString('latin1'));
    const header = m ? text.subarray(0, m.index + 1) : text;
    return Buffer.from(header.toString('latin1').replace(/\r?\n/g, CRLF), 'latin1');
  } finally {
    await fh.close();
  }
}

/** The bounce message bytes (CRLF line ends). */
export function buildBounce(i: BounceInput): Buffer {
  const mta = i.reportingMta ?? 'localpost';
  const boundary = `=_localpost-report-${randomBytes(8).toString('hex')}`;
  const date = rfc5322Date(i.now);
  const to = i.entry.from ? `<${oneLine(i.entry.from)}>` : 'undisclosed-recipients:;';
  const subject =
    i.reason === 'expired' ? 'Undelivered Mail: delivery time expired' : 'Undelivered Mail Returned to Sender';
  const list = i.failed.map(
    (r) =>
      `  <${oneLine(r.address)}>: ${oneLine(r.response ?? (i.reason === 'expired' ? 'not delivered in time' : 'refused'))}`,
  );
  const human = [
    i.reason === 'expired'
      ? `localpost could not deliver your message within the configured time (outbox.maxAge), so it gave up.`
      : `The upstream mail server refused your message for the recipients below.`,
    '',
    `Queue id: ${i.entry.id}`,
    `Accepted: ${rfc5322Date(i.entry.createdAt)}`,
    ...(i.entry.messageId ? [`Message-ID: <${oneLine(i.entry.messageId)}>`] : []),
    '',
    ...list,
    '',
    'localpost keeps the message in its failed outbox once nothing else is pending for it;',
    `"localpost outbox retry ${i.entry.id}" then sends it again to the recipients above.`,
  ];
  const perRcpt = i.failed.map((r) =>
    [
      `Final-Recipient: rfc822; ${oneLine(r.address)}`,
      'Action: failed',
      `Status: ${statusOf(r, i.reason)}`,
      ...(r.response ? [`Diagnostic-Code: smtp; ${oneLine(r.response)}`] : []),
      ...(i.entry.lastAttempt ? [`Last-Attempt-Date: ${rfc5322Date(i.entry.lastAttempt)}`] : []),
    ].join(CRLF),
  );
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${mta}>`,
    `To: ${to}`,
    `Subject: ${subject}`,
    `Date: ${date}`,
    `Message-ID: <${bounceKey(i.entry.id, i.failed)}.${i.now}@${mta}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    `Reporting-MTA: dns; ${mta}`,
    `X-Localpost-Queue-ID: ${i.entry.id}`,
    `Arrival-Date: ${rfc5322Date(i.entry.createdAt)}`,
    '',
    perRcpt.join(CRLF + CRLF),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    '',
    '',
  ].join(CRLF);
  const tail = `${CRLF}--${boundary}--${CRLF}`;
  const header =
    i.originalHeader.length && !i.originalHeader.subarray(-2).equals(Buffer.from(CRLF))
      ? Buffer.concat([i.originalHeader, Buffer.from(CRLF)])
      : i.originalHeader;
  return Buffer.concat([Buffer.from(head, 'latin1'), header, Buffer.from(tail, 'latin1')]);
}

/**
 * Writes the bounce into the INBOX of `store` (durably: file, directory, index) unless a bounce
 * with the same key is already there. Returns whether it wrote one.
 */
export async function deliverBounce(store: AccountStore, input: BounceInput): Promise<boolean> {
  const key = bounceKey(input.entry.id, input.failed);
  if (store.has(INBOX, key)) return false;
  await storeWholeMessage(store, INBOX, key, buildBounce(input));
  return true;
}
