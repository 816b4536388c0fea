/**
 * Start-up recovery of the outbox (invariant 8), run before the queue is handed out. What a
 * crash can leave, and what is done with it:
 *
 * | found in `outbox/`                       | meaning                                  | action                     |
 * |------------------------------------------|------------------------------------------|----------------------------|
 * | anything in `tmp/`, `*.tmp-*` files      | an acceptance or rewrite not committed   | deleted                    |
 * | `<id>.eml` without `<id>.json`           | an acceptance that never got its 250     | deleted                    |
 * | both files, recipients pending           | a queued message                         | loaded                     |
 * | `<id>.json` whose recipients are all done | finishing was interrupted                | finished (bounce, move)    |
 * | `<id>.json` pending, `.eml` in `failed/`  | a `retry` was interrupted                | the `.eml` is moved back   |
 * | `<id>.json` that does not parse, or pending without any `.eml` | damaged           | renamed `*.broken`, logged |
 *
 * Anything but a regular file (a symbolic link above all) is left alone and never read.
 *
 * Then the index follows the files: rows of queued entries that have no files any more are
 * deleted, and every loaded entry's row is rewritten.
 */
import { access, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir, mkdirDurable, renameDurable } from '../../shared/durable-fs.js';
import { errorMessage } from '../../shared/errors.js';
import { dedupeKey, entryState, isOutboxId, type OutboxEntry, parseEntry } from './entry.js';
import type { OutboxIndex } from './rows.js';

/** What recovery found and did. */
export interface OutboxRecoveryReport {
  queued: number;
  /** Temp files removed. */
  tmpRemoved: number;
  /** `.eml` files without `.json` removed (never acknowledged). */
  halfWritten: number;
  /** Entries whose finishing (send done, or moved to failed/) was completed. */
  finished: number;
  /** Interrupted `retry` moves completed. */
  requeued: number;
  /** Damaged entries renamed `*.broken`. */
  broken: number;
  /** Index rows without files, removed. */
  staleRows: number;
}

/** Inputs of `recoverOutbox`. */
export interface OutboxRecoveryOptions {
  dir: string;
  index: OutboxIndex;
  log: Logger;
  now: number;
  /** Completes a finished entry (the Outbox's own finishing step). */
  finish(e: OutboxEntry): Promise<void>;
}

/** Bring `outbox/` to a consistent state; returns the queued entries. */
export async function recoverOutbox(
  o: OutboxRecoveryOptions,
): Promise<{ report: OutboxRecoveryReport; queued: OutboxEntry[] }> {
  const report: OutboxRecoveryReport = {
    queued: 0,
    tmpRemoved: 0,
    halfWritten: 0,
    finished: 0,
    requeued: 0,
    broken: 0,
    staleRows: 0,
  };
  const tmp = path.join(o.dir, 'tmp');
  const failed = path.join(o.dir, 'failed');
  for (const d of [o.dir, tmp, failed]) await mkdirDurable(d);

  for (const name of await readdir(tmp)) {
    await rm(path.join(tmp, name), { force: true, recursive: true });
    report.tmpRemoved++;
  }

  const emls = new Set<string>();
  const jsons = new Set<string>();
  for (const e of await readdir(o.dir, { withFileTypes: true })) {
    const name = e.name;
    if (name.includes('.tmp-')) {
      await rm(path.join(o.dir, name), { force: true });
      report.tmpRemoved++;
      continue;
    }
    if (!e.isFile()) continue; // a symbolic link is never followed (docs/security.md)
    const [, id, ext] = /^(.+)\.(eml|json)$/.exec(name) ?? [];
    if (id === undefined || !isOutboxId(id)) continue;
    (ext === 'eml' ? emls : jsons).add(id);
  }

  const queued: OutboxEntry[] = [];
  const aside = async (id: string, why: string, err?: unknown): Promise<void> => {
    for (const ext of ['json', 'eml']) {
      const f = path.join(o.dir, `${id}.${ext}`);
      await rename(f, `${f}.broken`).catch(() => undefined);
    }
    report.broken++;
    o.log.error(
      { id, err: err === undefined ? undefined : errorMessage(err) },
      `outbox entry ${why}: moved aside as *.broken`,
    );
  };

  for (const id of jsons) {
    let e: OutboxEntry;
    try {
      e = parseEntry(await readFile(path.join(o.dir, `${id}.json`), 'utf8'), id);
    } catch (err) {
      await aside(id, 'metadata unreadable', err);
      continue;
    }
    if (entryState(e) !== 'queued') {
      await o.finish(e);
      report.finished++;
      continue;
    }
    if (!emls.has(id)) {
      const parked = path.join(failed, `${id}.eml`);
      if (!(await present(parked))) {
        await aside(id, 'has no message file');
        continue;
      }
      await renameDurable(parked, path.join(o.dir, `${id}.eml`));
      report.requeued++;
    }
    await rm(path.join(failed, `${id}.json`), { force: true });
    queued.push(e);
  }

  for (const id of emls) {
    if (jsons.has(id)) continue;
    await rm(path.join(o.dir, `${id}.eml`), { force: true });
    report.halfWritten++;
    o.log.warn({ id }, 'removed a message whose acceptance did not complete (it was never acknowledged)');
  }
  if (report.tmpRemoved || report.halfWritten || report.broken) await fsyncDir(o.dir);

  const loaded = new Set(queued.map((e) => e.id));
  for (const id of o.index.queuedIds()) {
    if (loaded.has(id)) continue;
    o.index.remove(id);
    report.staleRows++;
  }
  for (const e of queued) o.index.put(e, dedupeKey(e));
  report.queued = queued.length;
  return { report, queued };
}

async function present(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
