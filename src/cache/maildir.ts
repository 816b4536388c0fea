/**
 * Maildir / Maildir++ layout and file naming (docs/architecture.md, invariants 1, 2, 5).
 *
 * Layout per account: `<dataDir>/accounts/<id>/Maildir/{tmp,new,cur}` holds INBOX; every other
 * IMAP folder is `Maildir/.<encoded>/{tmp,new,cur}` plus an empty `maildirfolder` file. Folder
 * names map reversibly: the IMAP hierarchy separator `/` becomes `.`, and `%`, `.`, control
 * characters and characters unsafe on common filesystems become `%XX`. Non-ASCII stays UTF-8.
 *
 * A stored message is named `<unix-seconds>.L<UID hex>.localpost,S=<bytes>,W=<CRLF octets>,K=<key>`
 * in `new/` (W= counted while writing by the POP3 codec's `CrlfSizer`), then `,U=<hex of the
 * bytes>` when it serves an upstream UIDL (`uidl-mode.ts`; at most 140 digits), plus `:2,<flags>` once a
 * Maildir reader moves it to `cur/`. The name alone is enough to rebuild the index (the Maildir
 * is the journal); `parseName` tolerates other readers moving files to `cur/`, adding flags or
 * extra `,X=` fields. A file is never rewritten.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fsyncDir, mkdirDurable, writevFd } from '../shared/durable-fs.js';
import { CrlfSizer } from '../shared/pop3-wire/dot-stuffing.js';
import { HeaderEndFinder } from '../shared/pop3-wire/header-end.js';
import { INBOX } from './message-store.js';

/** The three Maildir subdirectories. */
const SUBDIRS = ['tmp', 'new', 'cur'] as const;

/** Upstream keys: `p<hex>` (POP3), `i<uidvalidity>_<uid>` (IMAP), `x<sha256 prefix>` (adopted); `l<hex>` local (`localKey`). */
const KEY_RE = /^[A-Za-z0-9_]+$/;

/** The key of a message created locally (APPEND, COPY, MOVE) until the upstream gives it one: `l<UID hex>`. */
export function localKey(uid: number): string {
  return `l${uid.toString(16)}`;
}

/** True for a local key (`localKey`): never an upstream identity, so never matched against an upstream listing. */
export function isLocalKey(key: string): boolean {
  return /^l[0-9a-f]+$/.test(key);
}

/** True when `key` may appear in a file name as `K=`. */
export function isValidKey(key: string): boolean {
  return KEY_RE.test(key);
}

/** The POP3 UIDL of a local UID: at least 8 upper-case hex digits (invariant 5). */
export function uidl(uid: number): string {
  return uid.toString(16).toUpperCase().padStart(8, '0');
}

/** Canonical folder name: IMAP's INBOX is case-insensitive. */
export function normalizeFolder(folder: string): string {
  if (folder.toUpperCase() === INBOX) return INBOX;
  if (folder === '' || folder.includes('\0')) throw new Error(`invalid folder name ${JSON.stringify(folder)}`);
  return folder;
}

