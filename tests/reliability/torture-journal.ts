/**
 * Crash torture of the journal replay (scenario `journal` of tests/reliability/torture.ts): a
 * child drains a journal of a create, appends, a copy, a move, flags and an expunge upstream to
 * Dovecot (tests/support/journal-replay-child.ts) — made through the cache's real MailboxStore
 * (`store` mode) or written into the durable stand-in of tests/support/journal-fake.ts (`fake`) and is killed with -9 — by itself right after a chosen
 * step (markInflight durable, the upstream command done, complete durable) or by the parent
 * after a random delay — then started again until a drain finishes. Checked with imaplib after
 * each round: every change is upstream exactly once (messages counted per Message-ID), nothing is
 * lost, every entry is done and every local message has the upstream key of its copy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import type { JournalEntry } from '../../src/cache/mailboxes.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { imapChangesOf } from '../../src/daemon/accounts.js';
import { ImapFetcher } from '../../src/upstream/imap/fetcher.js';
import { FakeJournalStore } from '../support/journal-fake.js';
import { imaplibState } from '../support/python.js';
import type { Testbed } from '../support/testbed.js';
import type { TortureFigures, TortureOptions } from './torture.js';

const CHILD = path.resolve(import.meta.dirname, '../support/journal-replay-child.ts');
const STEPS = ['mark', 'applied', 'complete'] as const;
/** Restarts of one round before it counts as stuck. */
const MAX_RUNS = 12;

