/**
 * A durable stand-in for the cache's change journal and the account views the replay uses
 * (ChangeJournal + ReplayStore + MirrorStore), kept in one JSON file rewritten with
 * write → fsync → rename at every change, so a replay killed with -9 finds exactly what was
 * durable. It lets the replay be tested against the real Dovecot without the local IMAP server;
 * `complete(id, keys)` re-keys the rows and the later entries' local keys like the cache does.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type {
  ChangeJournal,
  JournalChange,
  JournalEntry,
  KeyAssignment,
  MailboxSnapshot,
  SpecialUse,
} from '../../src/cache/mailboxes.js';
import type { ImapChanges } from '../../src/upstream/imap/journal-replay.js';

export interface FakeRow {
  folder: string;
  uid: number;
  key: string;
  flags: string[];
  internalDate: number;
  /** The bytes, base64; absent for rows pulled from upstream that the test never reads. */
  b64?: string;
}

interface FakeState {
  account: string;
  nextId: number;
  nextUid: number;
  entries: JournalEntry[];
  rows: FakeRow[];
  upstreamFolders: Array<{ name: string; specialUse?: SpecialUse }>;
}

export class FakeJournalStore {
  private s: FakeState;

  constructor(
    readonly file: string,
    account = 'acct',
  ) {
    this.s = existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as FakeState)
      : { account, nextId: 1, nextUid: 1000, entries: [], rows: [], upstreamFolders: [] };
    if (!existsSync(file)) this.save();
  }

  get state(): Readonly<FakeState> {
    return this.s;
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(this.s));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }

  /** A local message (its row) with a new local UID; `key` defaults to a local key `l<hex>`. */
  addRow(folder: string, bytes: Buffer | undefined, opts: { key?: string; flags?: string[] } = {}): FakeRow {
    const uid = this.s.nextUid++;
    const row: FakeRow = {
      folder,
      uid,
      key: opts.key ?? `l${uid.toString(16)}`,
      flags: opts.flags ?? [],
      internalDate: Date.UTC(2024, 0, 2, 3, 4, 5),
      ...(bytes ? { b64: bytes.toString('base64') } : {}),
    };
    this.s.rows.push(row);
    this.save();
    return row;
  }

  removeRows(folder: string, uids: readonly number[]): void {
    this.s.rows = this.s.rows.filter((r) => r.folder !== folder || !uids.includes(r.uid));
    this.save();
  }

  /** A local COPY/MOVE of `from` into `to` (the new row, the source row gone for a move) and its entry. */
  transfer(kind: 'copy' | 'move', from: FakeRow, to: string): FakeRow {
    const row = this.addRow(to, undefined);
    if (kind === 'move') this.removeRows(from.folder, [from.uid]);
    this.add({ kind, folder: from.folder, to, pairs: [{ from: from.uid, to: row.uid }], keys: [from.key] });
    return row;
  }

  /** A local EXPUNGE of `row` (its row gone) and its entry. */
  expunge(row: FakeRow): void {
    this.removeRows(row.folder, [row.uid]);
    this.add({ kind: 'expunge', folder: row.folder, uids: [row.uid], keys: [row.key] });
  }

  /** Journal a change (queued). */
  add(change: JournalChange): number {
    const id = this.s.nextId++;
    this.s.entries.push({ id, account: this.s.account, change, state: 'queued', createdAt: Date.now(), tries: 0 });
    this.save();
    return id;
  }

  entry(id: number): JournalEntry | undefined {
    return this.s.entries.find((e) => e.id === id);
  }

  private must(id: number): JournalEntry {
    const e = this.entry(id);
    if (!e) throw new Error(`no journal entry ${id}`);
    return e;
  }

  readonly journal: ChangeJournal = {
    pending: (account) =>
      this.s.entries.filter((e) => e.account === account && (e.state === 'queued' || e.state === 'inflight')),
    list: (account) =>
      this.s.entries.filter((e) => (!account || e.account === account) && !['done', 'dropped'].includes(e.state)),
    counts: () => {
      const m = new Map<string, { pending: number; failed: number }>();
      for (const e of this.s.entries) {
        const c = m.get(e.account) ?? { pending: 0, failed: 0 };
        if (e.state === 'queued' || e.state === 'inflight') c.pending++;
        if (e.state === 'failed') c.failed++;
        m.set(e.account, c);
      }
      return m;
    },
    markInflight: (id, note) => {
      const e = this.must(id);
      e.state = 'inflight';
      e.tries++;
      if (note !== undefined) e.inflightNote = note; // an earlier note stays, as in the cache
      this.save();
    },
    complete: (id, keys = []) => {
      const e = this.must(id);
      e.state = 'done';
      const folder = e.change.kind === 'copy' || e.change.kind === 'move' ? e.change.to : e.change.folder;
      for (const k of keys) this.rekey(folder, k);
      this.save();
    },
    fail: (id, error, opts) => {
      const e = this.must(id);
      e.state = opts.permanent ? 'failed' : 'queued';
      e.lastError = error;
      if (opts.nextAttempt !== undefined) e.nextAttempt = opts.nextAttempt;
      this.save();
    },
    retry: (id) => {
      const e = this.must(id);
      if (e.state !== 'failed') return false;
      e.state = 'queued';
      delete e.nextAttempt;
      this.save();
      return true;
    },
    drop: (id) => {
      const e = this.must(id);
      if (e.state === 'done') return false;
      e.state = 'dropped';
      this.save();
      return true;
    },
  };

  /** The row gets its upstream key; later entries that recorded its local key get the new one. */
  private rekey(folder: string, k: KeyAssignment): void {
    const local = `l${k.uid.toString(16)}`;
    for (const r of this.s.rows) if (r.folder === folder && r.uid === k.uid) r.key = k.key;
    for (const e of this.s.entries) {
      const c = e.change;
      if (e.state === 'done' || !('keys' in c) || !c.keys) continue;
      const uids = c.kind === 'copy' || c.kind === 'move' ? c.pairs.map((p) => p.from) : c.uids;
      c.keys = c.keys.map((key, i) => (c.folder === folder && uids[i] === k.uid && key === local ? k.key : key));
    }
  }

  /** What `ImapFetcher` and `replayJournal` take. */
  changes(): ImapChanges {
    const s = () => this.s;
    return {
      journal: this.journal,
      store: {
        accountId: this.s.account,
        list: (folder) => s().rows.filter((r) => r.folder === folder),
        select: (folder): MailboxSnapshot => {
          const messages = s()
            .rows.filter((r) => r.folder === folder)
            .map((r) => ({ uid: r.uid, size: 0, flags: r.flags, modseq: 1, internalDate: r.internalDate }));
          const info = {
            name: folder,
            uidValidity: 1,
            uidNext: s().nextUid,
            highestModseq: 1,
            messages: messages.length,
            unseen: 0,
            subscribed: true,
            selectable: true,
          };
          return { info, messages };
        },
        read: async (folder, uid) => {
          const r = s().rows.find((x) => x.folder === folder && x.uid === uid);
          if (!r?.b64) throw new Error(`message ${uid} of ${folder} is gone`);
          return Buffer.from(r.b64, 'base64');
        },
        applyUpstreamFlags: async (folder, flags) => {
          let n = 0;
          for (const f of flags) {
            const r = s().rows.find((x) => x.folder === folder && x.key === f.key);
            if (r && JSON.stringify([...r.flags].sort()) !== JSON.stringify([...f.flags].sort())) {
              r.flags = [...f.flags].sort();
              n++;
            }
          }
          if (n) this.save();
          return n;
        },
        applyUpstreamExpunges: async (folder, keys) => {
          const before = s().rows.length;
          s().rows = s().rows.filter((r) => r.folder !== folder || !keys.includes(r.key));
          this.save();
          return before - s().rows.length;
        },
        noteUpstreamFolders: async (folders) => {
          s().upstreamFolders = [...folders];
          this.save();
        },
        localFolders: () => [],
        unresolvedChanges: (folder) =>
          s().entries.some(
            (e) =>
              e.state === 'inflight' && (e.change.folder === folder || ('to' in e.change && e.change.to === folder)),
          ),
      },
    };
  }
}