// `%` (the escape), `.` (the Maildir++ separator), controls, and Windows/macOS-unsafe characters.
const UNSAFE = /[%.\x00-\x1f\x7f\\:*?"<>|]/g;

/** Maildir++ directory name of a folder (`''` for INBOX, `.Lists.node` for `Lists/node`). */
export function encodeFolder(folder: string): string {
  const f = normalizeFolder(folder);
  if (f === INBOX) return '';
  const segs = f
    .split('/')
    .map((s) => s.replace(UNSAFE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`));
  return `.${segs.join('.')}`;
}

/** Inverse of `encodeFolder` for a `.`-prefixed directory name; undefined if it is not one. */
export function decodeFolder(dirName: string): string | undefined {
  if (!dirName.startsWith('.') || dirName === '.' || dirName === '..') return undefined;
  const name = dirName
    .slice(1)
    .split('.')
    .map((s) => s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))))
    .join('/');
  return name === '' ? undefined : name;
}

/** `<dataDir>/accounts/<id>`. */
export function accountDir(dataDir: string, account: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(account) || account.startsWith('.')) {
    throw new Error(`invalid account id ${JSON.stringify(account)}`);
  }
  return path.join(dataDir, 'accounts', account);
}

/** `<dataDir>/accounts/<id>/Maildir`. */
export function maildirPath(dataDir: string, account: string): string {
  return path.join(accountDir(dataDir, account), 'Maildir');
}

/** Where recovery puts files it will not index (`<name>.broken`). */
export function quarantinePath(dataDir: string, account: string): string {
  return path.join(accountDir(dataDir, account), 'quarantine');
}

/** Directory of a folder inside a Maildir root. */
export function folderDir(maildir: string, folder: string): string {
  const enc = encodeFolder(folder);
  return enc ? path.join(maildir, enc) : maildir;
}

/** Create a folder's `tmp/new/cur` (and `maildirfolder` for Maildir++ folders) durably. */
export async function ensureFolder(maildir: string, folder: string): Promise<string> {
  const dir = folderDir(maildir, folder);
  for (const sub of SUBDIRS) await mkdirDurable(path.join(dir, sub));
  const marker = path.join(dir, 'maildirfolder');
  if (dir !== maildir && !existsSync(marker)) {
    const fh = await open(marker, 'a', 0o600);
    await fh.close();
    await fsyncDir(dir);
  }
  return dir;
}

/** Parsed localpost message file name. */
export interface ParsedName {
  /** Unix seconds when it was stored. */
  storedSec: number;
  uid: number;
  size: number;
  wsize: number;
  key: string;
  /** Maildir flags after `:2,` ('' when absent). */
  flags: string;
  /** The upstream UIDL it serves (`U=`); absent: the local UID in hex. */
  uidl?: string;
}

/** The base name of a freshly stored message (no flags; it goes into `new/`). */
export function formatName(n: Omit<ParsedName, 'flags'>): string {
  if (!isValidKey(n.key)) throw new Error(`invalid key ${JSON.stringify(n.key)}`);
  const u = n.uidl === undefined ? '' : `,U=${Buffer.from(n.uidl, 'latin1').toString('hex')}`;
  return `${n.storedSec}.L${uidl(n.uid)}.localpost,S=${n.size},W=${n.wsize},K=${n.key}${u}`;
}

/** Split a Maildir name into base and info (`:2,FLAGS`; `;` and `!` separators also accepted). */
export function splitInfo(name: string): { base: string; flags: string } {
  const [, base, info] = /^([^:;!]*)[:;!](.*)$/.exec(name) ?? [];
  if (base === undefined || info === undefined) return { base: name, flags: '' };
  return { base, flags: info.startsWith('2,') ? info.slice(2) : '' };
}

/** Parse one of our file names (in `new/` or `cur/`); undefined for a foreign name. */
export function parseName(name: string): ParsedName | undefined {
  const { base, flags } = splitInfo(name);
  const [head, ...fields] = base.split(',');
  const [, sec, hex] = /^(\d{1,12})\.L([0-9A-Fa-f]{1,13})\.localpost$/.exec(head ?? '') ?? [];
  if (sec === undefined || hex === undefined) return undefined;
  const f = new Map<string, string>();
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq > 0 && !f.has(field.slice(0, eq))) f.set(field.slice(0, eq), field.slice(eq + 1));
  }
  const s = f.get('S');
  const w = f.get('W');
  const k = f.get('K');
  if (!s || !/^\d{1,15}$/.test(s) || !w || !/^\d{1,15}$/.test(w) || !k || !isValidKey(k)) return undefined;
  const uid = parseInt(hex, 16);
  if (uid < 1) return undefined;
  const parsed: ParsedName = { storedSec: Number(sec), uid, size: Number(s), wsize: Number(w), key: k, flags };
  // an unreadable U= leaves the local UIDL, the safe default
  const u = f.get('U');
  if (u && /^(?:[0-9a-f]{2}){1,70}$/.test(u)) parsed.uidl = Buffer.from(u, 'hex').toString('latin1');
  return parsed;
}

/** The same file name with another `K=` (flags and any extra fields kept). */
export function replaceKey(name: string, newKey: string): string {
  if (!isValidKey(newKey)) throw new Error(`invalid key ${JSON.stringify(newKey)}`);
  const { base } = splitInfo(name);
  const rest = name.slice(base.length);
  return base.replace(/,K=[A-Za-z0-9_]+/, `,K=${newKey}`) + rest;
}

/** The same base name (no `:2,` info) under another local UID: S=, W=, K=, U= and any extra fields kept. */
export function replaceUid(base: string, uid: number): string {
  const out = base.replace(/^(\d{1,12})\.L[0-9A-Fa-f]{1,13}\.localpost(?=,|$)/, `$1.L${uidl(uid)}.localpost`);
  if (out === base || splitInfo(base).base !== base) throw new Error(`not a base name of ours: ${base}`);
  return out;
}

let tmpCounter = 0;
/** A temp file name for `tmp/`: `<uid>.<pid>.<n>`. */
export function tmpName(uid: number): string {
  return `${uid}.${process.pid}.${++tmpCounter}`;
}

/**
 * True for temp names we create (always stale at start-up, since we are the only writer),
 * including the files created ahead of need (`tmp-pool.ts`, UID 0: no message yet).
 */
export function isOurTmpName(name: string): boolean {
  return /^\d+\.\d+\.\d+$/.test(name);
}

/** Write every buffer fully at the handle's current position. */
export function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  return writeFully((group) => fh.writev(group).then((r) => r.bytesWritten), bufs);
}

/** Write every buffer fully with `writev` (one call per 512 buffers, more after a short write). */
async function writeFully(writev: (bufs: Buffer[]) => Promise<number>, bufs: Buffer[]): Promise<void> {
  let list = bufs;
  while (list.length) {
    const group = list.slice(0, 512);
    let n = await writev(group);
    const total = group.reduce((a, b) => a + b.length, 0);
    if (n === 0 && total > 0) throw new Error('write returned 0 bytes');
    const rest: Buffer[] = [];
    for (const b of group) {
      if (n >= b.length) n -= b.length;
      else {
        rest.push(n ? b.subarray(n) : b);
        n = 0;
      }
    }
    list = rest.concat(list.slice(512));
  }
}

/** Bytes a message writer holds before it writes them out: most messages take one writev. */
const WRITE_AT = 256 * 1024;

/**
 * A writable over an open temp file (a raw descriptor) that counts bytes (`S=`) and CRLF octets
 * (`W=`) of every chunk on its way to disk. Chunks are gathered up to WRITE_AT bytes and written
 * with one writev; the rest when the stream ends, so 'finish' means every byte is written. It
 * never closes or syncs the descriptor; its owner does.
 */
export class MessageFileWriter extends Writable {
  /** Bytes accepted so far. */
  bytes = 0;
  /** Bytes the kernel took so far (equals `bytes` after 'finish'). */
  written = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The writev under way: the descriptor must not be closed before it settles. */
  private writing: Promise<void> = Promise.resolve();
  private readonly sizer = new CrlfSizer();
  private readonly eoh = new HeaderEndFinder();
  constructor(private readonly fd: number) {
    super({ highWaterMark: WRITE_AT });
  }
  /** `W=` of everything written so far. */
  get wsize(): number {
    return this.sizer.size;
  }
  /** True once an empty line ending the header has been written. */
  get hasEoh(): boolean {
    return this.eoh.found;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hold(chunk);
    if (this.heldBytes >= WRITE_AT) this.flushHeld(cb);
    else cb();
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    for (const c of chunks) this.hold(c.chunk);
    if (this.heldBytes >= WRITE_AT) this.flushHeld(cb);
    else cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.flushHeld(cb);
  }
  private hold(b: Buffer): void {
    this.bytes += b.length;
    this.sizer.update(b);
    this.eoh.update(b);
    this.held.push(b);
    this.heldBytes += b.length;
  }
  private flushHeld(cb: (err?: Error | null) => void): void {
    const bufs = this.held;
    const n = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    if (!n) {
      cb();
      return;
    }
    this.writing = writeFully((group) => writevFd(this.fd, group), bufs).then(
      () => {
        this.written += n;
        cb();
      },
      (err: Error) => cb(err),
    );
  }
  /** Resolves once no write is under way (before closing the descriptor after a failure). */
  settled(): Promise<void> {
    return this.writing;
  }
}

/**
 * Current path of a message file relative to its folder directory: the recorded one, or found by
 * UID in `new/` or `cur/` (another Maildir reader moved it); undefined when gone.
 */
export async function locateFile(
  maildir: string,
  row: { folder: string; file: string; uid: number },
): Promise<string | undefined> {
  const dir = folderDir(maildir, row.folder);
  if (existsSync(path.join(dir, row.file))) return row.file;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(path.join(dir, sub)).catch(() => [] as string[]);
    const name = names.find((n) => parseName(n)?.uid === row.uid);
    if (name) return `${sub}/${name}`;
  }
  return undefined;
}

/** True when the file has an empty line ending its header; reads only up to that line. */
export async function fileHasEoh(file: string): Promise<boolean> {
  const finder = new HeaderEndFinder();
  for await (const chunk of createReadStream(file, { highWaterMark: 16 * 1024 })) {
    if (finder.update(chunk as Buffer) >= 0) return true;
  }
  return false;
}

/** Read a file once: its size, `W=`, and the hex SHA-256 of its content. */
export async function digestFile(file: string): Promise<{ size: number; wsize: number; sha256: string }> {
  const hash = createHash('sha256');
  const sizer = new CrlfSizer();
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    const b = chunk as Buffer;
    hash.update(b);
    sizer.update(b);
    size += b.length;
  }
  return { size, wsize: sizer.size, sha256: hash.digest('hex') };
}
