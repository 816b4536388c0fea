/**
 * One session's maildrop (RFC 1939 §5–§6): a snapshot of the account's
 * INBOX taken at login. Message numbers are fixed for the session; new mail appears in the
 * next one. DELE only marks, RSET unmarks, and `deletedUids()` is what the UPDATE state
 * commits. Sizes are the octets RETR sends before dot-stuffing (`servedSize`).
 */
import { uidl } from '../../cache/maildir.js';
import type { IndexEntry } from '../../cache/message-store.js';
import { servedSize } from './body.js';

/** A message number argument that resolved to a live message. */
export interface Lookup {
  n: number;
  /** Local UID. */
  uid: number;
  /** The permanent UIDL, never reused (RFC 1939 §7): the local UID in hex, or the upstream UIDL it serves. */
  uidl: string;
  size: number;
}

/** RFC 1939 §3: a message number is a decimal integer ≥ 1. */
const MSG_NUMBER = /^\d{1,10}$/;

/** The per-session snapshot with deletion marks. */
export class Maildrop {
  private readonly sizes: number[];
  private readonly marked: Uint8Array;
  private markedCount = 0;
  private markedOctets = 0;
  private readonly total: number;

  constructor(
    readonly accountId: string,
    readonly messages: readonly IndexEntry[],
    repairEoh: boolean,
  ) {
    this.sizes = messages.map((m) => servedSize(m.wsize, m.hasEoh ?? true, repairEoh));
    this.marked = new Uint8Array(messages.length);
    this.total = this.sizes.reduce((a, b) => a + b, 0);
  }

  /** Messages not marked as deleted (STAT, RFC 1939 §5). */
  get count(): number {
    return this.messages.length - this.markedCount;
  }

  /** Octets of the messages not marked as deleted. */
  get octets(): number {
    return this.total - this.markedOctets;
  }

  /** Resolves a message-number argument; a string is the `-ERR` text when it does not. */
  lookup(arg: string): Lookup | string {
    if (!MSG_NUMBER.test(arg)) return 'invalid message number';
    const n = Number(arg);
    const message = this.messages[n - 1];
    const size = this.sizes[n - 1];
    if (n < 1 || message === undefined || size === undefined) return 'no such message';
    if (this.marked[n - 1]) return `message ${n} already deleted`;
    return { n, uid: message.uid, uidl: message.uidl ?? uidl(message.uid), size };
  }

  /** DELE: mark a message (as looked up). */
  mark({ n, size }: Lookup): void {
    if (this.marked[n - 1]) return;
    this.marked[n - 1] = 1;
    this.markedCount++;
    this.markedOctets += size;
  }

  /** RSET: unmark everything. */
  reset(): void {
    this.marked.fill(0);
    this.markedCount = 0;
    this.markedOctets = 0;
  }

  /** UIDs of the marked messages, for the UPDATE state. */
  deletedUids(): number[] {
    const out: number[] = [];
    for (const [i, m] of this.messages.entries()) if (this.marked[i]) out.push(m.uid);
    return out;
  }

  /** `n size` lines of every live message (LIST, RFC 1939 §5). */
  listLines(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.messages.length; i++) if (!this.marked[i]) out.push(`${i + 1} ${this.sizes[i]}`);
    return out;
  }

  /** `n uidl` lines of every live message (UIDL, RFC 1939 §7). */
  uidlLines(): string[] {
    const out: string[] = [];
    for (const [i, m] of this.messages.entries()) if (!this.marked[i]) out.push(`${i + 1} ${m.uidl ?? uidl(m.uid)}`);
    return out;
  }
}
