/**
 * The on-disk invariants (docs/architecture.md), checked from the outside (no localpost code is
 * trusted to report on itself): used after every crash, disk-full and torture round.
 *
 * - `cacheFaults()`: every file in `new/`/`cur/` has our name, its size equals `S=`, its CRLF
 *   size equals `W=`, UIDs and (folder, key) pairs are unique, `tmp/` is empty (after a
 *   start-up recovery), and state.db's rows name exactly those files (`rowsMayLag`: a file
 *   may still wait for its row, as between a rename and its batch's commit).
 * - `outboxFaults()`: every `<id>.eml` has its `<id>.json` and back, every JSON parses, `tmp/` is
 *   empty.
 * - `messageIds()` / `upstreamIds()`: Message-IDs of a local or upstream Maildir, to prove
 *   "nothing lost, nothing duplicated".
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CrlfSizer } from '../../src/shared/pop3-wire/index.js';

const NAME = /^\d+\.L([0-9A-F]+)\.localpost,S=(\d+),W=(\d+),K=([A-Za-z0-9_]+)(?::2,[A-Za-z]*)?$/;

/** Folder directories of a Maildir (INBOX and `.Folder`s). */
function folders(maildir: string): Array<{ folder: string; dir: string }> {
  const out = [{ folder: 'INBOX', dir: maildir }];
  if (!existsSync(maildir)) return out;
  for (const e of readdirSync(maildir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name.startsWith('.'))
      out.push({ folder: e.name.slice(1), dir: path.join(maildir, e.name) });
  }
  return out;
}

/** Violations of the cache invariants for one account (empty when all hold). */
export function cacheFaults(
  dataDir: string,
  account = 'alice',
  opts: { tmpMayHoldFiles?: boolean; rowsMayLag?: boolean } = {},
): string[] {
  const faults: string[] = [];
  const maildir = path.join(dataDir, 'accounts', account, 'Maildir');
  const uids = new Set<number>();
  const keys = new Set<string>();
  const files = new Map<number, string>();
  for (const { folder, dir } of folders(maildir)) {
    const tmp = path.join(dir, 'tmp');
    if (!opts.tmpMayHoldFiles && existsSync(tmp) && readdirSync(tmp).length)
      faults.push(`${folder}/tmp holds ${readdirSync(tmp).join(' ')}`);
    for (const sub of ['new', 'cur']) {
      const d = path.join(dir, sub);
      if (!existsSync(d)) continue;
      for (const name of readdirSync(d)) {
        const m = NAME.exec(name);
        if (!m) {
          faults.push(`foreign name ${folder}/${sub}/${name}`);
          continue;
        }
        const uid = Number.parseInt(m[1]!, 16);
        const bytes = readFileSync(path.join(d, name));
        if (bytes.length !== Number(m[2])) faults.push(`${name}: ${bytes.length} bytes, S=${m[2]} (half-written)`);
        const sizer = new CrlfSizer();
        sizer.update(bytes);
        if (sizer.size !== Number(m[3])) faults.push(`${name}: CRLF size ${sizer.size}, W=${m[3]}`);
        if (uids.has(uid)) faults.push(`UID ${uid} used twice`);
        if (keys.has(`${folder}\0${m[4]}`)) faults.push(`key ${m[4]} twice in ${folder} (duplicate)`);
        uids.add(uid);
        keys.add(`${folder}\0${m[4]}`);
        files.set(uid, `${sub}/${name}`);
      }
    }
  }
  const dbFile = path.join(dataDir, 'state.db');
  if (existsSync(dbFile)) {
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT uid, file FROM messages WHERE account = ?').all(account) as Array<{
        uid: number;
        file: string;
      }>;
      for (const r of rows) {
        const f = files.get(r.uid);
        if (!f) faults.push(`row for UID ${r.uid} (${r.file}) has no file (lost)`);
        else if (path.basename(f) !== path.basename(r.file))
          faults.push(`row for UID ${r.uid} names ${r.file}, the file is ${f}`);
      }
      const rowUids = new Set(rows.map((r) => r.uid));
      // A file without its row is legal between a file's rename and its batch's commit.
      if (!opts.rowsMayLag) for (const [uid, f] of files) if (!rowUids.has(uid)) faults.push(`file ${f} has no row`);
    } finally {
      db.close();
    }
  }
  return faults;
}

/**
 * Violations of the outbox invariants (empty when all hold). `running`: a daemon may be at
 * work, so its temp files (an acceptance in `tmp/`, a JSON rewrite `<id>.json.tmp-*`) are
 * not faults; they are not queue entries, and start-up recovery removes any a crash leaves.
 */
export function outboxFaults(dataDir: string, opts: { running?: boolean } = {}): string[] {
  const faults: string[] = [];
  const dir = path.join(dataDir, 'outbox');
  if (!existsSync(dir)) return faults;
  const names = readdirSync(dir).filter(
    (n) => n !== 'tmp' && n !== 'failed' && !n.endsWith('.broken') && !(opts.running && n.includes('.tmp-')),
  );
  const ids = (ext: string) => new Set(names.filter((n) => n.endsWith(ext)).map((n) => n.slice(0, -ext.length)));
  const emls = ids('.eml');
  const jsons = ids('.json');
  for (const id of emls) if (!jsons.has(id)) faults.push(`${id}.eml without .json (half-written)`);
  for (const id of jsons) {
    if (!emls.has(id)) faults.push(`${id}.json without .eml`);
    try {
      JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8'));
    } catch {
      faults.push(`${id}.json does not parse`);
    }
  }
  for (const n of names) if (!/\.(eml|json)$/.test(n)) faults.push(`stray file outbox/${n}`);
  const tmp = path.join(dir, 'tmp');
  if (!opts.running && existsSync(tmp) && readdirSync(tmp).length)
    faults.push(`outbox/tmp holds ${readdirSync(tmp).join(' ')}`);
  return faults;
}

/** The Message-ID header of a message (or undefined). */
export function messageIdOf(bytes: Buffer): string | undefined {
  const text = bytes.subarray(0, 65536).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  return /^Message-ID:[ \t]*(\S+)/im.exec(head)?.[1];
}

/** Message-IDs of every file in a Maildir's new/ and cur/ (a list: duplicates show). */
export function maildirIds(maildir: string): string[] {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const d = path.join(maildir, sub);
    if (!existsSync(d)) continue;
    for (const n of readdirSync(d)) out.push(messageIdOf(readFileSync(path.join(d, n))) ?? `(no id: ${n})`);
  }
  return out;
}

/** Message-IDs of a local account's INBOX and Trash (a local deletion moves a message to Trash). */
export function localIds(dataDir: string, account = 'alice', withTrash = true): string[] {
  const maildir = path.join(dataDir, 'accounts', account, 'Maildir');
  return [...maildirIds(maildir), ...(withTrash ? maildirIds(path.join(maildir, '.Trash')) : [])];
}

/** Elements present more than once. */
export function duplicates(xs: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const x of xs) (seen.has(x) ? dup : seen).add(x);
  return [...dup];
}
