/**
 * `localpost status [--json]` and `localpost outbox list` (INTERFACE "Commands"): what a user
 * cares about, read from state.db **read-only**, so it works the same whether a daemon runs or
 * not and never takes the instance lock: per account the last pull (result, new messages,
 * error), cached messages and bytes; the outbox (queued, next attempt, last error, failed);
 * the configured listeners; and whether a daemon holds the data directory.
 *
 * The online state of each upstream and live pull progress live in the daemon and will be
 * shown once the control socket exists (a later issue).
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Ledger } from '../cache/ledger.js';
import type { SyncRecord } from '../cache/message-store.js';
import { OutboxIndex, type OutboxRow, type OutboxSummary } from '../cache/outbox-index.js';
import type { Config } from './config/schema.js';
import { lockHolder } from './instance-lock.js';

/** Everything `status` reports. */
export interface StatusReport {
  dataDir: string;
  daemon: { running: boolean; pid?: number };
  accounts: Array<{ id: string; email: string; lastPull?: SyncRecord; messages: number; bytes: number; sends: boolean }>;
  outbox: { accounts: OutboxSummary[]; entries: OutboxRow[] };
  listeners: { pop3: string[]; smtp: string[] };
}

/** Read the status from state.db (read-only) and the config. */
export async function readStatus(cfg: Config): Promise<StatusReport> {
  const pid = await lockHolder(cfg.dataDir);
  const file = path.join(cfg.dataDir, 'state.db');
  const addr = (l: { hosts: string[]; port: number }) => l.hosts.map((h) => (h.includes(':') ? `[${h}]:${l.port}` : `${h}:${l.port}`));
  const report: StatusReport = {
    dataDir: cfg.dataDir,
    daemon: pid ? { running: true, pid } : { running: false },
    accounts: cfg.accounts.map((a) => ({ id: a.id, email: a.email, messages: 0, bytes: 0, sends: Boolean(a.outgoing) })),
    outbox: { accounts: [], entries: [] },
    listeners: { pop3: addr(cfg.listen.pop3), smtp: addr(cfg.listen.smtp) },
  };
  if (!existsSync(file)) return report;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = (table: string) => Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table));
    if (has('messages') && has('sync_history')) {
      const ledger = new Ledger(db);
      for (const a of report.accounts) Object.assign(a, ledger.stats(a.id), { lastPull: ledger.lastSync(a.id) });
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

/** "in 4m", "3h ago", for a time relative to now. */
export function relative(at: number, now = Date.now()): string {
  const d = Math.round((at - now) / 1000);
  const abs = Math.abs(d);
  const text = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.round(abs / 60)}m` : abs < 86_400 ? `${(abs / 3600).toFixed(1)}h` : `${(abs / 86_400).toFixed(1)}d`;
  if (abs < 1) return 'now';
  return d > 0 ? `in ${text}` : `${text} ago`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** One line per queued or failed outbox entry (`outbox list`). */
export function formatEntries(rows: OutboxRow[], now = Date.now()): string[] {
  if (!rows.length) return ['outbox is empty'];
  return rows.map((r) => {
    const when = r.state === 'queued'
      ? `next attempt ${r.nextAttempt === null ? 'now' : relative(r.nextAttempt, now)}`
      : 'FAILED (bounce in the local inbox)';
    const tries = r.tries ? `, ${r.tries} tr${r.tries === 1 ? 'y' : 'ies'}` : '';
    const err = r.lastError ? `, last error: ${r.lastError}` : '';
    return `${r.id}  ${r.account}  ${new Date(r.createdAt).toISOString()}  from <${r.mailFrom}> to ${r.pending}/${r.recipients} `
      + `recipient${r.recipients === 1 ? '' : 's'}, ${bytes(r.size)}  ${when}${tries}${err}`;
  });
}

/** The human form of a report. */
export function formatStatus(s: StatusReport, now = Date.now()): string {
  const lines = [
    `localpost: ${s.daemon.running ? `daemon running (pid ${s.daemon.pid})` : 'no daemon running'}; data in ${s.dataDir}`,
    'accounts:',
  ];
  for (const a of s.accounts) {
    const p = a.lastPull;
    const pull = p
      ? `last pull ${relative(p.finishedAt, now)}: ${p.result}${p.result === 'ok' ? `, ${p.newMessages} new` : p.error ? ` (${p.error})` : ''}`
      : 'never pulled';
    lines.push(`  ${a.id} <${a.email}>: ${a.messages} messages, ${bytes(a.bytes)} cached; ${pull}`);
  }
  lines.push('outbox:');
  const byAccount = new Map(s.outbox.accounts.map((o) => [o.account, o]));
  for (const a of s.accounts.filter((x) => x.sends || byAccount.has(x.id))) {
    const o = byAccount.get(a.id);
    if (!o || (!o.queued && !o.failed)) {
      lines.push(`  ${a.id}: nothing queued`);
      continue;
    }
    const next = o.queued ? `, next attempt ${o.nextAttempt === null ? 'now' : relative(o.nextAttempt, now)}` : '';
    lines.push(`  ${a.id}: ${o.queued} queued${next}${o.failed ? `, ${o.failed} failed` : ''}${o.lastError ? `; last error: ${o.lastError}` : ''}`);
  }
  lines.push(`listeners: pop3 ${s.listeners.pop3.join(' ')}; smtp ${s.listeners.smtp.join(' ')}`);
  return lines.join('\n');
}
