/**
 * `localpost status [--json]` and `localpost outbox list`: what a user
 * cares about, formatted. When a daemon runs, the CLI asks it through the control socket and
 * gets live state; otherwise it reads state.db itself (daemon/status-report.ts).
 */
import type { KeyChange, SyncRecord } from '../cache/message-store.js';
import type { OutboxRow } from '../cache/outbox/rows.js';
import { clockTime, type PullBackoff } from '../cache/pull-backoff.js';
import type { Config } from '../config/schema.js';
import { control } from '../control/client.js';
import type { AccountStatus, StatusReport } from '../control/protocol.js';
import { lockHolder } from '../daemon/instance-lock.js';
import { readStatus } from '../daemon/status-report.js';

/** The live status from the running daemon when one answers, else `readStatus`. */
export async function currentStatus(cfg: Config): Promise<StatusReport> {
  if (await lockHolder(cfg.dataDir)) {
    try {
      return await control.status(cfg.dataDir);
    } catch {
      // the daemon is starting, stopping or hung: fall back to what state.db says
    }
  }
  return readStatus(cfg);
}

/** "in 4m", "3h ago", for a time relative to now. */
export function relative(at: number, now = Date.now()): string {
  const d = Math.round((at - now) / 1000);
  const abs = Math.abs(d);
  const text =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.round(abs / 60)}m`
        : abs < 86_400
          ? `${(abs / 3600).toFixed(1)}h`
          : `${(abs / 86_400).toFixed(1)}d`;
  if (abs < 1) return 'now';
  return d > 0 ? `in ${text}` : `${text} ago`;
}

/** 512 B, 1.5 KB, 3.2 MB, 1.05 GB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** Rows padded into columns (the numeric columns `right` aligned right), two spaces apart. */
function alignColumns(rows: string[][], right: readonly number[] = []): string[] {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows.map((r) =>
    r
      .map((c, i) =>
        i === r.length - 1 && !right.includes(i)
          ? c
          : right.includes(i)
            ? c.padStart(widths[i] ?? 0) // every column was measured above
            : c.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd(),
  );
}

/** One line per queued or failed outbox entry (`outbox list`). */
export function formatEntries(rows: OutboxRow[], now = Date.now()): string[] {
  if (!rows.length) return ['outbox is empty'];
  return rows.map((r) => {
    const when =
      r.state === 'queued'
        ? `next attempt ${r.nextAttempt === null ? 'now' : relative(r.nextAttempt, now)}`
        : 'FAILED (bounce in the local inbox)';
    const tries = r.tries ? `, ${r.tries} tr${r.tries === 1 ? 'y' : 'ies'}` : '';
    const err = r.lastError ? `, last error: ${r.lastError}` : '';
    return (
      `${r.id}  ${r.account}  ${new Date(r.createdAt).toISOString()}  from <${r.mailFrom}> to ${r.pending}/${r.recipients} ` +
      `recipient${r.recipients === 1 ? '' : 's'}, ${formatBytes(r.size)}  ${when}${tries}${err}`
    );
  });
}

function lastPullText(p: SyncRecord | undefined, now: number): string {
  if (!p) return 'never';
  const what = p.result === 'ok' ? `ok, ${p.newMessages} new` : `${p.result}${p.error ? ` (${p.error})` : ''}`;
  return `${relative(p.finishedAt, now)}: ${what}`;
}

/**
 * `backing off until 14:05 (throttled); …`: why automatic pulls of an account wait (the error
 * itself is in the LAST PULL column).
 */
function backoffText(b: PullBackoff): string {
  const why = b.reason === 'throttled' ? 'throttled' : b.reason === 'auth' ? 'login refused' : 'pull failed';
  return `backing off until ${clockTime(b.until)} (${why}); ${b.failures} failed pull${b.failures === 1 ? '' : 's'} in a row, \`localpost sync\` tries at once`;
}

/** `provider renumbered its UIDLs on 2026-12-06: 2,981 matched, 19 new` (docs/pitfalls.md#pop3-uidl-renumbering). */
export function keyChangeText(c: KeyChange): string {
  const day = new Date(c.detectedAt).toISOString().slice(0, 10);
  const n = (x: number) => x.toLocaleString('en-US');
  const where = c.folder === 'INBOX' ? '' : ` in ${c.folder}`;
  const what = c.finishedAt === undefined ? 'matching by content, ' : '';
  return `provider renumbered its UIDLs${where} on ${day}: ${what}${n(c.matched)} matched, ${n(c.fresh)} new`;
}

/** `2 IMAP changes waiting to go upstream, 1 failed (localpost journal)`. */
function journalText(j: { pending: number; failed: number }): string {
  const waiting = `${j.pending} IMAP change${j.pending === 1 ? '' : 's'} waiting to go upstream`;
  return `${waiting}${j.failed ? `, ${j.failed} failed` : ''} (localpost journal)`;
}

