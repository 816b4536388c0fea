/**
 * How each kind of journaled change is carried upstream over one imapflow connection
 * (journal-replay.ts drains the journal and calls these; docs/imap-server.md).
 *
 * - Each applier calls `mark(note)` (durable `markInflight`) before its first upstream change,
 *   and returns the upstream keys of the local messages it added (APPENDUID / COPYUID, or a
 *   search by identity after a crash or without UIDPLUS: journal-landed.ts).
 * - flags, expunge, create, rename and delete are idempotent: after a crash they are applied again;
 *   a rename or delete of a folder no longer upstream is done (another device deleted it).
 *   append, copy and move are not: an entry found inflight is first looked for in its target.
 * - Message keys: a row still local gives its current key (re-keyed by the pull after a
 *   UIDVALIDITY change); a row gone (expunged, moved out) gives the key the entry recorded; a key
 *   still local (`l…`) was given its upstream key by an earlier entry of this drain, or never
 *   reached the upstream (then there is nothing to change there).
 * - A key of an older UIDVALIDITY: while the folder's cursor still has the old one, the pull has
 *   not re-keyed yet (rekey.ts matches by content and moves the keys of pending entries with the
 *   records, cache/journal-keys.ts) — the entry waits for it (temporary failure); once the cursor
 *   moved on, a key still stale names a message the re-key found no match for (gone upstream): it
 *   is left out, and an entry with nothing else fails permanently, loudly.
 *
 * imapflow rules: no command inside a fetch() loop; never wait for a mailbox lock while holding one.
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { identityOf, identityOfBytes, messageIdOfHeader } from '../../cache/content-identity.js';
import type { JournalChange, JournalEntry, KeyAssignment, MailboxSnapshot } from '../../cache/mailboxes.js';
import type { ImapCursor } from '../../cache/message-store.js';
import { TemporaryError } from '../../shared/errors.js';
import { findLanded, type LandingNote, parseNote, targetStatus, toCrlf } from './journal-landed.js';
import { isMissingFolder, uidSet, upstreamPath } from './names.js';
import { digests, imapKey } from './rekey.js';

/** What the replay needs of the account's cache (the MailboxStore and AccountStore of imapstore). */
export interface ReplayStore {
  readonly accountId: string;
  /** Live rows of a folder with their current upstream keys. */
  list(folder: string): ReadonlyArray<{ uid: number; key: string }>;
  /** MailboxStore.select: flags and INTERNALDATE of an appended message. */
  select(folder: string): MailboxSnapshot;
  /** MailboxStore.read: the bytes of a local message. */
  read(folder: string, uid: number): Promise<Buffer>;
}

/** Everything an applier works with during one drain. */
export interface ApplyContext {
  client: ImapFlow;
  store: ReplayStore;
  cursors: { getCursor(account: string, folder: string): ImapCursor | undefined };
  log: Logger;
  /** Upstream keys given to local messages earlier in this drain, by `folder\0uid`. */
  assigned: Map<string, string>;
  /** The local name of a folder now, after the renames journaled after the entry in hand. */
  localName(folder: string): string;
}

/** `localName` for an entry: follows the later renames of the pending entries (children included). */
export function laterRenames(entries: readonly JournalEntry[], after: number): (folder: string) => string {
  const renames = entries.flatMap((e) => (e.id > after && e.change.kind === 'rename' ? [e.change] : []));
  return (folder) => {
    let name = folder;
    for (const r of renames)
      if (name === r.folder) name = r.to;
      else if (name.startsWith(`${r.folder}/`)) name = r.to + name.slice(r.folder.length);
    return name;
  };
}

/** The change cannot be applied, now or later (a folder or message gone upstream): fail it and go on. */
export class PermanentChangeError extends Error {
  override name = 'PermanentChangeError';
}

/** The change must wait (e.g. for the pull to re-key a folder): retried later, the drain stops. */
export class DeferredChangeError extends TemporaryError {}

export interface Applier<C extends JournalChange> {
  /** An inflight entry (a crash left it): what already landed upstream, or undefined to apply it again. */
  recover?(ctx: ApplyContext, change: C, entry: JournalEntry): Promise<KeyAssignment[] | undefined>;
  run(ctx: ApplyContext, change: C, mark: (note?: string) => void): Promise<KeyAssignment[]>;
}

