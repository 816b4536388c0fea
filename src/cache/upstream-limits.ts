/**
 * What each account's upstream SMTP server advertised as its SIZE limit, learnt at each
 * successful connection and kept in `<dataDir>/upstream-limits.json`, so that the local SMTP
 * listener can refuse an oversized message at submission (552) instead of bouncing it later.
 *
 * Invariants: the file is replaced whole and durably (write, fsync, rename, directory fsync),
 * and only when a value changes; a missing or unreadable file means "not known yet" (the
 * configured `maxMessageSize` alone applies), never a failure.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurable } from '../shared/durable-fs.js';

/** Learnt upstream SIZE limits by account id. */
export class UpstreamLimits {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly sizes: Map<string, number>,
  ) {}

  /** Load the limits of `dataDir` (none when the file is missing or unreadable). */
  static async open(dataDir: string): Promise<UpstreamLimits> {
    const file = path.join(dataDir, 'upstream-limits.json');
    const sizes = new Map<string, number>();
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object')
        for (const [k, v] of Object.entries(parsed)) if (Number.isSafeInteger(v) && v > 0) sizes.set(k, v);
    } catch {
      // not learnt yet
    }
    return new UpstreamLimits(file, sizes);
  }

  /** The learnt SIZE of an account, or undefined. */
  get(account: string): number | undefined {
    return this.sizes.get(account);
  }

  /** Record what the upstream advertised (0 or less: it states no limit, forget any). */
  set(account: string, size: number): Promise<void> {
    const known = this.sizes.get(account);
    if (size > 0 ? known === size : known === undefined) return this.writing;
    if (size > 0) this.sizes.set(account, size);
    else this.sizes.delete(account);
    const data = `${JSON.stringify(Object.fromEntries(this.sizes), null, 2)}\n`;
    this.writing = this.writing.catch(() => undefined).then(() => writeFileDurable(this.file, data));
    return this.writing;
  }
}
