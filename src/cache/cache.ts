/**
 * The durable cache as the daemon sees it: one state.db plus one Maildir per account
 * (layout in docs/architecture.md). `Cache.open()` creates the directories, opens state.db (a
 * corrupt one is moved aside, see `state-db.ts`) and runs start-up recovery for every account
 * BEFORE any store is handed out (invariant 8), so readers and writers only ever see an index
 * that agrees with the Maildir.
 *
 * `shutdown()` leaves a clean-shutdown record for each account with no write in flight, so the
 * next open can skip reading every message name (`clean-shutdown.ts`); `close()` leaves none.
 *
 * Each account's UIDL mode is fixed before its first recovery (`uidl-mode.ts`); a config asking
 * for another mode than the recorded one is logged as a warning and the recorded one kept.
 *
 * Cursors, sync history, pull backoff and tombstones are plain ledger calls; `setCursor` is synchronous so a
 * fetcher can run it inside `AccountStore.commit(inTransaction)` and have the cursor advance in
 * the same transaction as the message rows.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../shared/clock.js';
import { mkdirDurable } from '../shared/durable-fs.js';
import { ChangeJournalImpl, pendingFlagTouches } from './change-journal.js';
import { type AccountPart, accountPart, stateDbStamp, writeCleanRecord } from './clean-shutdown.js';
import { Ledger } from './ledger.js';
import { MailboxAccountStore, type MailboxOptions } from './mailbox-account.js';
import { MailboxRows } from './mailbox-rows.js';
import { MailboxStoreImpl } from './mailbox-store.js';
import type { ChangeJournal, UpstreamMirror } from './mailboxes.js';
import { maildirPath, normalizeFolder } from './maildir.js';
import type { ImapCursor, SyncRecord } from './message-store.js';
import type { PullBackoff } from './pull-backoff.js';
import { listFolders, type RecoveryReport, recoverAccount } from './recovery.js';
import { openStateDb, type StateDb } from './state-db.js';
import { SyncHistory } from './sync-history.js';
import { fixUidlMode, type UidlMode, uidlModeWarning } from './uidl-mode.js';
import { UpstreamMirrorImpl } from './upstream-mirror.js';

/** An account to open: its id, or its id and the UIDL mode its config asks for (default `local`). */
export type CacheAccount = string | { id: string; uidls: UidlMode };

/** Options of `Cache.open`. */
export interface CacheOptions {
  dataDir: string;
  accounts: readonly CacheAccount[];
  log: Logger;
  clock?: Clock;
}

/** The cache facade: per-account stores, cursors, sync history, tombstones. */
export class Cache {
  private closed = false;
  /** The UIDL mode each account's config asked for last. */
  private readonly askedUidls = new Map<string, UidlMode>();
  private readonly views = new Map<string, MailboxStoreImpl>();
  private readonly rows: MailboxRows;
  private changeJournal?: ChangeJournalImpl;

  private constructor(
    private readonly ledger: Ledger,
    private readonly history: SyncHistory,
    private readonly stores: Map<string, MailboxAccountStore>,
    /** What start-up recovery did, per account (addition: for logs and tests). */
    readonly recovery: Map<string, RecoveryReport>,
    private readonly ctx: { dataDir: string; log: Logger; clock: Clock },
  ) {
    this.rows = new MailboxRows(ledger.db);
  }

  /**
   * Open the stores of accounts not open yet (start-up, or a config reload that added
   * accounts), running start-up recovery for each first. Called with every configured account,
   * it also warns when the config asks for another UIDL mode than an account keeps.
   */
  async addAccounts(accounts: readonly CacheAccount[], dbStamp?: string): Promise<void> {
    const { dataDir, log, clock } = this.ctx;
    for (const a of accounts) {
      const { id: accountId, uidls: wanted } = typeof a === 'string' ? { id: a, uidls: 'local' as const } : a;
      // warn once per change of the config, not at every reload
      const asked = this.askedUidls.get(accountId);
      this.askedUidls.set(accountId, wanted);
      const warn = (kept: UidlMode) => {
        if (kept !== wanted && asked !== wanted)
          log.warn({ account: accountId, configured: wanted, kept }, uidlModeWarning(wanted, kept));
      };
      const open = this.stores.get(accountId);
      if (open) {
        warn(open.uidlMode);
        continue;
      }
      const uidlMode = await fixUidlMode({ dataDir, account: accountId, ledger: this.ledger, wanted });
      warn(uidlMode);
      const report = await recoverAccount({
        dataDir,
        account: accountId,
        ledger: this.ledger,
        log,
        clock,
        ...(dbStamp === undefined ? {} : { dbStamp }),
      });
      this.recovery.set(accountId, report);
      const { account, folders, files, scannedDirs, ...did } = report;
      if (Object.values(did).some((n) => n > 0))
        log.info({ account, folders, files, ...did }, 'recovered account cache');
      const maildir = maildirPath(dataDir, accountId);
      this.stores.set(
        accountId,
        new MailboxAccountStore({ accountId, dataDir, maildir, ledger: this.ledger, log, clock, uidlMode }, this.rows),
      );
    }
  }

