/**
 * Which POP3 UIDLs an account serves (docs/clients.md, "Switching a client to localpost"):
 * `local`, the local UID in hex (invariant 5), or `upstream`, the provider's UIDL of each
 * message where it is usable, so a client that kept mail on the provider sees the UIDLs it
 * already knows and downloads nothing again.
 *
 * Invariants:
 * - The mode is fixed when the account's cache is created and never changes afterwards, so the
 *   UIDLs a client sees follow one rule for the life of the account (a config asking for
 *   another mode is only warned about). Its truth is the file
 *   `accounts/<id>/uidl-mode`, written durably before any message of the account exists;
 *   `accounts.uidl_mode` in state.db is a copy, so a lost state.db changes nothing.
 * - An account whose cache existed before modes were recorded keeps `local`: it already
 *   served hex UIDLs.
 * - A served upstream UIDL is a valid RFC 1939 UIDL (1 to 70 characters 0x21-0x7E) that can
 *   never equal a local one (8 to 13 hex digits, any case), and no two live messages of an
 *   account serve the same one; it is kept in the file name (`U=`, see maildir.ts) so
 *   recovery restores it, and a re-key never changes it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdirDurable, writeFileDurable } from '../shared/durable-fs.js';
import type { Ledger } from './ledger.js';
import { accountDir } from './maildir.js';

/** `local`: serve the local UID in hex; `upstream`: serve the provider's UIDL where usable. */
export type UidlMode = 'local' | 'upstream';

/** Name of the per-account file recording the account's UIDL mode (beside `next-uid`). */
export const UIDL_MODE_FILE = 'uidl-mode';

const RFC1939_UIDL = /^[\x21-\x7e]{1,70}$/;
/** What a local UIDL looks like (`uidl()` of maildir.ts), in either case for clients that fold it. */
const LOCAL_LIKE = /^[0-9a-f]{8,13}$/i;

/** True when an upstream UIDL may be served as it is (see the module comment). */
export function isServableUidl(u: string): boolean {
  return RFC1939_UIDL.test(u) && !LOCAL_LIKE.test(u);
}

const isMode = (s: string): s is UidlMode => s === 'local' || s === 'upstream';

/**
 * The mode recorded for an account: its `uidl-mode` file; `local` for an account directory
 * without one (created before modes were recorded); undefined when the account has no cache yet.
 */
export async function recordedUidlMode(dataDir: string, account: string): Promise<UidlMode | undefined> {
  const dir = accountDir(dataDir, account);
  try {
    const s = (await readFile(path.join(dir, UIDL_MODE_FILE), 'utf8')).trim();
    if (isMode(s)) return s;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return existsSync(dir) ? 'local' : undefined;
}

/**
 * Fix an account's mode before its first recovery: the recorded one if any (state.db's copy
 * when only that survived), else `wanted` for a new account. Writes the file and state.db's
 * copy. Returns the mode in force.
 */
export async function fixUidlMode(o: {
  dataDir: string;
  account: string;
  ledger: Ledger;
  wanted: UidlMode;
}): Promise<UidlMode> {
  const { dataDir, account, ledger } = o;
  const dir = accountDir(dataDir, account);
  const file = path.join(dir, UIDL_MODE_FILE);
  const inDb = ledger.uidlMode(account);
  const onDisk = existsSync(file) ? await recordedUidlMode(dataDir, account) : undefined;
  let mode: UidlMode;
  if (onDisk) mode = onDisk;
  else if (inDb.exists) mode = inDb.mode && isMode(inDb.mode) ? inDb.mode : 'local';
  else mode = existsSync(dir) ? 'local' : o.wanted;
  if (onDisk !== mode) {
    await mkdirDurable(dir);
    await writeFileDurable(file, `${mode}\n`);
  }
  if (inDb.mode !== mode) ledger.setUidlMode(account, mode);
  return mode;
}

/** The warning for a config that asks for another mode than the one recorded (log and `localpost check`). */
export function uidlModeWarning(configured: UidlMode, recorded: UidlMode): string {
  return `incoming.uidls: ${configured} is ignored: this account's cache was created serving ${recorded} UIDLs and keeps doing so, so the UIDLs mail clients know never change (docs/clients.md)`;
}
