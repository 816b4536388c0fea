/**
 * The on-disk format of one outbox entry, readable by hand:
 * `<id>.eml` holds the message bytes exactly as the local client sent them and is never
 * rewritten; `<id>.json` holds everything else — the envelope (Bcc recipients included, they
 * exist only here), the state of each recipient, the attempts, the next attempt and the last
 * error. The JSON is the truth about an entry; the `outbox` rows in state.db are an index of
 * it (for `status`, listing and duplicate detection) that start-up rebuilds from these files.
 *
 * Ids are `<ms since epoch, base36>-<8 hex>`: unique, safe as file names and on a command
 * line, and sorted by arrival time (to the millisecond).
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

/** What became of one envelope recipient. */
export type RecipientState = 'pending' | 'sent' | 'failed';

/** One envelope recipient and its delivery state. */
export interface OutboxRecipient {
  address: string;
  state: RecipientState;
  /** The upstream's reply code for this recipient (the last one, while pending). */
  code?: number;
  /** The upstream's reply text for this recipient. */
  response?: string;
  /** When it was sent or failed (ms since epoch). */
  at?: number;
  /** A bounce for its failure is in the sender's local INBOX. */
  bounced?: boolean;
}

/** One queued (or failed) message: the content of `<id>.json`. */
export interface OutboxEntry {
  v: 1;
  id: string;
  /** The local account whose login submitted it; its `outgoing` server relays it. */
  account: string;
  /** Envelope sender (MAIL FROM); '' for the null sender. */
  from: string;
  recipients: OutboxRecipient[];
  /** When the local SMTP server accepted it. */
  createdAt: number;
  /** When it entered the queue (acceptance, or a user's `retry` of a failed entry); maxAge counts from here. */
  queuedAt: number;
  /** Bytes of `<id>.eml`. */
  size: number;
  /** Hex SHA-256 of `<id>.eml`. */
  sha256: string;
  /** The Message-ID header (without angle brackets), if any. */
  messageId?: string;
  /** The message has bytes ≥ 0x80 (relayed with BODY=8BITMIME when the upstream offers it). */
  eightBit: boolean;
  /** Failed tries so far. */
  tries: number;
  /** Earliest time of the next try (ms since epoch). */
  nextAttempt: number;
  lastAttempt?: number;
  lastError?: string;
  /** outgoing.saveSent: whether the copy reached the upstream Sent folder. */
  sentCopy?: 'saved' | 'failed';
}

const recipientSchema = z.object({
  address: z.string(),
  state: z.enum(['pending', 'sent', 'failed']),
  code: z.number().int().optional(),
  response: z.string().optional(),
  at: z.number().optional(),
  bounced: z.boolean().optional(),
});

const entrySchema = z.object({
  v: z.literal(1),
  id: z.string(),
  account: z.string().min(1),
  from: z.string(),
  recipients: z.array(recipientSchema).min(1),
  createdAt: z.number(),
  queuedAt: z.number(),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  messageId: z.string().optional(),
  eightBit: z.boolean(),
  tries: z.number().int().min(0),
  nextAttempt: z.number(),
  lastAttempt: z.number().optional(),
  lastError: z.string().optional(),
  sentCopy: z.enum(['saved', 'failed']).optional(),
});

const ID_RE = /^[0-9a-z]{6,12}-[0-9a-f]{8}$/;

/** A new entry id for a message accepted at `now`. */
export function newOutboxId(now: number): string {
  return `${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** True for strings shaped like an outbox id (guards file names built from user input). */
export function isOutboxId(id: string): boolean {
  return ID_RE.test(id);
}

/** Parses the text of `<id>.json`; throws when it is not a valid entry for `id`. */
export function parseEntry(text: string, id: string): OutboxEntry {
  const entry = entrySchema.parse(JSON.parse(text)) as OutboxEntry;
  if (entry.id !== id) throw new Error(`entry file for ${id} holds id ${entry.id}`);
  return entry;
}

/** The text of `<id>.json`. */
export function serializeEntry(e: OutboxEntry): string {
  return `${JSON.stringify(e, null, 2)}\n`;
}

/** The dedupe key of an entry (null without a Message-ID). */
export function dedupeKey(e: OutboxEntry): string | null {
  if (!e.messageId) return null;
  const h = createHash('sha256');
  for (const part of [e.account, e.messageId, e.from, ...e.recipients.map((r) => r.address).sort(), e.sha256])
    h.update(part).update('\0');
  return h.digest('hex');
}

/** Recipients still to be delivered. */
export function pendingRecipients(e: OutboxEntry): OutboxRecipient[] {
  return e.recipients.filter((r) => r.state === 'pending');
}

/** Queued while any recipient is pending; otherwise finished, failed when any recipient failed. */
export function entryState(e: OutboxEntry): 'queued' | 'sent' | 'failed' {
  if (e.recipients.some((r) => r.state === 'pending')) return 'queued';
  return e.recipients.some((r) => r.state === 'failed') ? 'failed' : 'sent';
}

const HEADER_SCAN_LIMIT = 256 * 1024;

/**
 * Collects the header block of a message while it streams past (up to 256 KiB), so that its
 * Message-ID can be read without a second pass over the file.
 */
export class HeaderCollector {
  private readonly parts: Buffer[] = [];
  private length = 0;
  private done = false;

  /** Feed the next chunk of the message. */
  update(chunk: Buffer): void {
    if (this.done) return;
    const room = HEADER_SCAN_LIMIT - this.length;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.parts.push(part);
    this.length += part.length;
    if (this.length >= HEADER_SCAN_LIMIT || part.includes(EMPTY_LINE_LF) || part.includes(EMPTY_LINE_CRLF))
      this.done = true;
  }

  /** The header text (latin1), up to its empty line. */
  get header(): string {
    const text = Buffer.concat(this.parts).toString('latin1');
    const m = /\r?\n\r?\n/.exec(text);
    return m ? text.slice(0, m.index + 1) : text;
  }
}

const EMPTY_LINE_LF = Buffer.from('\n\n');
const EMPTY_LINE_CRLF = Buffer.from('\n\r\n');

/** The value of the first header field `name` (unfolded), or undefined. */
export function headerValue(header: string, name: string): string | undefined {
  const re = new RegExp(`^${name}[ \\t]*:(.*(?:\\r?\\n[ \\t].*)*)`, 'im');
  const value = re.exec(header)?.[1];
  return value?.replace(/\r?\n[ \t]/g, ' ').trim();
}

/** The Message-ID of a header block without its angle brackets, or undefined. */
export function messageIdOf(header: string): string | undefined {
  const v = headerValue(header, 'Message-ID');
  if (!v) return undefined;
  const [firstWord = ''] = v.split(/\s/);
  const id = /<([^<>\s]+)>/.exec(v)?.[1] ?? firstWord;
  return id.length ? id.slice(0, 998) : undefined;
}
