/**
 * The changes of the local IMAP view that create message files: COPY, MOVE and APPEND
 * (docs/imap-server.md). Each new message gets a new local UID and the local key `l<UID hex>`
 * (until the journal replay learns its upstream key) under a name of the usual scheme in the
 * target's `new/`.
 *
 * Order (`mailbox-intent.ts`): intent recorded → new files durable (COPY/MOVE: a hard link of
 * the immutable source file, or a fsynced copy where links fail; APPEND: the client's bytes
 * written to `tmp/`, fsynced, renamed into `new/`) and `new/` fsynced → ONE transaction (new
 * rows with flags, keywords, MODSEQ and INTERNALDATE, the next UID, for MOVE the source rows
 * deleted and their upstream keys tombstoned, the journal entry) → for MOVE the source files
 * unlinked → intent cleared. A crash before the transaction removes the new files at start-up;
 * after it, the unlinks are finished.
 */
import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, fsyncFd } from '../shared/durable-fs.js';
import { CrlfSizer } from '../shared/pop3-wire/dot-stuffing.js';
import { HeaderEndFinder } from '../shared/pop3-wire/header-end.js';
import { identitiesOf } from './known-messages.js';
import type { MessageRow } from './ledger.js';
import { type MailboxAccountStore, type MailboxView, mailboxMessage } from './mailbox-account.js';
import { storedFlags } from './mailbox-flags.js';
import { clearIntent, linkOrCopy, removePaths, writeIntent } from './mailbox-intent.js';
import type { ImapRow } from './mailbox-rows.js';
import { NoSuchFolderError, type UidPair } from './mailboxes.js';
import { folderDir, formatName, isLocalKey, localKey, locateFile, normalizeFolder, tmpName } from './maildir.js';

/** One message to copy: its source row and file, and its new UID, key and name. */
interface Planned {
  r: ImapRow;
  full: MessageRow;
  /** The source file, relative to its folder. */
  file: string;
  src: string;
  srcRel: string;
  uid: number;
  key: string;
  name: string;
}

/** COPY, MOVE and APPEND of one account. */
export class MailboxWrites {
  constructor(
    private readonly s: MailboxAccountStore,
    private readonly view: MailboxView,
  ) {}

  private rel(folder: string, file: string): string {
    const { maildir } = this.s.deps;
    return path.join(path.relative(maildir, folderDir(maildir, folder)), file);
  }

  /** COPY (`move` false) or MOVE. */
  copy(from: string, uids: readonly number[], to: string, move: boolean): Promise<UidPair[]> {
    const f = normalizeFolder(from);
    const t = normalizeFolder(to);
    return this.s.exclusive(async () => {
      this.view.existing(f);
      this.view.existing(t);
      const rows = this.view.rowsIn(f, uids);
      if (!rows.length) return [];
      const { ledger, maildir, dataDir, clock } = this.s.deps;
      const tdir = await this.s.folderDirReady(t);
      const now = clock.now();
      const plan: Planned[] = [];
      for (const r of rows) {
        const full = ledger.message(this.s.accountId, r.uid);
        const file = full && (await locateFile(maildir, full));
        if (!full || !file) continue; // vanished meanwhile: nothing to copy
        const uid = this.s.allocUid();
        const key = localKey(uid);
        const name = formatName({ storedSec: Math.floor(now / 1000), uid, size: full.size, wsize: full.wsize, key });
        plan.push({
          r,
          full,
          file,
          src: path.join(folderDir(maildir, f), file),
          srcRel: this.rel(f, file),
          uid,
          key,
          name,
        });
      }
      if (!plan.length) return [];
      await writeIntent(dataDir, this.s.accountId, {
        check: { rows: [plan[0]?.uid as number] },
        created: plan.map((p) => this.rel(t, `new/${p.name}`)),
        ...(move ? { obsolete: plan.map((p) => p.srcRel) } : {}),
      });
      for (const p of plan) await linkOrCopy(p.src, path.join(tdir, 'new', p.name));
      await fsyncDir(path.join(tdir, 'new'));
      const pairs = plan.map((p) => ({ from: p.r.uid, to: p.uid }));
      const out = move ? plan.filter((p) => !isLocalKey(p.r.key)) : [];
      const tombed = out.map((p) => p.r.key);
      // with its identity, a tombstone follows a UIDVALIDITY re-key (known-messages.ts, journal-keys.ts)
      const idents = this.view.journaled
        ? await identitiesOf(
            maildir,
            out.map((p) => ({ ...p.full, file: p.file })),
          )
        : [];
      let modseq = 0;
      ledger.transaction(() => {
        modseq = this.s.rows.nextModseq(this.s.accountId);
        for (const p of plan) {
          ledger.insertMessage({
            ...p.full,
            uid: p.uid,
            folder: t,
            file: `new/${p.name}`,
            key: p.key,
            storedAt: now,
            uidl: null,
          });
          this.s.rows.setImap(this.s.accountId, p.uid, p.r.keywords, modseq, p.r.internalDate);
          if (move) ledger.deleteMessage(this.s.accountId, p.r.uid);
        }
        for (const [i, k] of tombed.entries()) ledger.addTombstone(this.s.accountId, f, k, now, idents[i]);
        ledger.raiseNextUid(this.s.accountId, this.s.uidFloor);
        this.s.rows.raiseFolder(this.s.accountId, t, (plan.at(-1)?.uid ?? 0) + 1, modseq);
        if (move) this.s.rows.raiseFolder(this.s.accountId, f, 0, modseq);
        const keys = plan.map((p) => p.r.key);
        this.view.journal({ kind: move ? 'move' : 'copy', folder: f, to: t, pairs, keys });
      });
      this.s.noteKeys(t, { added: plan.map((p) => p.key) });
      if (move) {
        this.s.noteKeys(f, { removed: plan.map((p) => p.r.key), tombed });
        await removePaths(
          maildir,
          plan.map((p) => p.srcRel),
        );
      }
      await clearIntent(dataDir, this.s.accountId);
      const added = plan.map((p) =>
        mailboxMessage({ ...p.r, uid: p.uid, folder: t, key: p.key, modseq } satisfies ImapRow),
      );
      if (move) this.s.emit({ kind: 'expunged', folder: f, uids: plan.map((p) => p.r.uid) });
      this.s.emit({ kind: 'added', folder: t, messages: added });
      return pairs;
    });
  }

