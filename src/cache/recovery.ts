/**
 * Start-up recovery of one account (invariant 8). The Maildir is the journal (invariant 2); the
 * ledger rows are brought in line with it, never the other way round:
 *
 * 1. `tmp/` of every folder: our temp files are removed (we are the only writer of them and no
 *    writer runs yet); foreign ones only when older than 36 hours (the Maildir convention).
 * 2. `new/` and `cur/` are scanned. A file with our name whose real size disagrees with `S=`, or
 *    that repeats a UID or a (folder, key) already seen (lowest UID wins), is moved to
 *    `accounts/<id>/quarantine/<name>.broken` and logged: never indexed, never deleted.
 * 3. A file with our name, no row, and a tombstoned key is the rest of a local deletion whose
 *    transaction committed: it is unlinked.
 * 4. The next UID becomes max(stored next UID, highest row UID + 1, highest file UID + 1, the
 *    `next-uid` floor file), so UIDs are never reused (invariant 5).
 * 5. A file with a foreign name is adopted: fresh UID, key `x<sha256 prefix>`, renamed to our
 *    scheme in place (flags kept), directories fsynced before any row mentions it.
 * 6. In ONE transaction: rows whose file is gone or differs are deleted, rows for every file
 *    the ledger lacks (or describes wrongly) are inserted, and the next UID is raised. A row
 *    serves the upstream UIDL its name carries (`U=`) when that is servable and no lower UID
 *    of the account serves it already (`uidl-mode.ts`). The directories of inserted rows are
 *    fsynced first: a file renamed into `new/` by a process killed before its commit's
 *    directory fsync gets a row (and may then be deleted upstream) only once its name is durable.
 *
 * Before step 2, a local IMAP change a crash cut short is finished or undone (`mailbox-intent.ts`);
 * rebuilt rows keep the flags, keywords, MODSEQ and INTERNALDATE state.db had for their UID.
 *
 * Steps 2 to 6 are skipped when the account's clean-shutdown record (`clean-shutdown.ts`) shows
 * that nothing changed since a clean stop: then state.db already agrees with the Maildir, and
 * start-up does not read a million names. The record is removed before anything is written, so
 * a crash always brings the full recovery.
 */

import { type Dirent, existsSync, type Stats } from 'node:fs';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import { fsyncDir, mkdirDurable, renameDurable } from '../shared/durable-fs.js';
import { stillClean, takeCleanRecord } from './clean-shutdown.js';
import type { Ledger, MessageRow } from './ledger.js';
import { settleIntent } from './mailbox-intent.js';
import { type ImapRow, MailboxRows } from './mailbox-rows.js';
import {
  accountDir,
  decodeFolder,
  digestFile,
  ensureFolder,
  folderDir,
  formatName,
  isOurTmpName,
  maildirPath,
  type ParsedName,
  parseName,
  quarantinePath,
  replaceKey,
  splitInfo,
  uidl,
} from './maildir.js';
import { INBOX } from './message-store.js';
import { isServableUidl } from './uidl-mode.js';

/** What recovery did for one account. */
export interface RecoveryReport {
  account: string;
  folders: number;
  /** Message files read from `new/` and `cur/` (0 when they were not read). */
  files: number;
  /** `new/` and `cur/` directories read (none after a clean shutdown with nothing changed since). */
  scannedDirs: number;
  /** Foreign files given a UID and our name. */
  adopted: number;
  /** Rows inserted because the ledger lacked them (or described them wrongly). */
  rebuilt: number;
  /** Rows deleted because their file is gone. */
  dropped: number;
  removedTmp: number;
  quarantined: number;
  /** Files of committed local deletions that were still on disk. */
  finishedDeletes: number;
}

/** Foreign temp files older than this are stale (Maildir convention). */
const FOREIGN_TMP_MAX_AGE_MS = 36 * 3600 * 1000;

/** Name of the per-account file holding a next-UID floor, written before local deletions. */
export const UID_FLOOR_FILE = 'next-uid';

interface DiskFile {
  folder: string;
  sub: 'new' | 'cur';
  name: string;
  full: string;
  parsed?: ParsedName;
}

/** A file with one of our names. */
type OurFile = DiskFile & { parsed: ParsedName };

const isOurs = (f: DiskFile): f is OurFile => f.parsed !== undefined;

/** Options of `recoverAccount`. */
export interface RecoveryOptions {
  dataDir: string;
  account: string;
  ledger: Ledger;
  log: Logger;
  clock: Clock;
  /** `stateDbStamp` taken before state.db was opened; without it there is no fast path. */
  dbStamp?: string;
}

