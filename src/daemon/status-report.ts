/**
 * The status report read from state.db (read-only, never taking the instance lock) and the
 * config: what `localpost status` shows when no daemon runs, and the base that the running
 * daemon overlays with live state (control-api.ts). The report's shape is in control/protocol.ts.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KeyChanges } from '../cache/key-changes.js';
import type { SyncRecord } from '../cache/message-store.js';
import { OutboxIndex } from '../cache/outbox/rows.js';
import { SyncHistory } from '../cache/sync-history.js';
import { accountOAuth2, type Config } from '../config/schema.js';
import { formatAddress, type OnlineState, type StatusReport } from '../control/protocol.js';
import { readAuthStatus } from '../upstream/oauth/token-store.js';
import { lockHolder } from './instance-lock.js';
import { journalOf } from './journal-report.js';

/** What the last pull says about reachability. */
function onlineFromPull(p: SyncRecord | undefined): OnlineState {
  if (!p) return 'unknown';
  if (p.result === 'offline') return 'offline';
  return p.result === 'error' ? 'unknown' : 'online'; // auth, throttled: the server answered
}

/** Read the status from state.db (read-only) and the config. */
export async function readStatus(cfg: Config): Promise<StatusReport> {
  const pid = await lockHolder(cfg.dataDir);
  const file = path.join(cfg.dataDir, 'state.db');
  const addr = (l: { hosts: string[]; port: number }) => l.hosts.map((h) => formatAddress(h, l.port));
  // the implicit-TLS port of a listener with its own certificate
  const tlsAddr = (l: { hosts: string[]; tls: string | { port: number } }) =>
    typeof l.tls === 'object' ? addr({ hosts: l.hosts, port: l.tls.port }) : [];
  const { imap } = cfg.listen;
  const report: StatusReport = {
    version: 1,
    source: 'state.db',
    dataDir: cfg.dataDir,
    daemon: pid ? { running: true, pid } : { running: false },
    accounts: cfg.accounts.map((a) => ({
      id: a.id,
      email: a.email,
      sends: Boolean(a.outgoing),
      messages: 0,
      bytes: 0,
      online: 'unknown',
      ...(a.outgoing ? { outgoing: 'unknown' as const } : {}),
    })),
    outbox: { accounts: [], entries: [] },
    listeners: {
      pop3: addr(cfg.listen.pop3),
      pop3Tls: tlsAddr(cfg.listen.pop3),
      imap: imap.enabled ? addr(imap) : [],
      imapTls: imap.enabled ? tlsAddr(imap) : [],
      smtp: addr(cfg.listen.smtp),
    },
  };
  for (const a of report.accounts) {
    const acc = cfg.accounts.find((c) => c.id === a.id);
    if (acc && accountOAuth2(acc)) a.auth = await readAuthStatus(cfg.dataDir, a.id);
  }
  if (!existsSync(file)) return report;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = (table: string) =>
      Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table));
    if (has('messages') && has('sync_history')) {
      const ledger = new SyncHistory(db);
      const backoffs = has('pull_backoff');
      for (const a of report.accounts) {
        const last = ledger.lastSync(a.id);
        const backoff = backoffs ? ledger.pullBackoff(a.id) : undefined;
        const lastPull = last && backoff && backoff.until > Date.now() ? { ...last, backoff } : last;
        Object.assign(a, ledger.stats(a.id), { online: onlineFromPull(lastPull) }, lastPull ? { lastPull } : {});
      }
    }
    if (KeyChanges.present(db)) {
      const changes = new KeyChanges(db);
      for (const a of report.accounts) {
        const keyChange = changes.latest(a.id);
        if (keyChange) a.keyChange = keyChange;
      }
    }
    const journal = journalOf(db)?.counts() ?? new Map<string, { pending: number; failed: number }>();
    for (const a of report.accounts) {
      const imapAccount = cfg.accounts.find((c) => c.id === a.id)?.incoming.protocol === 'imap';
      const counts = journal.get(a.id);
      if (counts || imapAccount) a.journal = counts ?? { pending: 0, failed: 0 };
    }
    if (has('outbox')) {
      const index = new OutboxIndex(db);
      report.outbox = { accounts: index.summary(), entries: index.list() };
    }
  } finally {
    db.close();
  }
  return report;
}
