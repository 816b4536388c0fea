/**
 * Local logins: the user name and password a mail client types to reach one account
 * (`login.username` plus `login.password` or `login.passwordHash`, INTERFACE "Local protocols").
 *
 * Invariants:
 * - Every comparison is timing-safe and costs the same whether the user exists or not: plain
 *   passwords are compared as SHA-256 digests with `timingSafeEqual`; hashes are scrypt
 *   (`scrypt$N$r$p$<salt b64>$<key b64>`); an unknown user is checked against a dummy entry.
 * - Failures slow the next attempt down: each failed login for a user name doubles the delay
 *   applied before the answer (from `baseDelayMs` up to `maxDelayMs`); a success resets it.
 *   The delay is per user name, so one client guessing cannot lock another account out.
 * - No password leaves this module; nothing here logs.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** One local login entry. */
export interface LocalUser {
  accountId: string;
  username: string;
  /** Exactly one of password and passwordHash is set. */
  password?: string;
  passwordHash?: string;
}

/** Options of `LocalAuth`. */
export interface LocalAuthOptions {
  /** Delay after the first failure (doubling per further failure); default 500 ms. */
  baseDelayMs?: number;
  /** Longest delay; default 8 s. */
  maxDelayMs?: number;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
}

const SCRYPT_DEFAULT = { N: 16384, r: 8, p: 1 };
const KEY_LEN = 32;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, { ...opts, maxmem: 256 * opts.N! * opts.r! }, (err, key) => (err ? reject(err) : resolve(key))));
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** Parses `scrypt$N$r$p$salt$key` (base64 salt and key); undefined when malformed. */
export function parsePasswordHash(hash: string): ParsedHash | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { N, r, p, salt, key };
}

/** Hashes a password for `login.passwordHash` (`scrypt$16384$8$1$<salt>$<key>`). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LEN, SCRYPT_DEFAULT);
  const { N, r, p } = SCRYPT_DEFAULT;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Checks local logins with timing-safe comparisons and a growing delay after failures. */
export class LocalAuth {
  private readonly failures = new Map<string, number>();
  private readonly dummy: LocalUser = { accountId: '', username: '', password: randomBytes(24).toString('base64') };

  /** `users` may be a function, read at each login (so a config reload takes effect). */
  constructor(private readonly users: readonly LocalUser[] | (() => readonly LocalUser[]), private readonly opts: LocalAuthOptions = {}) {}

  /**
   * Returns the account id when `username`/`password` match a local login, else undefined,
   * after the failure delay. Never throws for bad input.
   */
  async verify(username: string, password: string): Promise<string | undefined> {
    const list = typeof this.users === 'function' ? this.users() : this.users;
    const user = list.find((u) => u.username === username);
    const ok = await this.matches(user ?? this.dummy, password);
    if (ok && user) {
      this.failures.delete(username);
      return user.accountId;
    }
    const n = (this.failures.get(username) ?? 0) + 1;
    if (this.failures.size > 10_000) this.failures.clear(); // bounded memory against random names
    this.failures.set(username, n);
    await this.delay(n);
    return undefined;
  }

  /** The delay that follows the n-th consecutive failure. */
  delayFor(n: number): number {
    const base = this.opts.baseDelayMs ?? 500;
    return Math.min(this.opts.maxDelayMs ?? 8000, base * 2 ** Math.min(n - 1, 30));
  }

  private delay(n: number): Promise<void> {
    const ms = this.delayFor(n);
    if (ms <= 0) return Promise.resolve();
    return (this.opts.sleep ?? ((t) => new Promise((r) => setTimeout(r, t))))(ms);
  }

  private async matches(user: LocalUser, password: string): Promise<boolean> {
    if (user.passwordHash !== undefined) {
      const h = parsePasswordHash(user.passwordHash);
      if (!h) return false;
      const key = await scrypt(password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p });
      return timingSafeEqual(key, h.key);
    }
    return timingSafeEqual(sha256(password), sha256(user.password ?? ''));
  }
}
