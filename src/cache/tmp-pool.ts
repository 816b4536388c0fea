/**
 * Temp files created ahead of need in one folder's `tmp/`, so that opening a message's file is
 * off the download's path (an open costs a thread-pool round trip and a directory update).
 *
 * Invariants:
 * - Each file is created with O_CREAT|O_EXCL, mode 0600, under a temp name recovery removes
 *   (`isOurTmpName`; UID 0, since no message owns it yet): an empty or partly written file left
 *   by a crash is only ever a temp file, removed at the next start-up (recovery.ts step 1).
 * - A file is handed out once; it becomes a message only by its owner's rename into `new/`
 *   after its data is fsynced (pending-write.ts). Spares never leave `tmp/`.
 * - `release()` closes and unlinks the spares; files already handed out are their owners'.
 */

import { rm } from 'node:fs/promises';
import path from 'node:path';
import { closeFd, createExclusiveFd } from '../shared/durable-fs.js';
import { tmpName } from './maildir.js';

/** An open, empty temp file. */
export interface TmpFile {
  fd: number;
  /** Absolute path in `tmp/`. */
  path: string;
}

/** Spare temp files of one `tmp/` directory. */
export class TmpPool {
  private spares: Promise<TmpFile>[] = [];

  constructor(
    private readonly tmpDir: string,
    private readonly spareCount: number,
  ) {}

  /** An open empty temp file: a spare when one is ready or being created, else a new one. */
  take(): Promise<TmpFile> {
    const next = this.spares.shift() ?? this.create();
    while (this.spares.length < this.spareCount) {
      const p = this.create();
      p.catch(() => undefined); // a failed spare fails the take() that gets it
      this.spares.push(p);
    }
    return next;
  }

  /** Close and remove the spares. */
  async release(): Promise<void> {
    const spares = this.spares.splice(0);
    await Promise.all(spares.map((p) => p.then(discardTmp, () => undefined)));
  }

  private async create(): Promise<TmpFile> {
    const file = path.join(this.tmpDir, tmpName(0));
    return { fd: await createExclusiveFd(file), path: file };
  }
}

/** Close a temp file and remove it; errors are ignored (recovery removes what is left). */
export async function discardTmp(t: TmpFile): Promise<void> {
  await closeFd(t.fd).catch(() => undefined);
  await rm(t.path, { force: true }).catch(() => undefined);
}
