/**
 * The instance lock against real processes: a pid that is alive but is not the lock's owner
 * (pid 1, a `sleep`, a process with another start time or from another boot) never blocks a
 * start; a live localpost holding the lock (a child process that took it through this module)
 * is refused with its pid; concurrent acquirers, in one process or in many, never both win.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import {
  acquireLock,
  bootId,
  LockedError,
  type LockRecord,
  lockHolder,
  processInfo,
} from '../../src/daemon/instance-lock.js';
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
const readRecord = (dir: string) => JSON.parse(readFileSync(lockFile(dir), 'utf8')) as LockRecord;
const isLocked = (pid: number) => (err: unknown) =>
  err instanceof LockedError && err.pid === pid && /^another localpost \(pid \d+\) is already using /.test(err.message);
/** Files beside the lock other than the lock itself: temp files and claims must not be left. */
const litter = (dir: string) => readdirSync(dir).filter((n) => n !== 'localpost.lock');

/** Spawn a process and wait until it runs; killed at the end of the test. */
async function running(
  t: { after(fn: () => void): void },
  cmd: string,
  args: string[],
): Promise<ChildProcess & { pid: number }> {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
  });
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child as ChildProcess & { pid: number };
}

/** A pid that no process has any more. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('close', r));
  return child.pid!;
}

/** A lock record naming `pid` with what is really known about it, then `over` on top. */
async function recordFor(pid: number, over: Partial<LockRecord> = {}): Promise<LockRecord> {
  const info = await processInfo(pid);
  assert.ok(info && info !== 'gone', `pid ${pid} is running`);
  return {
    app: 'localpost',
    pid,
    start: info.start,
    startClock: info.via,
    bootId: await bootId(),
    argv1: '/opt/localpost/dist/cli.js',
    exe: process.execPath,
    nonce: 'feedface',
    created: new Date().toISOString(),
    ...over,
  };
}

/**
 * A child node process running the lock module: prints `ready`; on each `acquire` line it takes
 * the lock and prints the outcome as JSON (`{"won":true}`, `{"locked":pid}` or `{"error":…}`);
 * a winner keeps the lock until killed.
 */
