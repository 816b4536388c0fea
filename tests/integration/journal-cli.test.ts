/**
 * `localpost journal [list|retry ID|drop ID]` and the journal in `status`, against a real
 * state.db holding entries (written as the IMAP store writes them: rows of migration 9's
 * `journal` table): in-process without a daemon (list read-only, retry/drop under the lock), and
 * through the control socket of a running daemon.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import type { JournalChange } from '../../src/cache/mailboxes.js';
import { openStateDb } from '../../src/cache/state-db.js';
import { journalCommand } from '../../src/cli/journal.js';
import { formatStatus } from '../../src/cli/status.js';
import { parseConfigText } from '../../src/config/load.js';
import { readStatus } from '../../src/daemon/status-report.js';
import { makeConfig, runCli, spawnDaemon, statusJson, type TempConfig, waitFor } from '../support/localpost.js';
import { freePort } from '../support/smtp.js';

const log = pino({ level: 'silent' });
const configs: TempConfig[] = [];
after(() => {
  for (const c of configs) c.cleanup();
});

/** A config with one IMAP account (upstream unreachable) and a state.db holding `rows`. */
async function withJournal(rows: Array<{ change: JournalChange; state: string; error?: string }>) {
  const t = makeConfig([{ protocol: 'imap', port: await freePort() }]);
  configs.push(t);
  const { readFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(t.dataDir, { recursive: true, mode: 0o700 });
  const db = await openStateDb({ file: path.join(t.dataDir, 'state.db'), log });
  const add = db.prepare(
    'INSERT INTO journal (account, change, state, created_at, tries, last_error) VALUES (?, ?, ?, ?, ?, ?)',
  );
  for (const r of rows)
    add.run('alice', JSON.stringify(r.change), r.state, Date.UTC(2026, 11, 7), r.error ? 3 : 0, r.error ?? null);
  db.close();
  return { t, cfg: parseConfigText(readFileSync(t.configFile, 'utf8'), t.configFile) };
}

/** The states of the rows, by id. */
function states(dataDir: string): Record<number, string> {
  const db = new Database(path.join(dataDir, 'state.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT id, state FROM journal ORDER BY id').all() as Array<{ id: number; state: string }>;
    return Object.fromEntries(rows.map((r) => [r.id, r.state]));
  } finally {
    db.close();
  }
}

const ROWS = [
  { change: { kind: 'flags', folder: 'INBOX', uids: [3, 4], op: 'add', flags: ['\\Seen'] }, state: 'queued' },
  { change: { kind: 'append', folder: 'Sent', uid: 9 }, state: 'failed', error: 'NO [OVERQUOTA] quota exceeded' },
  { change: { kind: 'create', folder: 'Old' }, state: 'done' },
  { change: { kind: 'move', folder: 'INBOX', to: 'Archive', pairs: [{ from: 5, to: 10 }] }, state: 'queued' },
] as const;

function sink() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

describe('localpost journal', () => {
  test('in-process: list, retry, drop and status against state.db', async () => {
    const { t, cfg } = await withJournal(ROWS.map((r) => ({ ...r, change: r.change as JournalChange })));
    const logger = async () => log;
    let s = sink();
    assert.equal(await journalCommand(cfg, logger, 'list', undefined, s.io), 0);
    assert.equal(s.out.length, 3, s.out.join('\n')); // the done entry is not listed
    assert.match(
      s.out[0]!,
      /^1 {2}alice {2}2026-12-07T00:00:00.000Z {2}flags \+\(\\Seen\) INBOX, 2 messages {2}next attempt at the next pull$/,
    );
    assert.match(
      s.out[1]!,
      /^2 .*append to Sent \(local UID 9\) {2}FAILED \(localpost journal retry 2, or drop 2\), 3 tries, last error: NO \[OVERQUOTA\]/,
    );
    assert.match(s.out[2]!, /^4 .*move INBOX -> Archive, 1 message /);

    const report = await readStatus(cfg);
    assert.deepEqual(report.accounts[0]?.journal, { pending: 2, failed: 1 });
    assert.match(formatStatus(report), /alice: 2 IMAP changes waiting to go upstream, 1 failed \(localpost journal\)/);

    s = sink();
    assert.equal(await journalCommand(cfg, logger, 'retry', '1', s.io), 1); // queued, not failed
    assert.match(s.err.join('\n'), /no failed journal entry 1/);
    s = sink();
    assert.equal(await journalCommand(cfg, logger, 'retry', '2', s.io), 0);
    assert.match(s.out.join('\n'), /2 queued: it is carried upstream at the next pull/);
    s = sink();
    assert.equal(await journalCommand(cfg, logger, 'drop', '4', s.io), 0);
    assert.match(s.out.join('\n'), /4 dropped: the change stays local/);
    s = sink();
    assert.equal(await journalCommand(cfg, logger, 'drop', '3', s.io), 1); // done already
    s = sink();
    assert.equal(await journalCommand(cfg, logger, 'drop', 'x', s.io), 1);
    assert.match(s.err.join('\n'), /needs the number of an entry/);
    assert.deepEqual(states(t.dataDir), { 1: 'queued', 2: 'queued', 3: 'done', 4: 'dropped' });
    assert.deepEqual((await readStatus(cfg)).accounts[0]?.journal, { pending: 2, failed: 0 });
  });

  test('through a running daemon: list, retry, drop, status --json', async () => {
    const inflight = { change: { kind: 'expunge', folder: 'INBOX', uids: [6] } as JournalChange, state: 'inflight' };
    const { t } = await withJournal([...ROWS.map((r) => ({ ...r, change: r.change as JournalChange })), inflight]);
    const d = spawnDaemon(t.configFile);
    try {
      await waitFor(async () => (await statusJson(t.configFile)).source === 'daemon', 60_000, 'the daemon answers');
      const cli = (...args: string[]) => runCli(['--config', t.configFile, 'journal', ...args]);
      const list = await cli('list');
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^2 .*FAILED/m);
      const status = await statusJson(t.configFile);
      assert.equal(status.accounts[0]?.journal?.failed, 1);
      const retry = await cli('retry', '2');
      assert.equal(retry.code, 0, retry.stderr);
      assert.match(retry.stdout, /2 queued: the daemon \(pid \d+\) carries it upstream now/);
      const again = await cli('retry', '2');
      assert.equal(again.code, 1);
      assert.match(again.stderr, /no failed journal entry 2/);
      const drop = await cli('drop', '4');
      assert.equal(drop.code, 0, drop.stderr);
      assert.equal(states(t.dataDir)[4], 'dropped');
      assert.notEqual(states(t.dataDir)[2], 'failed');
      assert.doesNotMatch((await cli('list')).stdout, /^4 /m);
      // the upstream is unreachable, so entry 5 stays in flight: the daemon refuses to drop it
      const busy = await cli('drop', '5');
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /journal entry 5 is being applied upstream now/);
      assert.equal(states(t.dataDir)[5], 'inflight');
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  });
});