  /** Create directories, open state.db, run recovery for each account. */
  static async open(opts: CacheOptions): Promise<Cache> {
    const clock = opts.clock ?? systemClock;
    const log = opts.log.child({ component: 'cache' });
    await mkdirDurable(path.join(opts.dataDir, 'accounts'));
    const file = path.join(opts.dataDir, 'state.db');
    const dbStamp = await stateDbStamp(file); // as the last clean shutdown left it, or not
    const db = await openStateDb({ file, log, clock });
    try {
      const cache = new Cache(new Ledger(db), new SyncHistory(db), new Map(), new Map(), {
        dataDir: opts.dataDir,
        log,
        clock,
      });
      await cache.addAccounts(opts.accounts, dbStamp);
      return cache;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The data directory this cache lives in. */
  get dataDir(): string {
    return this.ctx.dataDir;
  }

  /** The open state.db, for other indexes kept in it (the outbox's). Closed by `close()`. */
  get stateDb(): StateDb {
    return this.ledger.db;
  }

  /** The store of one configured account (an `AccountStore` plus `remove()` and `tombstone()`). */
  account(id: string): MailboxAccountStore {
    const s = this.stores.get(id);
    if (!s) throw new Error(`unknown account ${JSON.stringify(id)}`);
    return s;
  }

  /**
   * The local IMAP view of an account (docs/imap-server.md). `opts` (the account's protocol and
   * onLocalDelete) must be given at the first call and may change at a config reload.
   */
  mailboxes(id: string, opts?: MailboxOptions): MailboxStoreImpl {
    const store = this.account(id);
    if (opts) store.options = opts;
    if (!store.options) throw new Error(`mailboxes(${JSON.stringify(id)}) needs the account's protocol first`);
    let view = this.views.get(id);
    if (!view) {
      view = new MailboxStoreImpl(store);
      this.views.set(id, view);
    }
    return view;
  }

  /** What a pull of an IMAP account tells the local view (after `mailboxes(id, opts)`). */
  mirror(id: string): UpstreamMirror {
    return new UpstreamMirrorImpl(
      this.account(id),
      this.mailboxes(id),
      (a) => pendingFlagTouches(this.ledger.db, a),
      (a) => this.journal.list(a),
    );
  }

  /** The change journal of every account (written by the local IMAP view, drained by the replay). */
  get journal(): ChangeJournal {
    this.changeJournal ??= new ChangeJournalImpl(this.ledger.db, (a) => this.stores.get(a), this.ctx.clock);
    return this.changeJournal;
  }

  /** IMAP cursor of (account, folder). */
  getCursor(account: string, folder: string): ImapCursor | undefined {
    return this.ledger.cursor(account, normalizeFolder(folder));
  }

  /** Store an IMAP cursor; synchronous, so it can run inside `commit(inTransaction)`. */
  setCursor(account: string, folder: string, c: ImapCursor): void {
    this.ledger.setCursor(account, normalizeFolder(folder), c);
  }

  /** Append a sync record (the last 100 per account are kept). */
  recordSync(r: SyncRecord): void {
    this.history.recordSync(r);
  }

  /** The latest sync record of an account. */
  lastSync(account: string): SyncRecord | undefined {
    return this.history.lastSync(account);
  }

  /** An account's stored pull backoff (survives restarts). */
  pullBackoff(account: string): PullBackoff | undefined {
    return this.history.pullBackoff(account);
  }

  /** Store an account's pull backoff; undefined removes it. */
  setPullBackoff(account: string, b: PullBackoff | undefined): void {
    this.history.setPullBackoff(account, b);
  }

  /** Count and total bytes of an account's cached messages. */
  stats(account: string): { messages: number; bytes: number } {
    return this.history.stats(account);
  }

  /** Remember that `key` was deleted locally so it is never fetched again; touches no file. */
  tombstone(account: string, folder: string, key: string): void {
    this.account(account).tombstone(folder, key);
  }

  /**
   * Close after a clean stop (every writer stopped): record each quiescent account as clean
   * (`clean-shutdown.ts`), then close state.db. An account with a write in flight gets no record,
   * so the next open recovers it in full.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    const { dataDir, log } = this.ctx;
    const warn = (account: string, err: unknown) =>
      log.warn({ account, err }, 'cannot record a clean shutdown; the next start recovers the account in full');
    const parts: AccountPart[] = [];
    for (const [account, store] of this.stores) {
      if (!store.quiescent) continue;
      try {
        const folders = await listFolders(maildirPath(dataDir, account));
        if (store.quiescent) parts.push(await accountPart(dataDir, account, this.ledger, folders));
      } catch (err) {
        warn(account, err);
      }
    }
    this.close();
    if (!parts.length) return;
    const db = await stateDbStamp(path.join(dataDir, 'state.db'));
    for (const part of parts)
      await writeCleanRecord(dataDir, part, db).catch((err: unknown) => warn(part.account, err));
  }

  /** Close state.db. Messages finished but not committed stay in `new/` and are indexed at next open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ledger.db.close();
  }
}