function lockChild(dir: string): { child: ChildProcess; lines: AsyncIterator<string> } {
  const script = `
    const { createInterface } = require('node:readline');
    import(${JSON.stringify(MODULE)}).then((m) => {
      const rl = createInterface({ input: process.stdin });
      rl.on('line', async () => {
        try { await m.acquireLock(${JSON.stringify(dir)}); console.log(JSON.stringify({ won: true })); }
        catch (err) { console.log(JSON.stringify(err instanceof m.LockedError ? { locked: err.pid } : { error: String(err) })); }
      });
      console.log('ready');
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const r = await lines.next();
  assert.ok(!r.done, 'the child printed a line');
  return r.value;
}

test('the lock is a JSON record of this process, refused to a second taker in-process, and released', async () => {
  const dir = tmpDir();
  const lock = await acquireLock(dir);
  const rec = readRecord(dir);
  assert.equal(rec.app, 'localpost');
  assert.equal(rec.pid, process.pid);
  if (existsSync('/proc/self/stat')) {
    assert.equal(rec.startClock, 'proc');
    assert.equal(rec.start, readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]);
    assert.equal(rec.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  }
  assert.match(rec.start ?? '', /\S/);
  assert.equal(rec.argv1, process.argv[1]);
  assert.equal(rec.exe, process.execPath);
  assert.equal(statSync(lockFile(dir)).mode & 0o777, 0o600);
  assert.deepEqual(litter(dir), []);
  assert.equal(await lockHolder(dir), process.pid);
  await assert.rejects(acquireLock(dir), isLocked(process.pid));
  await lock.release();
  assert.equal(existsSync(lockFile(dir)), false);
  assert.equal(await lockHolder(dir), undefined);
  await lock.release(); // twice is harmless
  const again = await acquireLock(dir);
  await again.release();
});

test('a bare pid (old format) of a live process that is not a localpost is stale: pid 1, a sleep', async (t) => {
  const dir = tmpDir();
  const sleeper = await running(t, 'sleep', ['30']);
  for (const pid of [1, sleeper.pid]) {
    writeFileSync(lockFile(dir), `${pid}\n`);
    assert.equal(await lockHolder(dir), undefined, `pid ${pid} does not hold it`);
    const lock = await acquireLock(dir);
    assert.equal(readRecord(dir).pid, process.pid);
    assert.deepEqual(litter(dir), []);
    await lock.release();
  }
});

test('a bare pid of a dead process is stale; of a live localpost, held', async (t) => {
  const dir = tmpDir();
  writeFileSync(lockFile(dir), `${await deadPid()}\n`);
  const lock = await acquireLock(dir);
  await lock.release();
  // an older localpost still running: its command line names localpost
  const old = await running(t, process.execPath, [
    '-e',
    'setTimeout(() => {}, 30000)',
    '/usr/lib/node_modules/localpost/dist/cli.js',
    'start',
  ]);
  writeFileSync(lockFile(dir), `${old.pid}\n`);
  assert.equal(await lockHolder(dir), old.pid);
  await assert.rejects(acquireLock(dir), isLocked(old.pid));
  assert.equal(readFileSync(lockFile(dir), 'utf8'), `${old.pid}\n`, 'left alone');
});

test('a record naming a live process is held only with its boot id and start time', async (t) => {
  const dir = tmpDir();
  const sleeper = await running(t, 'sleep', ['30']);
  const exact = await recordFor(sleeper.pid);
  // the very process (as far as pid, boot and start tell): held, refused with its pid
  writeFileSync(lockFile(dir), JSON.stringify(exact));
  assert.equal(await lockHolder(dir), sleeper.pid);
  await assert.rejects(acquireLock(dir), isLocked(sleeper.pid));

  const cases: Array<[string, Partial<LockRecord>]> = [
    [
      'another start time (the pid was reused)',
      { start: exact.startClock === 'proc' ? String(Number(exact.start) + 1) : 'Mon Jan 1 00:00:00 2001' },
    ],
    ['another boot', { bootId: '00000000-0000-4000-8000-000000000000' }],
    ['pid 1 with a start time of another process', { pid: 1 }],
  ];
  for (const [what, over] of cases) {
    writeFileSync(lockFile(dir), JSON.stringify({ ...exact, ...over }));
    assert.equal(await lockHolder(dir), undefined, what);
    const lock = await acquireLock(dir);
    assert.equal(readRecord(dir).pid, process.pid, what);
    assert.deepEqual(litter(dir), [], what);
    await lock.release();
  }
  // a record of a dead process, and an empty lock file left by a power cut
  writeFileSync(lockFile(dir), JSON.stringify({ ...exact, pid: await deadPid() }));
  await (await acquireLock(dir)).release();
  writeFileSync(lockFile(dir), '');
  utimesSync(lockFile(dir), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  await (await acquireLock(dir)).release();
});

test('a lock held by another live localpost process is refused with its pid; once it dies, taken over', async () => {
  const dir = tmpDir();
  const { child, lines } = lockChild(dir);
  try {
    assert.equal(await nextLine(lines), 'ready');
    child.stdin!.write('acquire\n');
    assert.deepEqual(JSON.parse(await nextLine(lines)), { won: true });
    const rec = readRecord(dir);
    assert.equal(rec.pid, child.pid);
    assert.equal(await lockHolder(dir), child.pid);
    await assert.rejects(acquireLock(dir), isLocked(child.pid!));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
  }
  // killed without releasing: the lock file stays, naming a dead process
  assert.equal(readRecord(dir).pid, child.pid);
  assert.equal(await lockHolder(dir), undefined);
  const lock = await acquireLock(dir);
  assert.equal(readRecord(dir).pid, process.pid);
  await lock.release();
});

test('a taker that died mid-takeover leaves a claim that does not block the next start', async () => {
  const dir = tmpDir();
  writeFileSync(lockFile(dir), '1\n');
  // the claim a crashed taker left on this stale lock: named by the lock's inode and content
  const st = statSync(lockFile(dir));
  const key = createHash('sha256').update(`${st.dev}:${st.ino}:1\n`).digest('hex').slice(0, 24);
  const claim = path.join(dir, `localpost.lock.takeover-${key}`);
  writeFileSync(claim, JSON.stringify({ ...(await recordFor(process.pid)), pid: await deadPid() }));
  writeFileSync(path.join(dir, `localpost.lock.${await deadPid()}.0123456789abcdef01234567.tmp`), 'junk');
  const lock = await acquireLock(dir);
  assert.equal(readRecord(dir).pid, process.pid);
  assert.deepEqual(litter(dir), [], 'the dead claim and temp file are tidied');
  await lock.release();
});

test('concurrent acquirers in one process: exactly one wins', async () => {
  const dir = tmpDir();
  for (const initial of [undefined, '1\n', `${await deadPid()}\n`]) {
    if (initial !== undefined) writeFileSync(lockFile(dir), initial);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireLock(dir)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `one winner (initial lock ${JSON.stringify(initial)})`);
    for (const r of results) if (r.status === 'rejected') assert.ok(isLocked(process.pid)(r.reason), String(r.reason));
    assert.deepEqual(litter(dir), []);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLock>>>).value.release();
  }
});

test('concurrent acquirers in many processes, released together: exactly one wins, the others name it', async (t) => {
  const N = 6;
  const dead = await deadPid();
  const sleeper = await running(t, 'sleep', ['30']);
  const rounds: Array<string | undefined> = [
    undefined,
    '1\n',
    `${dead}\n`,
    `${sleeper.pid}\n`,
    JSON.stringify({ ...(await recordFor(sleeper.pid)), start: '1' }),
  ];
  for (const initial of rounds) {
    const dir = tmpDir();
    if (initial !== undefined) writeFileSync(lockFile(dir), initial);
    const racers = Array.from({ length: N }, () => lockChild(dir));
    try {
      for (const r of racers) assert.equal(await nextLine(r.lines), 'ready');
      for (const r of racers) r.child.stdin!.write('acquire\n'); // as close to the same moment as can be
      const outcomes = await Promise.all(
        racers.map(async (r) => ({
          pid: r.child.pid!,
          out: JSON.parse(await nextLine(r.lines)) as { won?: true; locked?: number; error?: string },
        })),
      );
      const winners = outcomes.filter((o) => o.out.won);
      assert.equal(
        winners.length,
        1,
        `one winner, initial lock ${JSON.stringify(initial)}: ${JSON.stringify(outcomes)}`,
      );
      const winner = winners[0]!.pid;
      for (const o of outcomes) if (!o.out.won) assert.deepEqual(o.out, { locked: winner });
      assert.equal(readRecord(dir).pid, winner);
      assert.equal(await lockHolder(dir), winner);
      assert.deepEqual(litter(dir), []);
    } finally {
      for (const r of racers) r.child.kill('SIGKILL');
      await Promise.all(
        racers.map((r) =>
          r.child.exitCode === null && r.child.signalCode === null
            ? new Promise((res) => r.child.once('close', res))
            : undefined,
        ),
      );
    }
  }
});

test('processInfo: /proc and ps agree on the command; a dead pid is gone', {
  skip: !existsSync('/proc/self/stat'),
}, async (t) => {
  const sleeper = await running(t, 'sleep', ['30']);
  const proc = await processInfo(sleeper.pid, 'proc');
  const ps = await processInfo(sleeper.pid, 'ps');
  assert.ok(proc && proc !== 'gone' && ps && ps !== 'gone');
  assert.equal(proc.via, 'proc');
  assert.equal(proc.command, 'sleep 30');
  assert.match(proc.start ?? '', /^\d+$/);
  assert.equal(ps.via, 'ps');
  assert.equal(ps.command, 'sleep 30');
  assert.match(ps.start ?? '', /^\w{3} \w{3} \d+ \d\d:\d\d:\d\d \d{4}$/);
  const dead = await deadPid();
  assert.equal(await processInfo(dead, 'proc'), 'gone');
  assert.equal(await processInfo(dead, 'ps'), 'gone');
});