/** A server refusal or a lost connection, as an error the replay classifies. */
function refused(client: ImapFlow, what: string): Error {
  return client.usable
    ? new Error(`IMAP server refused ${what}`)
    : new TemporaryError(`connection lost during ${what}`);
}

/** Run `fn` with `path` selected read-write; a folder missing upstream is a permanent failure. */
async function withFolder<T>(ctx: ApplyContext, path: string, fn: (uv: string) => Promise<T>): Promise<T> {
  let lock: { release(): void };
  try {
    lock = await ctx.client.getMailboxLock(path);
  } catch (err) {
    if (isMissingFolder(err)) throw new PermanentChangeError(`folder ${path} does not exist upstream`, { cause: err });
    throw err;
  }
  try {
    return await fn(String(ctx.client.mailbox ? ctx.client.mailbox.uidValidity : ''));
  } finally {
    lock.release();
  }
}

/**
 * The upstream UID of each local message (same order as `uids`; undefined: not upstream or
 * stale), following the rules of the module comment.
 */
function upstreamUids(
  ctx: ApplyContext,
  folder: string,
  uids: readonly number[],
  recorded: readonly string[] | undefined,
  uv: string,
): Array<number | undefined> {
  const live = new Map(ctx.store.list(folder).map((m) => [m.uid, m.key]));
  let stale = 0;
  const out = uids.map((uid, i) => {
    let key = live.get(uid) ?? recorded?.[i];
    if (key?.startsWith('l')) key = ctx.assigned.get(`${folder}\0${uid}`) ?? key;
    const m = key ? /^i(\d+)_(\d+)$/.exec(key) : null;
    if (!m) return undefined; // never reached the upstream
    if (m[1] !== uv) {
      stale++;
      return undefined;
    }
    return Number(m[2]);
  });
  if (stale) {
    const cursor = ctx.cursors.getCursor(ctx.store.accountId, folder);
    if (cursor && cursor.uidValidity !== uv)
      throw new DeferredChangeError(`UIDVALIDITY of ${folder} changed upstream: waiting for the pull to re-key it`);
    if (out.every((u) => u === undefined))
      throw new PermanentChangeError(
        `UIDVALIDITY of ${folder} changed upstream and ${stale} message(s) of this change match none there`,
      );
    ctx.log.warn({ folder, stale }, 'journal replay: messages of an older UIDVALIDITY left out of the change');
  }
  return out;
}

const defined = (u: number | undefined): u is number => u !== undefined;

type Of<K extends JournalChange['kind']> = Extract<JournalChange, { kind: K }>;

const flags: Applier<Of<'flags'>> = {
  async run(ctx, c, mark) {
    const { client } = ctx;
    const path = upstreamPath(client, c.folder);
    await withFolder(ctx, path, async (uv) => {
      const uids = upstreamUids(ctx, c.folder, c.uids, c.keys, uv).filter(defined);
      if (!uids.length || (c.op !== 'replace' && !c.flags.length)) return;
      const set = uidSet(uids);
      const list = c.flags.filter((f) => f !== '\\Recent');
      mark();
      const ok =
        c.op === 'add'
          ? await client.messageFlagsAdd(set, list, { uid: true })
          : c.op === 'remove'
            ? await client.messageFlagsRemove(set, list, { uid: true })
            : await client.messageFlagsSet(set, list, { uid: true });
      if (!ok) throw refused(client, `STORE in ${path}`);
    });
    return [];
  },
};

/**
 * UID STORE +FLAGS \Deleted and UID EXPUNGE. Without UIDPLUS a plain EXPUNGE would also remove
 * messages another client marked \Deleted: their flag is taken off for the EXPUNGE and put back
 * (a crash in between leaves them without it: the lesser harm).
 */
async function expungeUids(client: ImapFlow, path: string, uids: number[]): Promise<void> {
  const set = uidSet(uids);
  let others: number[] = [];
  if (!client.capabilities.has('UIDPLUS')) {
    const mine = new Set(uids);
    const found = await client.search({ deleted: true }, { uid: true });
    others = Array.isArray(found) ? found.filter((u) => !mine.has(u)) : [];
    if (others.length && !(await client.messageFlagsRemove(uidSet(others), ['\\Deleted'], { uid: true })))
      throw refused(client, `STORE in ${path}`);
  }
  try {
    if (!(await client.messageDelete(set, { uid: true }))) throw refused(client, `EXPUNGE in ${path}`);
  } finally {
    if (others.length) await client.messageFlagsAdd(uidSet(others), ['\\Deleted'], { uid: true });
  }
}

