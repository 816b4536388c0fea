/**
 * Child process for the pull pipeline's kill test (tests/reliability/pipeline-kill.test.ts). It
 * pulls like a POP3 fetcher that deletes upstream: `<upstream>/<key>` files are the maildrop,
 * written through the real BatchWriter (temp files created ahead of need, several in flight),
 * and a committed batch is "DELEd" by unlinking its upstream files. Keys already stored at
 * start-up (a kill between commit and DELE) are DELEd first, as the fetchers do.
 *
 * The file-system calls of the write path are wrapped (before any of src/ is loaded) to print
 * one trace line per step, synchronously, so a SIGKILL loses none:
 *   open <fd> <path> | fsync <fd> | renaming <from> <to> (issued) | rename <from> <to> (done) |
 *   dirsync <path> | commit <keys> | dele <keys>
 * With `<step> <n>` arguments the process SIGKILLs itself right after the n-th such step.
 *
 * Usage: node --import tsx tests/support/pipeline-kill-child.ts <dataDir> <upstream> [<step> <n>]
 */
import fs, { readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { pino } from 'pino';

const [dataDir = '', upstream = '', killStep, killAt] = process.argv.slice(2);
const counts = new Map<string, number>();

/** Print a trace line; SIGKILL ourselves after the chosen step's n-th occurrence. */
function step(op: string, detail: string): void {
  writeSync(1, `${op} ${detail}\n`);
  if (op === 'dirsync' && !detail.endsWith('/new')) return; // kill points: new/ only
  const n = (counts.get(op) ?? 0) + 1;
  counts.set(op, n);
  if (op === killStep && n === Number(killAt)) process.kill(process.pid, 'SIGKILL');
}

const realOpen = fs.open;
fs.open = ((file: string, flags: string, mode: number, cb: (err: Error | null, fd: number) => void) =>
  realOpen(file, flags, mode, (err, fd) => {
    if (!err) step('open', `${fd} ${file}`);
    cb(err, fd);
  })) as typeof fs.open;
const realFsync = fs.fsync;
fs.fsync = ((fd: number, cb: (err: Error | null) => void) =>
  realFsync(fd, (err) => {
    if (!err) step('fsync', String(fd));
    cb(err);
  })) as typeof fs.fsync;
const realRename = fsp.rename;
fsp.rename = async (from, to) => {
  // a rename already in a worker thread completes even when SIGKILL stops the main thread
  step('renaming', `${String(from)} ${String(to)}`);
  await realRename(from, to);
  step('rename', `${String(from)} ${String(to)}`);
};
// directory fsyncs go through a FileHandle opened by name (durable-fs.ts fsyncDir)
const realFspOpen = fsp.open;
const dirOf = new WeakMap<object, string>();
fsp.open = async (...args: Parameters<typeof fsp.open>) => {
  const fh = await realFspOpen(...args);
  dirOf.set(fh, String(args[0]));
  return fh;
};
const probe = await realFspOpen('/', 'r');
const proto = Object.getPrototypeOf(probe) as { sync(this: object): Promise<void> };
await probe.close();
const realSync = proto.sync;
proto.sync = async function (this: object) {
  await realSync.call(this);
  step('dirsync', dirOf.get(this) ?? '?');
};
syncBuiltinESMExports();

const { Cache } = await import('../../src/cache/cache.js');
const { BatchWriter } = await import('../../src/upstream/batch.js');

const cache = await Cache.open({ dataDir, accounts: ['a'], log: pino({ level: 'silent' }) });
const store = cache.account('a');
const realCommit = store.commit.bind(store);
store.commit = async (inTransaction) => {
  const committed = await realCommit(inTransaction);
  step('commit', committed.map((m) => m.key).join(','));
  return committed;
};
const dele = (keys: string[]): void => {
  if (!keys.length) return;
  for (const k of keys) unlinkSync(path.join(upstream, k));
  step('dele', keys.join(','));
};
const listing = readdirSync(upstream).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
dele(listing.filter((k) => store.has('INBOX', k)));
const batch = new BatchWriter(store, {
  maxMessages: 7,
  afterCommit: async (committed) => dele(committed.map((m) => m.key)),
});
await batch.drain(async () => {
  for (const key of listing) {
    if (store.has('INBOX', key)) continue;
    const body = readFileSync(path.join(upstream, key));
    await batch.write('INBOX', key, async (sink) => {
      sink.write(body.subarray(0, 11));
      sink.write(body.subarray(11));
    });
  }
});
cache.close();
