/**
 * One session's maildrop (RFC 1939 §5–§6): a snapshot of the account's
 * INBOX taken at login. Message numbers are fixed for the session; new mail appears in the
 * next one. DELE only marks, RSET unmarks, and `deletedUids()` is what the UPDATE state
 * commits. Sizes are the octets RETR sends before dot-stuffing (`servedSize`). The snapshot is
 * shared with other sessions and the next logins (`AccountReader.snapshot`): never modified here.
 */

import type { FolderSnapshot } from '../../cache/folder-snapshot.js';
import { uidl } from '../../cache/maildir.js';
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

/** Lines per chunk of a LIST or UIDL reply (a few tens of KB: bounded memory for any maildrop). */
const LINES_PER_CHUNK = 4096;

/** The per-session snapshot with deletion marks. */
export class Maildrop {
  /** Served sizes: the snapshot's `W=` sizes, or a copy when the EOH repair adds octets. */
  private readonly sizes: Float64Array;
  private readonly marked: Uint8Array;
  private markedCount = 0;
  private markedOctets = 0;
  private readonly total: number;

  constructor(
    readonly accountId: string,
    private readonly snap: FolderSnapshot,
    repairEoh: boolean,
  ) {
    let sizes = snap.wsizes;
    if (repairEoh && snap.eoh.size) {
      sizes = sizes.slice();
      for (const i of snap.eoh.keys()) sizes[i] = servedSize(snap.wsizes[i] as number, snap.hasEoh(i), true);
    }
    this.sizes = sizes;
    this.marked = new Uint8Array(snap.length);
    let total = 0;
    for (let i = 0; i < sizes.length; i++) total += sizes[i] as number;
    this.total = total;
  }

  /** Messages not marked as deleted (STAT, RFC 1939 §5). */
  get count(): number {
    return this.snap.length - this.markedCount;
  }

  /** Octets of the messages not marked as deleted. */
  get octets(): number {
    return this.total - this.markedOctets;
  }

  /** Resolves a message-number argument; a string is the `-ERR` text when it does not. */
  lookup(arg: string): Lookup | string {
    if (!MSG_NUMBER.test(arg)) return 'invalid message number';
    const n = Number(arg);
    if (n < 1 || n > this.snap.length) return 'no such message';
    if (this.marked[n - 1]) return `message ${n} already deleted`;
    return { n, uid: this.uidAt(n - 1), uidl: this.uidlAt(n - 1), size: this.sizes[n - 1] as number };
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
    for (let i = 0; i < this.marked.length; i++) if (this.marked[i]) out.push(this.uidAt(i));
    return out;
  }

  /** `n size` lines of every live message (LIST, RFC 1939 §5), in chunks (see `chunks`). */
  listChunks(): Generator<string> {
    return this.chunks((i) => String(this.sizes[i]));
  }

  /** `n uidl` lines of every live message (UIDL, RFC 1939 §7), in chunks (see `chunks`). */
  uidlChunks(): Generator<string> {
    return this.chunks((i) => this.uidlAt(i));
  }

  /** All lines of `chunks` (tests and small maildrops). */
  static lines(chunks: Iterable<string>): string[] {
    return [...chunks].join('').split('\r\n').slice(0, -1);
  }

  /** `n value` lines of live messages, CRLF-terminated, joined into strings of `LINES_PER_CHUNK` lines. */
  private *chunks(value: (i: number) => string): Generator<string> {
    let chunk = '';
    let lines = 0;
    for (let i = 0; i < this.marked.length; i++) {
      if (this.marked[i]) continue;
      chunk += `${i + 1} ${value(i)}\r\n`;
      if (++lines === LINES_PER_CHUNK) {
        yield chunk;
        chunk = '';
        lines = 0;
      }
    }
    if (chunk) yield chunk;
  }

  private uidAt(i: number): number {
    return this.snap.uids[i] as number;
  }

  private uidlAt(i: number): string {
    return this.snap.uidls.get(i) ?? uidl(this.uidAt(i));
  }
}
