/**
 * The instance lock against real processes: a child process that takes the lock through this
 * module is named to a second taker and by `lockHolder`; once it is killed with SIGKILL the
 * lock is free at once. Leftovers (a lock file of an older localpost, a pid file naming a dead
 * process, pid 1, this process or a `sleep`) never block. Concurrent takers, in one process or
 * in many, never both win, and readers (`lockHolder`) make no start fail.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { acquireLock, type InstanceLock, LockedError, lockHolder } from '../../src/daemon/instance-lock.js';
import { ROOT } from '../support/localpost.js';

const MODULE = path.join(ROOT, 'src/daemon/instance-lock.ts');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmpDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lp-lock-'));
  dirs.push(d);
  return d;
};
const lockFile = (dir: string) => path.join(dir, 'localpost.lock');
const pidFile = (dir: string) => path.join(dir, 'localpost.pid');
const readPid = (dir: string) => readFileSync(pidFile(dir), 'utf8');
const isLocked = (pid: number) => (err: unknown) =>
  err instanceof LockedError && err.pid === pid && /^another localpost \(pid \d+\) is already using /.test(err.message);
/** The files of the data dir: the lock and the pid file, no journal or temp files. */
const files = (dir: string) => readdirSync(dir).sort();

/** Spawn a process and wait until it runs; killed at the end of the test. */
async function running(t: { after(fn: () => void): void }, cmd: string, args: string[]): Promise<number> {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
  });
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child.pid!;
}

