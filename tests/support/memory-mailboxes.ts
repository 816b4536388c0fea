/**
 * An in-memory `MailboxStore` (src/cache/mailboxes.ts) for the IMAP server's tests, faithful to
 * the contract: UIDs of the account never reused, UIDNEXT moving only on add, one MODSEQ
 * counter per account, every change announced to listeners after it is done, NoSuchFolderError
 * and FolderOperationError where the real store raises them. Counts `reads` so tests can check
 * which commands touch message files.
 */
import {
  type FlagChange,
  type FlagResult,
  FolderOperationError,
  type MailboxEvent,
  type MailboxInfo,
  type MailboxMessage,
  type MailboxSnapshot,
  type MailboxStore,
  NoSuchFolderError,
  type SpecialUse,
  type UidPair,
} from '../../src/cache/mailboxes.js';

interface Folder {
  name: string;
  specialUse?: SpecialUse;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  subscribed: boolean;
  messages: Map<number, { m: MailboxMessage; bytes: Buffer }>;
}

const crlfSize = (b: Buffer): number => Buffer.from(b.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1').length;

export class MemoryMailboxes implements MailboxStore {
  readonly accountId: string;
  /** `read()` calls so far. */
  reads = 0;
  private readonly boxes = new Map<string, Folder>();
  private readonly listeners = new Set<(ev: MailboxEvent) => void>();
  private nextUid = 1;
  private modseq = 1;
  private validity = 1_700_000_000;

  constructor(accountId = 'alice') {
    this.accountId = accountId;
    this.addFolder('INBOX');
    this.addFolder('Sent', '\\Sent');
    this.addFolder('Drafts', '\\Drafts');
    this.addFolder('Trash', '\\Trash');
  }

  private addFolder(name: string, specialUse?: SpecialUse): Folder {
    const f: Folder = {
      name,
      uidValidity: this.validity++,
      uidNext: 1,
      highestModseq: 1,
      subscribed: true,
      messages: new Map(),
      ...(specialUse ? { specialUse } : {}),
    };
    this.boxes.set(name, f);
    return f;
  }

  private get(name: string): Folder {
    const f = this.boxes.get(name === 'INBOX' || name.toUpperCase() !== 'INBOX' ? name : 'INBOX');
    if (!f) throw new NoSuchFolderError(name);
    return f;
  }

  private emit(ev: MailboxEvent): void {
    for (const l of this.listeners) l(ev);
  }

  private info(f: Folder, selectable = true): MailboxInfo {
    let unseen = 0;
    for (const { m } of f.messages.values()) if (!m.flags.includes('\\Seen')) unseen++;
    return {
      name: f.name,
      ...(f.specialUse ? { specialUse: f.specialUse } : {}),
      uidValidity: f.uidValidity,
      uidNext: f.uidNext,
      highestModseq: f.highestModseq,
      messages: f.messages.size,
      unseen,
      subscribed: f.subscribed,
      selectable,
    };
  }

  /** Test helper: add a message as a pull would (announced as 'added'). */
  deliver(
    folder: string,
    bytes: Buffer | string,
    flags: string[] = [],
    internalDate = Date.UTC(2024, 0, 2, 3, 4, 5),
  ): MailboxMessage {
    const f = this.get(folder);
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    const m = this.put(f, buf, flags, internalDate);
    this.emit({ kind: 'added', folder: f.name, messages: [m] });
    return m;
  }

  private put(f: Folder, bytes: Buffer, flags: readonly string[], internalDate: number): MailboxMessage {
    const uid = this.nextUid++;
    const m: MailboxMessage = {
      uid,
      size: crlfSize(bytes),
      flags: [...new Set(flags)].sort(),
      modseq: ++this.modseq,
      internalDate,
    };
    f.messages.set(uid, { m, bytes });
    f.uidNext = uid + 1;
    f.highestModseq = m.modseq;
    return m;
  }

  folders(): MailboxInfo[] {
    const names = [...this.boxes.keys()].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : 1));
    const out: MailboxInfo[] = [];
    const seen = new Set(names);
    for (const n of names) {
      const parts = n.split('/');
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('/');
        if (!seen.has(parent)) {
          seen.add(parent);
          out.push({ ...this.info(this.addFolder(parent), false), subscribed: false });
          this.boxes.delete(parent);
        }
      }
      out.push(this.info(this.get(n)));
    }
    return out;
  }

  folder(name: string): MailboxInfo | undefined {
    return this.folders().find((f) => f.name === (name.toUpperCase() === 'INBOX' ? 'INBOX' : name));
  }

  select(name: string): MailboxSnapshot {
    const f = this.get(name);
    const messages = [...f.messages.values()].map((x) => x.m).sort((a, b) => a.uid - b.uid);
    return { info: this.info(f), messages };
  }

  async read(folder: string, uid: number): Promise<Buffer> {
    this.reads++;
    const x = this.get(folder).messages.get(uid);
    if (!x) throw new Error(`message ${uid} is gone`);
    return x.bytes;
  }

  async setFlags(folder: string, uids: readonly number[], change: FlagChange): Promise<FlagResult> {
    const f = this.get(folder);
    const changed: MailboxMessage[] = [];
    const modified: number[] = [];
    for (const uid of uids) {
      const x = f.messages.get(uid);
      if (!x) continue;
      if (change.unchangedSince !== undefined && x.m.modseq > change.unchangedSince) {
        modified.push(uid);
        continue;
      }
      const cur = new Set(x.m.flags);
      const next =
        change.op === 'replace'
          ? new Set(change.flags)
          : change.op === 'add'
            ? new Set([...cur, ...change.flags])
            : new Set([...cur].filter((fl) => !change.flags.includes(fl)));
      const flags = [...next].sort();
      if (flags.join(' ') === x.m.flags.join(' ')) continue;
      x.m = { ...x.m, flags, modseq: ++this.modseq };
      f.highestModseq = x.m.modseq;
      changed.push(x.m);
    }
    if (changed.length) this.emit({ kind: 'flags', folder: f.name, messages: changed });
    return { changed, modified };
  }

  /** `sameModseq`: MOVE's expunge shares the MODSEQ of its copies, as in the real store. */
  async expunge(folder: string, uids: readonly number[], sameModseq = false): Promise<number[]> {
    const f = this.get(folder);
    const gone = [...new Set(uids)].filter((u) => f.messages.delete(u)).sort((a, b) => a - b);
    if (gone.length) {
      f.highestModseq = sameModseq ? this.modseq : ++this.modseq;
      this.emit({ kind: 'expunged', folder: f.name, uids: gone });
    }
    return gone;
  }

  async copy(from: string, uids: readonly number[], to: string): Promise<UidPair[]> {
    const src = this.get(from);
    const dst = this.get(to);
    const pairs: UidPair[] = [];
    const added: MailboxMessage[] = [];
    for (const uid of [...uids].sort((a, b) => a - b)) {
      const x = src.messages.get(uid);
      if (!x) continue;
      const m = this.put(dst, x.bytes, x.m.flags, x.m.internalDate);
      pairs.push({ from: uid, to: m.uid });
      added.push(m);
    }
    if (added.length) this.emit({ kind: 'added', folder: dst.name, messages: added });
    return pairs;
  }

  async move(from: string, uids: readonly number[], to: string): Promise<UidPair[]> {
    const pairs = await this.copy(from, uids, to);
    await this.expunge(
      from,
      pairs.map((p) => p.from),
      true,
    );
    return pairs;
  }

  async append(
    folder: string,
    bytes: Buffer,
    opts: { flags?: readonly string[]; internalDate?: number } = {},
  ): Promise<{ uid: number; uidValidity: number }> {
    const f = this.get(folder);
    const m = this.put(f, bytes, opts.flags ?? [], opts.internalDate ?? Date.now());
    this.emit({ kind: 'added', folder: f.name, messages: [m] });
    return { uid: m.uid, uidValidity: f.uidValidity };
  }

  async createFolder(name: string): Promise<void> {
    const n = name.replace(/\/+$/, '');
    if (this.boxes.has(n) || n.toUpperCase() === 'INBOX') throw new FolderOperationError('exists', 'ALREADYEXISTS');
    const parts = n.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!this.boxes.has(p)) this.addFolder(p);
    }
    this.emit({ kind: 'folders' });
  }

  async renameFolder(from: string, to: string): Promise<void> {
    const f = this.get(from);
    if (this.boxes.has(to)) throw new FolderOperationError('exists', 'ALREADYEXISTS');
    if (f.name === 'INBOX') {
      const n = this.addFolder(to);
      n.messages = f.messages;
      n.uidNext = f.uidNext;
      const moved = [...f.messages.keys()];
      f.messages = new Map();
      if (moved.length) this.emit({ kind: 'expunged', folder: 'INBOX', uids: moved });
    } else {
      const from = f.name; // f.name changes in the loop: children compare with the old name
      for (const [name, box] of [...this.boxes]) {
        if (name !== from && !name.startsWith(`${from}/`)) continue;
        this.boxes.delete(name);
        box.name = to + name.slice(from.length);
        this.boxes.set(box.name, box);
      }
    }
    this.emit({ kind: 'folders' });
  }

  async deleteFolder(name: string): Promise<void> {
    const f = this.get(name);
    if (f.name === 'INBOX') throw new FolderOperationError('INBOX cannot be deleted', 'CANNOT');
    this.boxes.delete(f.name);
    this.emit({ kind: 'folders' });
  }

  async subscribe(name: string, subscribed: boolean): Promise<void> {
    const f = this.boxes.get(name);
    if (f) f.subscribed = subscribed;
    this.emit({ kind: 'folders' });
  }

  onChange(listener: (event: MailboxEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
