/**
 * A folder's messages as the POP3 maildrop needs them (UID order, `W=` sizes, header-end and
 * upstream UIDL exceptions), held compactly: two Float64Arrays and two small maps instead of an
 * object per message, so a 1,000,000-message snapshot costs ~16 MB and one SQLite call
 * (`Ledger.folderPacked`). Immutable once built: sessions share one and keep their marks apart.
 */
import type { Ledger } from './ledger.js';
import type { IndexEntry } from './message-store.js';

/** The packed form `Ledger.folderPacked` returns. */
export type PackedFolder = ReturnType<Ledger['folderPacked']>;

/** Parses `count` comma-separated decimal integers (no signs, no blanks). */
function parseInts(s: string, count: number): Float64Array {
  const out = new Float64Array(count);
  let n = 0;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 44) {
      out[n++] = v;
      v = 0;
    } else v = v * 10 + (c - 48);
  }
  if (s.length) out[n++] = v;
  if (n !== count) throw new Error(`snapshot: ${n} numbers where ${count} were expected`);
  return out;
}

/** An immutable snapshot of one folder (see the module comment). */
export class FolderSnapshot {
  /** Message index → its header end: 0 none, undefined not known yet (absent: it has one). */
  readonly eoh = new Map<number, 0 | undefined>();
  /** Message index → the upstream UIDL it serves (absent: the local UID in hex). */
  readonly uidls = new Map<number, string>();

  private constructor(
    readonly uids: Float64Array,
    readonly wsizes: Float64Array,
  ) {}

  get length(): number {
    return this.uids.length;
  }

  /**
   * Builds it from the packed strings; undefined when the UIDs are not strictly increasing (the
   * caller then reads the rows one by one, the order SQLite does not promise for group_concat).
   */
  static fromPacked(p: PackedFolder): FolderSnapshot | undefined {
    const snap = new FolderSnapshot(parseInts(p.uids, p.count), parseInts(p.wsizes, p.count));
    const { uids } = snap;
    for (let i = 1; i < uids.length; i++) if ((uids[i] as number) <= (uids[i - 1] as number)) return undefined;
    if (p.eohs) {
      for (const item of p.eohs.split(',')) {
        const [uid, eoh] = item.split(':');
        snap.eoh.set(snap.indexOf(Number(uid)), eoh === '0' ? 0 : undefined);
      }
    }
    if (p.uidls) {
      for (const line of p.uidls.split('\n')) {
        const sp = line.indexOf(' ');
        snap.uidls.set(snap.indexOf(Number(line.slice(0, sp))), line.slice(sp + 1));
      }
    }
    return snap;
  }

  /** Builds it from entries in UID order (the row-by-row path, and tests). */
  static fromEntries(entries: readonly IndexEntry[]): FolderSnapshot {
    const snap = new FolderSnapshot(
      Float64Array.from(entries, (e) => e.uid),
      Float64Array.from(entries, (e) => e.wsize),
    );
    entries.forEach((e, i) => {
      if (e.hasEoh !== true) snap.eoh.set(i, e.hasEoh === false ? 0 : undefined);
      if (e.uidl !== undefined) snap.uidls.set(i, e.uidl);
    });
    return snap;
  }

  /** Index of a UID in the snapshot (binary search); -1 when absent. */
  indexOf(uid: number): number {
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const u = this.uids[mid] as number;
      if (u === uid) return mid;
      if (u < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** False only when message `i`'s header is known to lack its empty line. */
  hasEoh(i: number): boolean {
    return this.eoh.get(i) !== 0;
  }

  /** The entries, one object each (for callers that want them; POP3 sessions do not). */
  entries(): IndexEntry[] {
    return Array.from(this.uids, (uid, i) => {
      const e: IndexEntry = { uid, wsize: this.wsizes[i] as number };
      if (!this.eoh.has(i)) e.hasEoh = true;
      else if (this.eoh.get(i) === 0) e.hasEoh = false;
      const u = this.uidls.get(i);
      if (u !== undefined) e.uidl = u;
      return e;
    });
  }
}