/** A pid that no process has any more. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('close', r));
  return child.pid!;
}

interface Child {
  child: ChildProcess;
  lines: AsyncIterator<string>;
}

/** A child node process running `body` with the lock module as `m`; it prints `ready` first. */
function nodeChild(body: string): Child {
  const script = `
    const { createInterface } = require('node:readline');
    import(${JSON.stringify(MODULE)}).then(async (m) => { ${body} });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

/**
 * A child that takes the lock on the dir of each `acquire DIR` line and prints the outcome as
 * JSON (`{"won":true}`, `{"locked":pid}` or `{"error":…}`); a winner keeps the lock until killed.
 */
const lockChild = () =>
  nodeChild(`
    const rl = createInterface({ input: process.stdin });
    rl.on('line', async (line) => {
      try { await m.acquireLock(line.slice('acquire '.length)); console.log(JSON.stringify({ won: true })); }
      catch (err) { console.log(JSON.stringify(err instanceof m.LockedError ? { locked: err.pid } : { error: String(err) })); }
    });
    console.log('ready');`);

/** A child that asks `lockHolder` about each of `dirs` in turn, over and over until killed. */
const proberChild = (dirs: string[]) =>
  nodeChild(`
    const dirs = ${JSON.stringify(dirs)};
    for (let i = 0; ; i++) {
      await m.lockHolder(dirs[i % dirs.length]);
      if (i === 50) console.log('ready');
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }`);

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const r = await lines.next();
  assert.ok(!r.done, 'the child printed a line');
  return r.value;
}

async function killAll(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      const closed = new Promise((r) => child.once('close', r));
      child.kill('SIGKILL');
      return closed;
    }),
  );
}

test('the holder is named in localpost.pid; a second taker in-process is refused; release frees it', async () => {
  const dir = tmpDir();
  const lock = await acquireLock(dir);
  assert.equal(lock.file, lockFile(dir));
  assert.equal(readPid(dir), `${process.pid}\n`);
  assert.equal(statSync(pidFile(dir)).mode & 0o777, 0o600);
  assert.deepEqual(files(dir), ['localpost.lock', 'localpost.pid']);
  assert.equal(await lockHolder(dir), process.pid);
  await assert.rejects(acquireLock(dir), isLocked(process.pid));
  await lock.release();
  assert.equal(existsSync(pidFile(dir)), false);
  assert.equal(await lockHolder(dir), undefined);
  await lock.release(); // twice is harmless
  const again = await acquireLock(dir);
  await again.release();
});

test('lockHolder creates nothing: a missing data dir, an empty one', async () => {
  const dir = tmpDir();
  const missing = path.join(dir, 'not-there');
  assert.equal(await lockHolder(missing), undefined);
  assert.equal(existsSync(missing), false);
  assert.equal(await lockHolder(dir), undefined);
  assert.deepEqual(files(dir), []);
});

test('a lock held by another process is refused with its pid; after SIGKILL it is free at once', async () => {
  const dir = tmpDir();
  const holder = lockChild();
  try {
    assert.equal(await nextLine(holder.lines), 'ready');
    holder.child.stdin!.write(`acquire ${dir}\n`);
    assert.deepEqual(JSON.parse(await nextLine(holder.lines)), { won: true });
    const pid = holder.child.pid!;
    assert.equal(readPid(dir), `${pid}\n`);
    assert.equal(await lockHolder(dir), pid);
    assert.equal(await lockHolder(dir), pid, 'asking leaves it held');
    await assert.rejects(acquireLock(dir), isLocked(pid));
    // the pid file is informative: without it the lock is still held, its holder unknown
    rmSync(pidFile(dir));
    assert.equal(await lockHolder(dir), undefined);
    writeFileSync(pidFile(dir), `${pid}\n`);
  } finally {
    await killAll([holder]);
  }
  // killed without releasing: both files stay, naming a dead process
  assert.equal(readPid(dir), `${holder.child.pid}\n`);
  assert.ok(existsSync(lockFile(dir)));
  assert.equal(await lockHolder(dir), undefined);
  const lock = await acquireLock(dir);
  assert.equal(readPid(dir), `${process.pid}\n`);
  await lock.release();
});

test('leftovers never block: an older lock file, a pid file naming a dead process, pid 1, this process, a sleep', async (t) => {
  const dir = tmpDir();
  const sleeper = await running(t, 'sleep', ['30']);
  const dead = await deadPid();
  const oldRecord = JSON.stringify({ app: 'localpost', pid: sleeper, start: '1', nonce: 'feedface' });
  const locks = [undefined, '', '1\n', `${sleeper}\n`, oldRecord, 'SQLite format 3\0 torn'];
  const pids = [undefined, dead, 1, process.pid, sleeper, 'junk'];
  for (const l of locks)
    for (const p of pids) {
      const what = `lock ${JSON.stringify(l)}, pid file ${JSON.stringify(p)}`;
      rmSync(lockFile(dir), { force: true });
      if (l !== undefined) writeFileSync(lockFile(dir), l);
      if (p !== undefined) writeFileSync(pidFile(dir), `${p}\n`);
      assert.equal(await lockHolder(dir), undefined, what);
      const lock = await acquireLock(dir);
      assert.equal(readPid(dir), `${process.pid}\n`, what);
      assert.deepEqual(files(dir), ['localpost.lock', 'localpost.pid'], what);
      await lock.release();
    }
});

test('concurrent takers in one process: exactly one wins', async () => {
  const dir = tmpDir();
  for (const initial of [undefined, '1\n']) {
    if (initial !== undefined) writeFileSync(lockFile(dir), initial);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireLock(dir)));
    const won = results.filter((r): r is PromiseFulfilledResult<InstanceLock> => r.status === 'fulfilled');
    assert.equal(won.length, 1, `one winner (initial lock ${JSON.stringify(initial)})`);
    for (const r of results) if (r.status === 'rejected') assert.ok(isLocked(process.pid)(r.reason), String(r.reason));
    await won[0]!.value.release();
  }
});

test('concurrent takers in many processes, with readers probing: exactly one wins, the others name it', async () => {
  const rounds: Array<{ dir: string; lock?: string; pid?: string }> = [
    { dir: tmpDir() },
    { dir: tmpDir(), lock: '1\n', pid: '1\n' },
    {
      dir: tmpDir(),
      lock: JSON.stringify({ app: 'localpost', pid: 1, nonce: 'feedface' }),
      pid: `${await deadPid()}\n`,
    },
  ];
  const racers = Array.from({ length: 5 }, () => lockChild());
  const probers: Child[] = [];
  try {
    for (const r of racers) assert.equal(await nextLine(r.lines), 'ready');
    // started last, as they keep the CPUs busy
    probers.push(proberChild(rounds.map((r) => r.dir)), proberChild(rounds.map((r) => r.dir)));
    for (const p of probers) assert.equal(await nextLine(p.lines), 'ready');
    for (const { dir, ...initial } of rounds) {
      if (initial.lock !== undefined) writeFileSync(lockFile(dir), initial.lock);
      if (initial.pid !== undefined) writeFileSync(pidFile(dir), initial.pid);
      for (const r of racers) r.child.stdin!.write(`acquire ${dir}\n`); // as close to the same moment as can be
      const outcomes = await Promise.all(
        racers.map(async (r) => ({
          pid: r.child.pid!,
          out: JSON.parse(await nextLine(r.lines)) as { won?: true; locked?: number; error?: string },
        })),
      );
      const winners = outcomes.filter((o) => o.out.won);
      assert.equal(winners.length, 1, `one winner, initially ${JSON.stringify(initial)}: ${JSON.stringify(outcomes)}`);
      const winner = winners[0]!.pid;
      for (const o of outcomes) if (!o.out.won) assert.deepEqual(o.out, { locked: winner });
      assert.equal(readPid(dir), `${winner}\n`);
      assert.equal(await lockHolder(dir), winner);
    }
  } finally {
    await killAll([...probers, ...racers]);
  }
});

test('a reader holding its shared lock as a start begins: the start waits for it instead of failing', async () => {
  const dir = tmpDir();
  await (await acquireLock(dir)).release(); // the lock file exists, free
  writeFileSync(pidFile(dir), '1\n'); // and a stale pid file names a live process: the worst case
  // a `status` caught at the worst moment: its shared lock held for a while (well under BUSY_MS)
  const reader = nodeChild(`
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(lockFile(dir))}, { readonly: true, fileMustExist: true, timeout: 0 });
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    console.log('ready');
    setTimeout(() => { db.exec('ROLLBACK'); db.close(); console.log('let go'); }, 100);`);
  try {
    assert.equal(await nextLine(reader.lines), 'ready');
    const lock = await acquireLock(dir);
    assert.equal(await nextLine(reader.lines), 'let go');
    await lock.release();
  } finally {
    await killAll([reader]);
  }
});
