/**
 * One file per account, `<dataDir>/oauth/<account>.json` (mode 0600, directory 0700), written
 * atomically and durably (writeFileDurable). Its plain part says what `status` needs without a
 * key: whether the account is signed in, or since when it needs a new sign-in and why. The
 * tokens themselves are sealed with AES-256-GCM (a random 96-bit IV per write, the account id
 * as additional data, so a file copied to another account does not open), with the key named in
 * `key` (keyring.ts).
 *
 * Invariant: a refresh token leaves this file only when the provider said `invalid_grant` (then
 * `state` becomes `invalid` and `sealed` is dropped) or when `localpost auth` replaces it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurable } from '../../shared/durable-fs.js';
import { AuthError } from '../../shared/errors.js';
import { type KeySource, mkdirOAuth } from './keyring.js';

/** The secret part of a sign-in. */
export interface TokenSecrets {
  refreshToken: string;
  accessToken?: string;
  /** When the access token expires (ms since the epoch). */
  expiresAt?: number;
  scope?: string;
}

/** AES-256-GCM ciphertext, base64 fields. */
export interface Sealed {
  iv: string;
  tag: string;
  data: string;
}

/** The on-disk record of an account's sign-in. */
export interface TokenFile {
  version: 1;
  account: string;
  clientId: string;
  tokenUrl: string;
  /** `ok`: signed in; `invalid`: the provider refused the refresh token, sign in again. */
  state: 'ok' | 'invalid';
  /** When the file was last written (ms). */
  updatedAt: number;
  /** When the provider answered invalid_grant (ms), for `state: invalid`. */
  invalidatedAt?: number;
  /** The provider's error and description, for `state: invalid`. */
  reason?: string;
  /** When the "sign in again" message was put into the local INBOX (ms). */
  noticeAt?: number;
  /** Where the key is (keyring.ts). */
  key?: KeySource;
  sealed?: Sealed;
}

/** The token file of an account. */
export function tokenFilePath(dataDir: string, account: string): string {
  return path.join(dataDir, 'oauth', `${account}.json`);
}

/** Reads an account's token file; undefined when there is none. A damaged file needs a new sign-in. */
export async function readTokenFile(dataDir: string, account: string): Promise<TokenFile | undefined> {
  const file = tokenFilePath(dataDir, account);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const t = JSON.parse(text) as TokenFile;
    if (t.version !== 1 || t.account !== account) throw new Error('not a token file of this account');
    return t;
  } catch (err) {
    throw new AuthError(`${file} is damaged (${(err as Error).message}): run \`localpost auth ${account}\``, {
      code: 'EOAUTH_SIGNIN',
    });
  }
}

/** Writes an account's token file atomically and durably (0600). */
export async function writeTokenFile(dataDir: string, t: TokenFile): Promise<void> {
  await mkdirOAuth(dataDir);
  await writeFileDurable(tokenFilePath(dataDir, t.account), `${JSON.stringify(t, null, 2)}\n`, 0o600);
}

/** Encrypts the secrets for `account`. */
export function seal(key: Buffer, account: string, secrets: TokenSecrets): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(account, 'utf8'));
  const data = Buffer.concat([c.update(JSON.stringify(secrets), 'utf8'), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Decrypts; a wrong key or a tampered file is an AuthError (sign in again). */
export function unseal(key: Buffer, account: string, s: Sealed): TokenSecrets {
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'));
    d.setAAD(Buffer.from(account, 'utf8'));
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    const text = Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]).toString('utf8');
    const v = JSON.parse(text) as TokenSecrets;
    if (typeof v.refreshToken !== 'string') throw new Error('no refresh token');
    return v;
  } catch {
    throw new AuthError(
      `the saved sign-in of account "${account}" cannot be decrypted (another key?): run \`localpost auth ${account}\``,
      { code: 'EOAUTH_SIGNIN' },
    );
  }
}

/** The sign-in state of an OAuth account, for `localpost status` (no key needed). */
export interface AuthStatus {
  method: 'oauth2';
  /** `signed-in`; `sign-in-required` (the provider refused the saved sign-in); `not-signed-in` (never ran `localpost auth`). */
  state: 'signed-in' | 'sign-in-required' | 'not-signed-in';
  /** When the provider refused it (ms), for `sign-in-required`. */
  since?: number;
  reason?: string;
}

/** Reads the plain part of an account's token file (a damaged file counts as sign-in required). */
export async function readAuthStatus(dataDir: string, account: string): Promise<AuthStatus> {
  try {
    const t = await readTokenFile(dataDir, account);
    if (!t) return { method: 'oauth2', state: 'not-signed-in' };
    if (t.state === 'invalid' || !t.sealed) {
      return {
        method: 'oauth2',
        state: 'sign-in-required',
        ...(t.invalidatedAt ? { since: t.invalidatedAt } : {}),
        ...(t.reason ? { reason: t.reason } : {}),
      };
    }
    return { method: 'oauth2', state: 'signed-in' };
  } catch (err) {
    return { method: 'oauth2', state: 'sign-in-required', reason: (err as Error).message };
  }
}