/** The IDLE column of `status`. */
const IDLE_TEXT: Record<NonNullable<AccountStatus['idle']>, string> = {
  connected: 'watching',
  connecting: 'connecting',
  reconnecting: 'reconnecting',
  'waiting-for-sign-in': 'waits for sign-in',
  stopped: 'stopped',
};

/** The human form of a report. */
export function formatStatus(s: StatusReport, now = Date.now()): string {
  const daemon = s.daemon.running
    ? `daemon running (pid ${s.daemon.pid})${s.source === 'daemon' ? '' : ', control socket not answering: state from state.db'}`
    : 'no daemon running: state from state.db';
  const lines = [`localpost: ${daemon}`, `data: ${s.dataDir}`, '', 'accounts:'];
  // the IDLE column only when some account has IDLE (live status)
  const withIdle = s.accounts.some((a) => a.idle);
  const row = (cells: string[], idle: string) => (withIdle ? [...cells.slice(0, 4), idle, ...cells.slice(4)] : cells);
  // reachability of each server: receiving and sending fail apart (one host can be down)
  const rows = [row(['', 'ACCOUNT', 'INCOMING', 'OUTGOING', 'MESSAGES', 'CACHED', 'LAST PULL'], 'IDLE')];
  for (const a of s.accounts) {
    const outgoing = a.sends ? (a.outgoing ?? 'unknown') : '-';
    rows.push(
      row(
        ['', a.id, a.online, outgoing, String(a.messages), formatBytes(a.bytes), lastPullText(a.lastPull, now)],
        a.idle ? IDLE_TEXT[a.idle] : '-',
      ),
    );
    if (a.pull)
      rows.push(
        row(
          [
            '',
            '',
            'pulling',
            '',
            `${a.pull.done}/${a.pull.total}`,
            formatBytes(a.pull.bytes),
            `in progress (${a.pull.folder})`,
          ],
          '',
        ),
      );
  }
  lines.push(...alignColumns(rows, withIdle ? [5, 6] : [4, 5]));
  for (const a of s.accounts) {
    const b = a.lastPull?.backoff;
    if (b && b.until > now) lines.push(`  ${a.id}: ${backoffText(b)}`);
    if (a.upstreamLogins !== undefined)
      lines.push(
        `  ${a.id}: ${a.upstreamLogins} upstream login${a.upstreamLogins === 1 ? '' : 's'} since the daemon started`,
      );
    if (a.keyChange) lines.push(`  ${a.id}: ${keyChangeText(a.keyChange)}`);
    const missing = a.lastPull?.missingFolders;
    if (missing?.length)
      lines.push(
        `  ${a.id}: configured folder${missing.length === 1 ? '' : 's'} not found upstream, not pulled: ${missing.join(', ')} (incoming.folders)`,
      );
    if (a.journal && (a.journal.pending || a.journal.failed)) lines.push(`  ${a.id}: ${journalText(a.journal)}`);
    if (a.auth && a.auth.state !== 'signed-in') {
      lines.push(
        `  ${a.id}: localpost needs you to sign in${a.auth.state === 'sign-in-required' ? ' again' : ''}: run \`localpost auth ${a.id}\`${a.auth.reason ? ` (${a.auth.reason})` : ''}`,
      );
    }
  }
  lines.push('', 'outbox:');
  const byAccount = new Map(s.outbox.accounts.map((o) => [o.account, o]));
  const out = [['', 'ACCOUNT', 'QUEUED', 'FAILED', 'NEXT ATTEMPT', 'LAST ERROR']];
  for (const a of s.accounts.filter((x) => x.sends || byAccount.has(x.id))) {
    const o = byAccount.get(a.id);
    const next = o?.queued ? (o.nextAttempt === null ? 'now' : relative(o.nextAttempt, now)) : '-';
    out.push(['', a.id, String(o?.queued ?? 0), String(o?.failed ?? 0), next, o?.lastError ?? '']);
  }
  lines.push(
    ...(out.length > 1 ? alignColumns(out, [2, 3]) : ['  no account sends mail (no outgoing server configured)']),
  );
  const configured = s.source === 'daemon' ? '' : ' (configured)';
  lines.push('', `listeners${configured}:`);
  const l = [['', 'pop3', s.listeners.pop3.join(' ')]];
  if (s.listeners.pop3Tls.length) l.push(['', 'pop3s', s.listeners.pop3Tls.join(' ')]);
  // absent in a report from a daemon older than the IMAP listener
  if (s.listeners.imap?.length) l.push(['', 'imap', s.listeners.imap.join(' ')]);
  if (s.listeners.imapTls?.length) l.push(['', 'imaps', s.listeners.imapTls.join(' ')]);
  l.push(['', 'smtp', s.listeners.smtp.join(' ')]);
  lines.push(...alignColumns(l));
  return lines.join('\n');
}