const expunge: Applier<Of<'expunge'>> = {
  async run(ctx, c, mark) {
    const path = upstreamPath(ctx.client, c.folder);
    await withFolder(ctx, path, async (uv) => {
      const uids = upstreamUids(ctx, c.folder, c.uids, c.keys, uv).filter(defined);
      if (!uids.length) return;
      mark();
      await expungeUids(ctx.client, path, uids);
    });
    return [];
  },
};

/** The target's UIDVALIDITY and UIDNEXT; a target missing upstream is a permanent failure. */
async function statusOf(client: ImapFlow, path: string): Promise<{ uv: string; next: number }> {
  try {
    return await targetStatus(client, path);
  } catch (err) {
    if (isMissingFolder(err)) throw new PermanentChangeError(`folder ${path} does not exist upstream`, { cause: err });
    throw err;
  }
}

/** Keys of the found messages: `found` maps the note's numbers (local UIDs) to upstream UIDs. */
function keysOf(uv: string, found: Map<string, number>): KeyAssignment[] {
  return [...found].map(([local, uid]) => ({ uid: Number(local), key: imapKey(uv, uid) }));
}

const append: Applier<Of<'append'>> = {
  async recover(ctx, c, entry) {
    const note = parseNote(entry.inflightNote);
    if (!note) return undefined;
    const { uv, found } = await findLanded(ctx.client, upstreamPath(ctx.client, c.folder), note);
    return found.size ? keysOf(uv, found) : undefined;
  },
  async run(ctx, c, mark) {
    const { client, store } = ctx;
    const here = ctx.localName(c.folder); // the folder may have been renamed locally since
    let bytes: Buffer;
    try {
      bytes = toCrlf(await store.read(here, c.uid));
    } catch {
      ctx.log.info({ folder: here, uid: c.uid }, 'journal replay: appended message removed locally since');
      return [];
    }
    const msg = store.select(here).messages.find((m) => m.uid === c.uid);
    const path = upstreamPath(client, c.folder);
    const st = await statusOf(client, path);
    const note: LandingNote = { ...st, ids: { [c.uid]: identityOfBytes(bytes) } };
    mark(JSON.stringify(note));
    const flagList = (msg?.flags ?? []).filter((f) => f !== '\\Recent');
    const res = await client.append(path, bytes, flagList, msg ? new Date(msg.internalDate) : undefined);
    if (!res) throw refused(client, `APPEND to ${path}`);
    if (res.uid !== undefined && res.uidValidity !== undefined)
      return [{ uid: c.uid, key: imapKey(String(res.uidValidity), res.uid) }];
    const { uv, found } = await findLanded(client, path, note);
    return keysOf(uv, found);
  },
};

