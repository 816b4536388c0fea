/**
 * Crash torture of the journal replay (scenario `journal` of tests/reliability/torture.ts): a
 * child drains a journal of appends, a copy, a move, flags and an expunge upstream to Dovecot
 * (tests/support/journal-replay-child.ts) and is killed with -9 — by itself right after a chosen
 * step (markInflight durable, the upstream command done, complete durable) or by the parent
 * after a random delay — then started again until a drain finishes. Checked with imaplib after
 * each round: every change is upstream exactly once (messages counted per Message-ID), nothing is
 * lost, every entry is done and every local message has the upstream key of its copy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JournalEntry } from '../../src/cache/mailboxes.js';
import { FakeJournalStore } from '../support/journal-fake.js';
import { imaplibState } from '../support/python.js';
import type { Testbed } from '../support/testbed.js';
import type { TortureFigures, TortureOptions } from './torture.js';

const CHILD = path.resolve(import.meta.dirname, '../support/journal-replay-child.ts');
const USER = 'alice';
const STEPS = ['mark', 'applied', 'complete'] as const;
/** Restarts of one round before it counts as stuck. */
const MAX_RUNS = 12;

/** One run of the child: how it ended and the steps it printed. */
function runChild(
  file: string,
  port: number,
  kill: { step: string; n: number } | { afterMs: number } | undefined,
): Promise<{ killed: boolean; done: boolean; out: string }> {
  const args = ['--import', 'tsx', CHILD, file, String(port), USER];
  if (kill && 'step' in kill) args.push(kill.step, String(kill.n));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  let timer: NodeJS.Timeout | undefined;
  if (kill && 'afterMs' in kill)
    proc.stdout.once('data', () => {
      timer = setTimeout(() => proc.kill('SIGKILL'), kill.afterMs);
    });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const done = /^done /m.test(out);
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`replay child failed (${code}): ${err.slice(-2000)}`));
      else resolve({ killed: signal === 'SIGKILL', done, out });
    });
  });
}

function message(mid: string, body: string): Buffer {
  return Buffer.from(`From: t@example.test\r\nSubject: ${mid}\r\nMessage-ID: <${mid}>\r\n\r\n${body}\r\n`);
}

