/**
 * IMAP sequence sets (RFC 3501 §9 `sequence-set`): `1:3,5,7:*`, for message sequence numbers
 * and UIDs alike.
 *
 * Invariants:
 * - Parsing is linear in the text and refuses more than `maxRanges` ranges; numbers are
 *   1..4294967295 (0 and larger values are errors). A UID set may name UIDs that do not exist.
 * - `*` is kept symbolic until `resolve(max)`, which orders each range's ends (`5:2` = `2:5`,
 *   `7:*` with max 3 = `3:7`), then sorts and merges: O(r log r) for r ranges.
 * - Nothing is ever expanded: membership is a binary search over the merged ranges and selection
 *   walks the caller's sorted list, so `1:4294967295` costs what the mailbox holds, not 2^32.
 */
import { err, ok, type Result } from './result.js';

/** `*`, the largest number in use, as stored before resolution. */
const STAR = 0;
const MAX = 4294967295;
export const DEFAULT_MAX_RANGES = 10_000;

/** First index of `sorted` (ascending) from `from` on whose value is ≥ `v` (binary search). */
export function lowerBound(sorted: ArrayLike<number>, v: number, from = 0): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sorted, disjoint, non-adjacent inclusive ranges. */
export class RangeList {
  constructor(
    readonly starts: Uint32Array,
    readonly ends: Uint32Array,
  ) {}

  get length(): number {
    return this.starts.length;
  }

  /** How many numbers the ranges hold (arithmetic, nothing expanded). */
  get size(): number {
    let n = 0;
    for (let r = 0; r < this.starts.length; r++) n += (this.ends[r] as number) - (this.starts[r] as number) + 1;
    return n;
  }

  /** True when `n` lies in one of the ranges. */
  has(n: number): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (n < (this.starts[mid] as number)) hi = mid - 1;
      else if (n > (this.ends[mid] as number)) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /**
   * Indexes into `sorted` (ascending, e.g. the mailbox's UIDs) of the values in the ranges, in
   * ascending order. Cost: one binary search per range plus one step per value returned.
   */
  *indexesIn(sorted: ArrayLike<number>): Generator<number> {
    let from = 0;
    for (let r = 0; r < this.starts.length; r++) {
      const start = this.starts[r] as number;
      const end = this.ends[r] as number;
      let i = lowerBound(sorted, start, from);
      for (; i < sorted.length && (sorted[i] as number) <= end; i++) yield i;
      from = i;
    }
  }

  /** The numbers 1..count (message sequence numbers) in the ranges, ascending. */
  *numbersUpTo(count: number): Generator<number> {
    for (let r = 0; r < this.starts.length; r++) {
      const end = Math.min(this.ends[r] as number, count);
      for (let n = this.starts[r] as number; n <= end; n++) yield n;
    }
  }
}

/** A parsed sequence set, `*` unresolved. */
export class SequenceSet {
  /** Raw [a, b] pairs as written; `*` is 0. */
  private constructor(private readonly pairs: Uint32Array) {}

  /** Parses `text`; never throws. */
  static parse(text: string, maxRanges = DEFAULT_MAX_RANGES): Result<SequenceSet> {
    const pairs: number[] = [];
    let i = 0;
    const num = (): number | undefined => {
      if (text[i] === '*') {
        i++;
        return STAR;
      }
      const start = i;
      while (i < text.length && i - start < 11) {
        const c = text.charCodeAt(i);
        if (c < 0x30 || c > 0x39) break;
        i++;
      }
      if (i === start || text[start] === '0') return undefined;
      const n = Number(text.slice(start, i));
      return n <= MAX ? n : undefined;
    };
    for (;;) {
      if (pairs.length >= maxRanges * 2) return err('too many ranges in sequence set');
      const a = num();
      if (a === undefined) return err('invalid sequence set');
      let b = a;
      if (text[i] === ':') {
        i++;
        const n = num();
        if (n === undefined) return err('invalid sequence set');
        b = n;
      }
      pairs.push(a, b);
      if (i === text.length) break;
      if (text[i] !== ',') return err('invalid sequence set');
      i++;
    }
    return ok(new SequenceSet(Uint32Array.from(pairs)));
  }

  /** True when the set names `*`. */
  get usesStar(): boolean {
    return this.pairs.includes(STAR);
  }

  /** How many distinct numbers a set without `*` names. */
  count(): number {
    return this.resolve(0).size;
  }

  /** Ranges with `*` = `max` (the largest UID, or the message count), sorted and merged. */
  resolve(max: number): RangeList {
    const n = this.pairs.length / 2;
    const ranges: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const a = this.pairs[2 * i] || max;
      const b = this.pairs[2 * i + 1] || max;
      if (a === 0 && b === 0) continue;
      ranges.push(a <= b ? [Math.max(a, 1), b] : [Math.max(b, 1), a]);
    }
    ranges.sort((x, y) => x[0] - y[0]);
    const starts: number[] = [];
    const ends: number[] = [];
    for (const [a, b] of ranges) {
      const last = ends.length - 1;
      if (last >= 0 && a <= (ends[last] as number) + 1) ends[last] = Math.max(ends[last] as number, b);
      else {
        starts.push(a);
        ends.push(b);
      }
    }
    return new RangeList(Uint32Array.from(starts), Uint32Array.from(ends));
  }

  /** The sequence set in wire form, ranges as written (`*` kept). */
  toString(): string {
    const parts: string[] = [];
    const show = (v: number): string => (v === STAR ? '*' : String(v));
    for (let i = 0; i < this.pairs.length; i += 2) {
      const a = this.pairs[i] as number;
      const b = this.pairs[i + 1] as number;
      parts.push(a === b ? show(a) : `${show(a)}:${show(b)}`);
    }
    return parts.join(',');
  }
}

/** Formats ascending numbers compactly, `1,2,3,7` → `1:3,7` (for COPYUID/APPENDUID replies). */
export function formatNumbers(sorted: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    const a = sorted[i] as number;
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(j === i ? String(a) : `${a}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