/** Content identities of messages of the selected folder, by UID, as the upstream has them (gone ones absent). */
async function sourceIdentities(client: ImapFlow, uids: number[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const noId: Array<{ uid: number; size: number }> = [];
  for await (const m of client.fetch(uidSet(uids), { uid: true, size: true, headers: ['message-id'] }, { uid: true })) {
    const ident = identityOf(m.headers && messageIdOfHeader(m.headers), m.size ?? 0);
    if (ident) out.set(m.uid, ident);
    else noId.push({ uid: m.uid, size: m.size ?? 0 });
  }
  for (const d of await digests(client, noId)) out.set(d.uid, d.ident);
  return out;
}

type Transfer = Of<'copy'> | Of<'move'>;

/** The sources of a move that are still in the source folder are expunged (a crash mid-way of a COPY-based move). */
async function finishMove(ctx: ApplyContext, c: Transfer, note: LandingNote): Promise<void> {
  if (c.kind !== 'move' || !note.src) return;
  const uids = Object.values(note.src);
  if (!uids.length) return;
  const path = upstreamPath(ctx.client, c.folder);
  await withFolder(ctx, path, (uv) => (uv === note.srcUv ? expungeUids(ctx.client, path, uids) : Promise.resolve()));
}

const transfer: Applier<Transfer> = {
  async recover(ctx, c, entry) {
    const note = parseNote(entry.inflightNote);
    if (!note) return undefined;
    const { uv, found } = await findLanded(ctx.client, upstreamPath(ctx.client, c.to), note);
    if (found.size < Object.keys(note.ids).length) return undefined; // COPY and MOVE are all or nothing
    await finishMove(ctx, c, note);
    return keysOf(uv, found);
  },
  async run(ctx, c, mark) {
    const { client } = ctx;
    const src = upstreamPath(client, c.folder);
    const dst = upstreamPath(client, c.to);
    const sent = await withFolder(ctx, src, async (srcUv) => {
      const ups = upstreamUids(
        ctx,
        c.folder,
        c.pairs.map((p) => p.from),
        c.keys,
        srcUv,
      );
      const pairs = c.pairs.flatMap((p, i) => (ups[i] === undefined ? [] : [{ to: p.to, up: ups[i] as number }]));
      if (!pairs.length) return undefined; // local-only messages: nothing upstream
      const ids = await sourceIdentities(
        client,
        pairs.map((p) => p.up),
      );
      const present = pairs.filter((p) => ids.has(p.up));
      if (!present.length) throw new PermanentChangeError(`the messages to ${c.kind} are gone from ${src} upstream`);
      const st = await statusOf(client, dst);
      const note: LandingNote = {
        ...st,
        ids: Object.fromEntries(present.map((p) => [p.to, ids.get(p.up) as string])),
        src: Object.fromEntries(present.map((p) => [p.to, p.up])),
        srcUv,
      };
      mark(JSON.stringify(note));
      const set = uidSet(present.map((p) => p.up));
      // without MOVE: COPY, then our careful expunge of the sources (not imapflow's plain EXPUNGE)
      const viaCopy = c.kind === 'copy' || !client.capabilities.has('MOVE');
      const res = viaCopy
        ? await client.messageCopy(set, dst, { uid: true })
        : await client.messageMove(set, dst, { uid: true });
      if (!res) throw refused(client, `${c.kind.toUpperCase()} to ${dst}`);
      if (c.kind === 'move' && viaCopy)
        await expungeUids(
          client,
          src,
          present.map((p) => p.up),
        );
      const { uidMap, uidValidity } = res;
      if (!uidMap || uidValidity === undefined) return { note };
      const found = new Map<string, number>();
      for (const p of present) {
        const to = uidMap.get(p.up);
        if (to !== undefined) found.set(String(p.to), to);
      }
      return { note, keys: keysOf(String(uidValidity), found) };
    });
    if (!sent) return [];
    if (sent.keys) return sent.keys;
    const { uv, found } = await findLanded(client, dst, sent.note); // no COPYUID: look for them
    return keysOf(uv, found);
  },
};

/** The upstream's folder names (`LIST "" *`). */
async function upstreamFolders(client: ImapFlow): Promise<Set<string>> {
  return new Set((await client.list()).map((f) => f.path));
}

const create: Applier<Of<'create'>> = {
  async run(ctx, c, mark) {
    mark();
    await ctx.client.mailboxCreate(upstreamPath(ctx.client, c.folder)); // ALREADYEXISTS is success
    return [];
  },
};

const rename: Applier<Of<'rename'>> = {
  async run(ctx, c, mark) {
    const { client } = ctx;
    const from = upstreamPath(client, c.folder);
    const to = upstreamPath(client, c.to);
    mark();
    const have = await upstreamFolders(client);
    if (!have.has(from)) {
      // renamed already (before a crash), or deleted upstream: the pull removes it locally too
      if (!have.has(to)) ctx.log.info({ folder: c.folder }, 'journal replay: folder to rename is gone upstream');
      return [];
    }
    await client.mailboxRename(from, to);
    return [];
  },
};

const remove: Applier<Of<'delete'>> = {
  async run(ctx, c, mark) {
    const path = upstreamPath(ctx.client, c.folder);
    mark();
    if (!(await upstreamFolders(ctx.client)).has(path)) return []; // gone already
    await ctx.client.mailboxDelete(path);
    return [];
  },
};

/** The applier of a change's kind. */
export function applierOf(change: JournalChange): Applier<JournalChange> {
  const table: { [K in JournalChange['kind']]: Applier<Of<K>> } = {
    flags,
    expunge,
    append,
    copy: transfer,
    move: transfer,
    create,
    rename,
    delete: remove,
  };
  return table[change.kind] as Applier<JournalChange>;
}

/** The folder where a change adds messages (their keys are assigned there). */
export function targetFolder(change: JournalChange): string {
  return change.kind === 'copy' || change.kind === 'move' ? change.to : change.folder;
}