/** Folders of a Maildir: INBOX plus every Maildir++ `.<name>` directory with `new/` or `cur/`. */
export async function listFolders(maildir: string): Promise<string[]> {
  const out = [INBOX];
  const seen = new Set(out);
  for (const e of await readdir(maildir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const folder = decodeFolder(e.name);
    if (!folder || seen.has(folder)) continue;
    const dir = path.join(maildir, e.name);
    if (!existsSync(path.join(dir, 'new')) && !existsSync(path.join(dir, 'cur'))) continue;
    seen.add(folder);
    out.push(folder);
  }
  return out;
}

/** Run recovery for one account (see the module comment). */
export async function recoverAccount(o: RecoveryOptions): Promise<RecoveryReport> {
  const { account, ledger, log, clock } = o;
  const maildir = maildirPath(o.dataDir, account);
  await ensureFolder(maildir, INBOX);
  const record = await takeCleanRecord(o.dataDir, account); // gone before any write: a crash means full recovery
  const settled = await settleIntent(o.dataDir, account, ledger, maildir); // an IMAP change cut short
  if (settled) log.info({ account, settled }, 'finished or undid a local IMAP change interrupted by a crash');
  const report: RecoveryReport = {
    account,
    folders: 0,
    files: 0,
    scannedDirs: 0,
    adopted: 0,
    rebuilt: 0,
    dropped: 0,
    removedTmp: 0,
    quarantined: 0,
    finishedDeletes: 0,
  };

  const folders = await listFolders(maildir);
  report.folders = folders.length;
  for (const folder of folders)
    report.removedTmp += await cleanTmp(path.join(folderDir(maildir, folder), 'tmp'), clock.now());
  if (record !== undefined && o.dbStamp !== undefined) {
    if (await stillClean(record, o.dbStamp, { dataDir: o.dataDir, account, ledger, folders })) {
      const floor = await readUidFloor(o.dataDir, account);
      if (floor) ledger.raiseNextUid(account, floor);
      return report;
    }
  }
  const files: DiskFile[] = [];
  for (const folder of folders) {
    const dir = folderDir(maildir, folder);
    for (const sub of ['new', 'cur'] as const) {
      let entries: Dirent[];
      try {
        entries = await readdir(path.join(dir, sub), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      report.scannedDirs++;
      for (const e of entries) {
        if (!e.isFile() || e.name.startsWith('.')) continue;
        const full = path.join(dir, sub, e.name);
        files.push({ folder, sub, name: e.name, full, parsed: parseName(e.name) });
      }
    }
  }
  report.files = files.length;

  const quarantine = async (f: DiskFile, why: string): Promise<void> => {
    const dest = await quarantineFile(o.dataDir, account, f.full);
    log.warn({ account, folder: f.folder, file: f.full, movedTo: dest }, `quarantined message file: ${why}`);
    report.quarantined++;
  };

  // Our files: verify S=, then dedupe by UID and by (folder, key), lowest UID first.
  const ours = files.filter(isOurs).sort((a, b) => a.parsed.uid - b.parsed.uid);
  const rowsByUid = new Map(ledger.accountMessages(account).map((r) => [r.uid, r]));
  const keep: OurFile[] = [];
  const uids = new Set<number>();
  const keys = new Set<string>();
  for (const f of ours) {
    const p = f.parsed;
    // A file the index already knows under the same UID, key and size was verified when it
    // was stored; only unknown files are checked against the disk (keeps start-up O(files)
    // readdir work, not one stat per message).
    const row = rowsByUid.get(p.uid);
    const known = row !== undefined && row.folder === f.folder && row.key === p.key && row.size === p.size;
    const size = known
      ? p.size
      : await stat(f.full).then(
          (st) => st.size,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return undefined; // another Maildir reader just moved or deleted it
            throw err;
          },
        );
    if (size === undefined) continue;
    if (size !== p.size) {
      await quarantine(f, `size ${size} disagrees with S=${p.size}`);
      continue;
    }
    if (uids.has(p.uid)) {
      await quarantine(f, `UID ${uidl(p.uid)} already used by another file`);
      continue;
    }
    const fk = `${f.folder}\0${p.key}`;
    if (keys.has(fk)) {
      await quarantine(f, `key ${p.key} already stored in ${f.folder}`);
      continue;
    }
    if (!rowsByUid.has(p.uid) && ledger.isTombstoned(account, f.folder, p.key)) {
      await rm(f.full, { force: true });
      report.finishedDeletes++;
      continue;
    }
    uids.add(p.uid);
    keys.add(fk);
    keep.push(f);
  }
  if (report.finishedDeletes) {
    for (const folder of folders)
      for (const sub of ['new', 'cur']) await fsyncIfExists(path.join(folderDir(maildir, folder), sub));
  }

  let next = Math.max(
    ledger.nextUid(account),
    (keep.at(-1)?.parsed.uid ?? 0) + 1,
    await readUidFloor(o.dataDir, account),
  );

  // Foreign files: adopt with a fresh UID and key x<sha256 prefix>, renamed in place.
  const touched = new Set<string>();
  for (const f of files.filter((x) => !x.parsed)) {
    let st: Stats;
    let d: Awaited<ReturnType<typeof digestFile>>;
    try {
      st = await stat(f.full);
      d = await digestFile(f.full);
    } catch (err) {
      log.warn({ account, file: f.full, err }, 'cannot read a foreign message file; left in place, not indexed');
      continue;
    }
    const uid = next++;
    let key = `x${d.sha256.slice(0, 16)}`;
    if (keys.has(`${f.folder}\0${key}`)) key = `${key}_${uidl(uid)}`;
    const { base } = splitInfo(f.name);
    const info = f.name.slice(base.length) || (f.sub === 'cur' ? ':2,' : '');
    const name =
      formatName({ storedSec: Math.floor(st.mtimeMs / 1000), uid, size: d.size, wsize: d.wsize, key }) + info;
    const full = path.join(path.dirname(f.full), name);
    await rename(f.full, full);
    touched.add(path.dirname(full));
    log.info({ account, folder: f.folder, from: f.name, to: name }, 'adopted a foreign message file');
    keys.add(`${f.folder}\0${key}`);
    const parsed = parseName(name);
    if (!parsed) throw new Error(`the name given to an adopted file does not parse: ${name}`);
    keep.push({ ...f, name, full, parsed: { ...parsed, uid } });
    report.adopted++;
  }
  for (const dir of touched) await fsyncDir(dir);

  // Reconcile the ledger with the disk in one transaction.
  const onDisk = new Map<number, MessageRow>();
  const served = new Set<string>();
  for (const f of keep.sort((a, b) => a.parsed.uid - b.parsed.uid)) {
    const p = f.parsed;
    const old = rowsByUid.get(p.uid);
    const u = p.uidl !== undefined && isServableUidl(p.uidl) && !served.has(p.uidl) ? p.uidl : null;
    if (u !== null) served.add(u);
    onDisk.set(p.uid, {
      account,
      uid: p.uid,
      folder: f.folder,
      file: `${f.sub}/${f.name}`,
      size: p.size,
      wsize: p.wsize,
      key: p.key,
      // state.db is the truth for flags (docs/imap-server.md), unless another reader renamed the file
      flags: old && replaceKey(old.file, p.key) === `${f.sub}/${f.name}` ? old.flags : p.flags,
      storedAt: old?.storedAt ?? p.storedSec * 1000,
      uidl: u,
    });
  }
  const rebuiltDirs = new Set<string>();
  for (const [uid, row] of onDisk) {
    const old = rowsByUid.get(uid);
    if (!old || !sameRow(old, row)) rebuiltDirs.add(path.join(folderDir(maildir, row.folder), path.dirname(row.file)));
  }
  for (const dir of rebuiltDirs) await fsyncDir(dir);
  const imap = new MailboxRows(ledger.db);
  const imapOf = new Map<number, ImapRow | undefined>();
  for (const [uid, row] of onDisk) {
    const old = rowsByUid.get(uid);
    if (old && !sameRow(old, row)) imapOf.set(uid, imap.message(account, uid));
  }
  ledger.transaction(() => {
    for (const [uid, row] of rowsByUid) {
      const disk = onDisk.get(uid);
      if (disk && sameRow(disk, row)) continue;
      ledger.deleteMessage(account, uid);
      if (!disk) report.dropped++;
    }
    for (const [uid, row] of onDisk) {
      const old = rowsByUid.get(uid);
      if (old && sameRow(old, row)) continue;
      ledger.insertMessage(row);
      const m = imapOf.get(uid); // a row rebuilt keeps its keywords, MODSEQ and INTERNALDATE
      if (m) imap.setImap(account, uid, m.keywords, m.modseq, m.internalDate);
      report.rebuilt++;
    }
    ledger.raiseNextUid(account, next);
  });
  return report;
}

function sameRow(a: MessageRow, b: MessageRow): boolean {
  return (
    a.folder === b.folder &&
    a.file === b.file &&
    a.size === b.size &&
    a.wsize === b.wsize &&
    a.key === b.key &&
    (a.uidl ?? null) === (b.uidl ?? null)
  );
}

/** Remove stale temp files; returns how many. */
async function cleanTmp(tmp: string, now: number): Promise<number> {
  let n = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(tmp, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    const full = path.join(tmp, e.name);
    if (!isOurTmpName(e.name) && now - (await stat(full)).mtimeMs < FOREIGN_TMP_MAX_AGE_MS) continue;
    await rm(full, { force: true });
    n++;
  }
  if (n) await fsyncDir(tmp);
  return n;
}

/** Move a file to the account's quarantine as `<name>.broken` (durably); returns the new path. */
async function quarantineFile(dataDir: string, account: string, full: string): Promise<string> {
  const q = quarantinePath(dataDir, account);
  await mkdirDurable(q);
  const name = path.basename(full);
  let dest = path.join(q, `${name}.broken`);
  for (let n = 1; existsSync(dest); n++) dest = path.join(q, `${name}.${n}.broken`);
  await renameDurable(full, dest);
  return dest;
}

async function fsyncIfExists(dir: string): Promise<void> {
  if (existsSync(dir)) await fsyncDir(dir);
}

/** The next-UID floor written before local deletions (0 when absent or unreadable). */
async function readUidFloor(dataDir: string, account: string): Promise<number> {
  try {
    const n = Number((await readFile(path.join(accountDir(dataDir, account), UID_FLOOR_FILE), 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}