/** One run of the child: how it ended and the steps it printed. */
function runChild(
  file: string,
  port: number,
  user: string,
  kill: { step: string; n: number } | { afterMs: number } | undefined,
): Promise<{ killed: boolean; done: boolean; out: string }> {
  const args = ['--import', 'tsx', CHILD, file, String(port), user];
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

/** One round's changes, made before the child runs, and how to read the outcome after. */
interface Round {
  /** What the child takes: a FakeJournalStore file or a cache's data directory. */
  state: string;
  entries: number;
  /** Entries not done after the drain, and each local message's key with the Message-ID it must name upstream. */
  outcome(): Promise<{
    notDone: JournalEntry[];
    tries: number[];
    keys: Array<{ folder: string; mid: string; key: string }>;
  }>;
}

const silent = pino({ level: 'silent' });
const ACCOUNT = {
  id: 'acct',
  incoming: { protocol: 'imap', onLocalDelete: 'keep-upstream' },
} as unknown as AccountConfig;

/** The round's changes written straight into a FakeJournalStore, on messages already upstream. */
async function fakeRound(tb: Testbed, user: string, file: string, mids: RoundMids, bodies: string[]): Promise<Round> {
  const before = await imaplibState(tb.imapPort, user, `${user}pw`);
  const inbox = before.INBOX;
  if (!inbox) throw new Error('no INBOX upstream');
  const fake = new FakeJournalStore(file);
  const [s1, s2, s3] = mids.sources.map((mid) => {
    const m = inbox.messages.find((x) => x.mid === mid);
    if (!m) throw new Error(`${mid} not upstream`);
    return fake.addRow('INBOX', undefined, { key: `i${inbox.uidValidity}_${m.uid}` });
  });
  if (!s1 || !s2 || !s3) throw new Error('sources');
  fake.add({ kind: 'create', folder: 'Archive' });
  const appended = mids.appended.map((mid, i) => {
    const row = fake.addRow('INBOX', message(mid, bodies[i] ?? ''), { flags: ['\\Seen'] });
    fake.add({ kind: 'append', folder: 'INBOX', uid: row.uid });
    return row;
  });
  const c1 = fake.transfer('copy', s1, 'Archive');
  const c2 = fake.transfer('move', s2, 'Archive');
  fake.add({ kind: 'flags', folder: 'INBOX', uids: [s3.uid], op: 'add', flags: ['\\Flagged'] });
  fake.expunge(s3);
  const locals = [
    ...appended.map((r, i) => ({ uid: r.uid, folder: 'INBOX', mid: mids.appended[i] as string })),
    { uid: c1.uid, folder: 'Archive', mid: mids.sources[0] },
    { uid: c2.uid, folder: 'Archive', mid: mids.sources[1] },
  ];
  return {
    state: file,
    entries: fake.state.entries.length,
    outcome: async () => {
      const st = new FakeJournalStore(file).state;
      const keyOf = (uid: number) => st.rows.find((x) => x.uid === uid)?.key ?? '';
      return {
        notDone: st.entries.filter((e) => e.state !== 'done'),
        tries: st.entries.map((e) => e.tries),
        keys: locals.map((l) => ({ folder: l.folder, mid: l.mid, key: keyOf(l.uid) })),
      };
    },
  };
}

/** The round's changes made through the cache's MailboxStore after a pull of the INBOX. */
async function storeRound(
  tb: Testbed,
  user: string,
  dataDir: string,
  mids: RoundMids,
  bodies: string[],
): Promise<Round> {
  const open = () => Cache.open({ dataDir, accounts: ['acct'], log: silent });
  const cache = await open();
  let entries: number;
  try {
    const changes = imapChangesOf(cache, ACCOUNT);
    if (!changes) throw new Error('no IMAP changes');
    const endpoint = {
      host: '127.0.0.1',
      port: tb.imapPort,
      tls: 'none' as const,
      username: user,
      password: `${user}pw`,
    };
    const pull = new ImapFetcher({
      endpoint,
      store: cache.account('acct'),
      cursors: cache,
      log: silent,
      folders: ['INBOX'],
      maxMessageSize: 10_000_000,
      changes,
    });
    await pull.pull();
    const uidOf = (mid: string) => {
      const row = cache
        .account('acct')
        .list('INBOX')
        .find((r) => readFileSync(r.path, 'latin1').includes(`<${mid}>`));
      if (!row) throw new Error(`${mid} not pulled`);
      return row.uid;
    };
    const [s1, s2, s3] = mids.sources.map(uidOf) as [number, number, number];
    const view = cache.mailboxes('acct');
    if (!view.folder('Archive')) await view.createFolder('Archive'); // the pull may have learnt it upstream
    for (const [i, mid] of mids.appended.entries())
      await view.append('INBOX', message(mid, bodies[i] ?? ''), { flags: ['\\Seen'] });
    await view.copy('INBOX', [s1], 'Archive');
    await view.move('INBOX', [s2], 'Archive');
    await view.setFlags('INBOX', [s3], { op: 'add', flags: ['\\Flagged'] });
    await view.expunge('INBOX', [s3]);
    entries = cache.journal.pending('acct').length;
  } finally {
    cache.close();
  }
  return {
    state: dataDir,
    entries,
    outcome: async () => {
      const c = await open();
      try {
        const rows = (folder: string) =>
          c
            .account('acct')
            .list(folder)
            .map((r) => ({ folder, key: r.key, text: readFileSync(r.path, 'latin1') }));
        const all = [...rows('INBOX'), ...rows('Archive')];
        const expected = [
          ...mids.appended.map((mid) => ({ folder: 'INBOX', mid })),
          { folder: 'Archive', mid: mids.sources[0] },
          { folder: 'Archive', mid: mids.sources[1] },
        ];
        return {
          notDone: c.journal.list('acct'),
          tries: [],
          keys: expected.map((e) => ({
            ...e,
            key: all.find((r) => r.folder === e.folder && r.text.includes(`<${e.mid}>`))?.key ?? '',
          })),
        };
      } finally {
        c.close();
      }
    },
  };
}

interface RoundMids {
  sources: [string, string, string];
  appended: string[];
}

/**
 * kill -9 of the journal replay at its steps and at random moments, `o.rounds` rounds; `mode`:
 * changes made through the real MailboxStore (`store`) or the file-backed stand-in (`fake`).
 */
export async function tortureJournal(
  tb: Testbed,
  o: TortureOptions,
  mode: 'store' | 'fake' = 'store',
): Promise<TortureFigures> {
  const user = mode === 'store' ? 'bob' : 'alice';
  const f: TortureFigures = {
    scenario: `journal (${mode === 'store' ? 'MailboxStore' : 'stand-in journal'})`,
    rounds: 0,
    kills: 0,
    messages: 0,
    bytes: 0,
    violations: [],
    notes: { entries: 0, duplicates: 0, retried: 0 },
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
      const mids: RoundMids = {
        sources: ['s1', 's2', 's3'].map((s) => `${s}.${tag}@t`) as [string, string, string],
        appended: [1, 2, 3].map((i) => `a${i}.${tag}@t`),
      };
      for (const mid of mids.sources) await tb.appendMessage(user, message(mid, 'upstream'));
      const bodies = mids.appended.map(() => 'x'.repeat(200 + Math.floor(rnd() * 4000)));
      for (const b of bodies) f.bytes += b.length;
      const r =
        mode === 'store'
          ? await storeRound(tb, user, path.join(dir, `cache-${round}`), mids, bodies)
          : await fakeRound(tb, user, path.join(dir, `state-${round}.json`), mids, bodies);
      notes.entries = (notes.entries ?? 0) + r.entries;
      f.messages += mids.appended.length + 2;

      let finished = false;
      for (let run = 1; run <= MAX_RUNS && !finished; run++) {
        // the last run is never killed; otherwise a kill at a step, or after a random delay
        const kill =
          run === MAX_RUNS
            ? undefined
            : rnd() < 0.7
              ? { step: STEPS[Math.floor(rnd() * STEPS.length)] as string, n: 1 + Math.floor(rnd() * r.entries) }
              : { afterMs: Math.floor(rnd() * 60) };
        const res = await runChild(r.state, tb.imapPort, user, kill);
        if (res.killed) f.kills++;
        finished = res.done;
        o.log?.(
          `round ${round} run ${run}: ${JSON.stringify(kill)} -> ${res.killed ? 'killed' : res.done ? 'done' : '?'}`,
        );
      }
      const out = await r.outcome();
      const faults: string[] = [];
      if (!finished) faults.push(`no drain finished in ${MAX_RUNS} runs`);
      for (const e of out.notDone) faults.push(`entry ${e.id} (${e.change.kind}) ${e.state}: ${e.lastError ?? ''}`);
      notes.retried = (notes.retried ?? 0) + out.tries.filter((t) => t > 1).length;

      const up = await imaplibState(tb.imapPort, user, `${user}pw`);
      const count = (folder: string, mid: string) => (up[folder]?.messages ?? []).filter((m) => m.mid === mid).length;
      const expect = (folder: string, mid: string, n: number) => {
        const got = count(folder, mid);
        if (got > n) notes.duplicates = (notes.duplicates ?? 0) + got - n;
        if (got !== n) faults.push(`${folder} has ${got} x <${mid}>, expected ${n}`);
      };
      for (const mid of mids.appended) expect('INBOX', mid, 1);
      const [m1, m2, m3] = mids.sources;
      expect('INBOX', m1, 1);
      expect('Archive', m1, 1);
      expect('INBOX', m2, 0);
      expect('Archive', m2, 1);
      expect('INBOX', m3, 0);
      // every local message carries the upstream key of its one copy
      for (const k of out.keys) {
        const m = /^i(\d+)_(\d+)$/.exec(k.key);
        const there =
          m && up[k.folder]?.uidValidity === Number(m[1])
            ? up[k.folder]?.messages.find((x) => x.uid === Number(m[2]))
            : undefined;
        if (there?.mid !== k.mid)
          faults.push(`local <${k.mid}> in ${k.folder} has key ${k.key || '(none)'}, not its upstream copy`);
      }
      for (const x of faults.slice(0, 50)) f.violations.push(`round ${round}: ${x}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  f.seconds = (Date.now() - t0) / 1000;
  return f;
}
