/**
 * An exact set of message keys (or UIDLs) for `AccountStore.has()`, kept compact for caches of a
 * million messages: the keys given at construction live in ONE string (`\n` after each) found
 * through an open-addressing table of offsets (4 bytes a slot, half full), about a quarter of what
 * a `Set<string>` costs per key (docs/benchmarks.md). Keys added or deleted later live in two
 * small Sets over it. The strings must not contain `\n` (keys are `[A-Za-z0-9_]+`, UIDLs
 * printable ASCII).
 */
import type { Ledger } from './ledger.js';
import type { UidlMode } from './uidl-mode.js';

/** FNV-1a over UTF-16 code units. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const NL = 10;

/** A Set<string> subset: `has`, `add`, `delete`, `size`. */
export class KeySet {
  private readonly text: string;
  /** Offset + 1 of a key in `text`; 0 is an empty slot. */
  private readonly table: Uint32Array;
  private readonly mask: number;
  private readonly added = new Set<string>();
  private readonly removed = new Set<string>();
  private baseSize = 0;

  constructor(keys: Iterable<string> = []) {
    const parts: string[] = [];
    const hashes: number[] = [];
    const offsets: number[] = [];
    let length = 0;
    for (const k of keys) {
      if (k.includes('\n')) throw new Error(`a key with a line break: ${JSON.stringify(k)}`);
      hashes.push(hash(k));
      offsets.push(length);
      parts.push(k);
      length += k.length + 1;
    }
    parts.push('');
    let slots = 8;
    while (slots < hashes.length * 2) slots *= 2;
    this.table = new Uint32Array(slots);
    this.mask = slots - 1;
    this.text = parts.join('\n'); // one flat string
    for (let n = 0; n < hashes.length; n++) {
      const key = parts[n] as string;
      let i = (hashes[n] as number) & this.mask;
      let slot = this.table[i] as number;
      for (; slot !== 0; i = (i + 1) & this.mask, slot = this.table[i] as number) if (this.at(slot - 1, key)) break;
      if (slot !== 0) continue; // a duplicate
      this.table[i] = (offsets[n] as number) + 1;
      this.baseSize++;
    }
  }

  get size(): number {
    return this.baseSize - this.removed.size + this.added.size;
  }

  has(key: string): boolean {
    if (this.added.has(key)) return true;
    return !this.removed.has(key) && this.inBase(key);
  }

  add(key: string): this {
    if (this.removed.delete(key)) return this;
    if (!this.inBase(key)) this.added.add(key);
    return this;
  }

  delete(key: string): boolean {
    if (this.added.delete(key)) return true;
    if (this.removed.has(key) || !this.inBase(key)) return false;
    this.removed.add(key);
    return true;
  }

  /** True when `key` is the key at `off` of the text. */
  private at(off: number, key: string): boolean {
    return this.text.charCodeAt(off + key.length) === NL && this.text.startsWith(key, off);
  }

  private inBase(key: string): boolean {
    const { table, mask } = this;
    for (let i = hash(key) & mask, slot = table[i] as number; slot !== 0; i = (i + 1) & mask, slot = table[i] as number)
      if (this.at(slot - 1, key)) return true;
    return false;
  }
}

/** An account's keys cached and tombstoned, by folder, and the upstream UIDLs its rows serve. */
export interface AccountKeys {
  cached: Map<string, KeySet>;
  tombs: Map<string, KeySet>;
  served: KeySet;
}

/** Read an account's keys from state.db (`AccountStoreImpl` does at its first `has()`). */
export function loadAccountKeys(ledger: Ledger, account: string, uidlMode: UidlMode): AccountKeys {
  const byFolder = (rows: { folder: string; key: string }[]) => {
    const keys = new Map<string, string[]>();
    for (const { folder, key } of rows) {
      const list = keys.get(folder);
      if (list) list.push(key);
      else keys.set(folder, [key]);
    }
    return new Map([...keys].map(([folder, list]) => [folder, new KeySet(list)]));
  };
  return {
    cached: byFolder(ledger.messageKeys(account)),
    tombs: byFolder(ledger.tombstones(account)),
    served: new KeySet(uidlMode === 'upstream' ? ledger.servedUidls(account) : []),
  };
}

/** The set of `folder` in `m`, created empty when missing. */
export function keySetOf(m: Map<string, KeySet>, folder: string): KeySet {
  let s = m.get(folder);
  if (!s) {
    s = new KeySet();
    m.set(folder, s);
  }
  return s;
}