/** kill -9 of the journal replay at its steps and at random moments; `o.rounds` rounds. */
export async function tortureJournal(tb: Testbed, o: TortureOptions): Promise<TortureFigures> {
  const f: TortureFigures = {
    scenario: 'journal',
    rounds: 0,
    kills: 0,
    messages: 0,
    bytes: 0,
    violations: [],
    notes: { entries: 0, duplicates: 0, recovered: 0 },
    seconds: 0,
  };
  const t0 = Date.now();
  const rnd = o.random ?? Math.random;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-torture-journal-'));
  const notes = f.notes as Record<string, number>;
  try {
    for (let round = 1; round <= o.rounds; round++) {
      f.rounds++;
      const tag = `r${round}.${Date.now().toString(36)}`;
      const sources = ['s1', 's2', 's3'].map((s) => `${s}.${tag}@t`);
      for (const mid of sources) await tb.appendMessage(USER, message(mid, 'upstream'));
      const before = await imaplibState(tb.imapPort, USER, `${USER}pw`);
      const inbox = before.INBOX;
      if (!inbox) throw new Error('no INBOX upstream');
      const fake = new FakeJournalStore(path.join(dir, `state-${round}.json`));
      const [s1, s2, s3] = sources.map((mid) => {
        const m = inbox.messages.find((x) => x.mid === mid);
        if (!m) throw new Error(`${mid} not upstream`);
        return fake.addRow('INBOX', undefined, { key: `i${inbox.uidValidity}_${m.uid}` });
      });
      if (!s1 || !s2 || !s3) throw new Error('sources');
      fake.add({ kind: 'create', folder: 'Archive' });
      const appended = [1, 2, 3].map((i) => {
        const body = 'x'.repeat(200 + Math.floor(rnd() * 4000));
        f.bytes += body.length;
        const row = fake.addRow('INBOX', message(`a${i}.${tag}@t`, body), { flags: ['\\Seen'] });
        fake.add({ kind: 'append', folder: 'INBOX', uid: row.uid });
        return row;
      });
      const c1 = fake.addRow('Archive', undefined);
      fake.add({ kind: 'copy', folder: 'INBOX', to: 'Archive', pairs: [{ from: s1.uid, to: c1.uid }], keys: [s1.key] });
      const c2 = fake.addRow('Archive', undefined);
      fake.removeRows('INBOX', [s2.uid]);
      fake.add({ kind: 'move', folder: 'INBOX', to: 'Archive', pairs: [{ from: s2.uid, to: c2.uid }], keys: [s2.key] });
      fake.add({ kind: 'flags', folder: 'INBOX', uids: [s3.uid], op: 'add', flags: ['\\Flagged'] });
      fake.removeRows('INBOX', [s3.uid]);
      fake.add({ kind: 'expunge', folder: 'INBOX', uids: [s3.uid], keys: [s3.key] });
      const entries = fake.state.entries.length;
      notes.entries = (notes.entries ?? 0) + entries;
      f.messages += appended.length + 2;

      let finished = false;
      for (let run = 1; run <= MAX_RUNS && !finished; run++) {
        // the last run is never killed; otherwise a kill at a step, or after a random delay
        const kill =
          run === MAX_RUNS
            ? undefined
            : rnd() < 0.7
              ? { step: STEPS[Math.floor(rnd() * STEPS.length)] as string, n: 1 + Math.floor(rnd() * entries) }
              : { afterMs: Math.floor(rnd() * 60) };
        const r = await runChild(fake.file, tb.imapPort, kill);
        if (r.killed) f.kills++;
        finished = r.done;
        o.log?.(`round ${round} run ${run}: ${JSON.stringify(kill)} -> ${r.killed ? 'killed' : r.done ? 'done' : '?'}`);
      }
      const after = new FakeJournalStore(fake.file);
      const state = after.state;
      const faults: string[] = [];
      if (!finished) faults.push(`no drain finished in ${MAX_RUNS} runs`);
      const notDone = state.entries.filter((e: JournalEntry) => e.state !== 'done');
      for (const e of notDone) faults.push(`entry ${e.id} (${e.change.kind}) ${e.state}: ${e.lastError ?? ''}`);
      notes.recovered = (notes.recovered ?? 0) + state.entries.filter((e: JournalEntry) => e.tries > 1).length;

      const up = await imaplibState(tb.imapPort, USER, `${USER}pw`);
      const count = (folder: string, mid: string) => (up[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
      const expect = (folder: string, mid: string, n: number) => {
        const got = count(folder, mid);
        if (got > n) notes.duplicates = (notes.duplicates ?? 0) + got - n;
        if (got !== n) faults.push(`${folder} has ${got} x <${mid}>, expected ${n}`);
      };
      for (const i of [1, 2, 3]) expect('INBOX', `a${i}.${tag}@t`, 1);
      expect('INBOX', sources[0] as string, 1);
      expect('Archive', sources[0] as string, 1);
      expect('INBOX', sources[1] as string, 0);
      expect('Archive', sources[1] as string, 1);
      expect('INBOX', sources[2] as string, 0);
      // every local message carries the upstream key of its one copy
      for (const row of [...appended, c1, c2]) {
        const key = state.rows.find((x) => x.uid === row.uid)?.key ?? '';
        const m = /^i(\d+)_(\d+)$/.exec(key);
        const folder = row.folder;
        const hit =
          m && up[folder]?.uidValidity === Number(m[1]) && up[folder]?.messages.some((x) => x.uid === Number(m[2]));
        if (!hit) faults.push(`local ${folder} uid ${row.uid} has key ${key || '(none)'}, not an upstream message`);
      }
      for (const x of faults.slice(0, 50)) f.violations.push(`round ${round}: ${x}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  f.seconds = (Date.now() - t0) / 1000;
  return f;
}