  append(
    folder: string,
    bytes: Buffer,
    opts: { flags?: readonly string[]; internalDate?: number },
  ): Promise<{ uid: number; uidValidity: number }> {
    if (folder === '' || folder.includes('\0')) return Promise.reject(new NoSuchFolderError(folder)); // normalizeFolder throws
    const f = normalizeFolder(folder);
    return this.s.exclusive(async () => {
      const info = this.view.existing(f);
      const { ledger, dataDir, clock } = this.s.deps;
      const dir = await this.s.folderDirReady(f);
      const uid = this.s.allocUid();
      const key = localKey(uid);
      const now = clock.now();
      const sizer = new CrlfSizer();
      sizer.update(bytes);
      const eoh = new HeaderEndFinder();
      eoh.update(bytes);
      const name = formatName({ storedSec: Math.floor(now / 1000), uid, size: bytes.length, wsize: sizer.size, key });
      const tmp = path.join(dir, 'tmp', tmpName(uid));
      const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
      try {
        await fh.writeFile(bytes);
        await fsyncFd(fh.fd);
      } finally {
        await fh.close();
      }
      await writeIntent(dataDir, this.s.accountId, { check: { rows: [uid] }, created: [this.rel(f, `new/${name}`)] });
      await rename(tmp, path.join(dir, 'new', name));
      await fsyncDir(path.join(dir, 'new'));
      const flags = storedFlags(opts.flags ?? []);
      const internalDate = opts.internalDate ?? now;
      let modseq = 0;
      ledger.transaction(() => {
        modseq = this.s.rows.nextModseq(this.s.accountId);
        ledger.insertMessage({
          account: this.s.accountId,
          uid,
          folder: f,
          file: `new/${name}`,
          size: bytes.length,
          wsize: sizer.size,
          key,
          flags: flags.letters,
          storedAt: now,
          eoh: eoh.found ? 1 : 0,
        });
        this.s.rows.setImap(this.s.accountId, uid, flags.keywords, modseq, internalDate);
        ledger.raiseNextUid(this.s.accountId, this.s.uidFloor);
        this.s.rows.raiseFolder(this.s.accountId, f, uid + 1, modseq);
        this.view.journal({ kind: 'append', folder: f, uid });
      });
      this.s.noteKeys(f, { added: [key] });
      await clearIntent(dataDir, this.s.accountId);
      const msg = mailboxMessage({
        uid,
        folder: f,
        file: `new/${name}`,
        key,
        wsize: sizer.size,
        flags: flags.letters,
        keywords: flags.keywords,
        modseq,
        internalDate,
      });
      this.s.emit({ kind: 'added', folder: f, messages: [msg] });
      return { uid, uidValidity: info.uidValidity };
    });
  }
}
