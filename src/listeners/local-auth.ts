/**
 * Local logins: the user name and password a mail client types to reach one account
 * (`login.username` plus `login.password` or `login.passwordHash`).
 *
 * One instance serves both local listeners (POP3 and SMTP), so their failures count together.
 *
 * Invariants:
 * - Every comparison is timing-safe and an attempt costs the same whether the user exists, the
 *   password is wrong, or the user has a plain password or a hash: plain passwords are compared
 *   as SHA-256 digests with `timingSafeEqual`; hashes are scrypt
 *   (`scrypt$N$r$p$<salt b64>$<key b64>`); an unknown user is checked against a dummy entry,
 *   and whenever any configured user has a hash, an attempt that did not run scrypt runs one
 *   with the same parameters on a dummy salt. The answer is the same `undefined` either way.
 * - Failures slow the next failed attempt down, per user name and per remote address: the
 *   n-th failure counted for either waits `baseDelayMs × 2^(n−1)` (up to `maxDelayMs`) before
 *   the answer. A success is never delayed and resets its user name's count (not the address's:
 *   a guesser on the same loopback address cannot clear its record by logging in as itself).
 *   Counts are forgotten `forgetAfterMs` after their last failure; memory stays bounded.
 * - No password leaves this module; nothing here logs.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../shared/clock.js';
import { sleep } from '../shared/sleep.js';

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
  /** A failure count is forgotten this long after its last failure; default 15 minutes. */
  forgetAfterMs?: number;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  clock?: Clock;
  /** Injected for tests: told of every key derivation and comparison, so equal cost is checked by counting. */
  onWork?: (step: string) => void;
}

/** Most failure records kept (user names and addresses); beyond it, expired ones are dropped first. */
const MAX_RECORDS = 10_000;

const SCRYPT_DEFAULT = { N: 16384, r: 8, p: 1 };
const KEY_LEN = 32;

/** The cost parameters of a hash. */
interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, { ...opts, maxmem: 256 * opts.N * opts.r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

interface ParsedHash extends ScryptCost {
  salt: Buffer;
  key: Buffer;
}

/** Parses `scrypt$N$r$p$salt$key` (base64 salt and key); undefined when malformed. */
export function parsePasswordHash(hash: string): ParsedHash | undefined {
  const [, n, rs, ps, salt64, key64] =
    /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash) ?? [];
  if (salt64 === undefined || key64 === undefined) return undefined;
  const [N, r, p] = [Number(n), Number(rs), Number(ps)];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(salt64, 'base64');
  const key = Buffer.from(key64, 'base64');
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
  private readonly failures = new Map<string, { count: number; last: number }>();
  private readonly dummy: LocalUser = { accountId: '', username: '', password: randomBytes(24).toString('base64') };
  private readonly dummySalt = randomBytes(16);
  private readonly clock: Clock;
  /** The scrypt parameters of the first configured hash (what an attempt must cost), by hash text. */
  private reference?: { hash: string; parsed: ParsedHash | undefined };

  /** `users` may be a function, read at each login (so a config reload takes effect). */
  constructor(
    private readonly users: readonly LocalUser[] | (() => readonly LocalUser[]),
    private readonly opts: LocalAuthOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Returns the account id when `username`/`password` match a local login, else undefined,
   * after the failure delay. `remote` is the client's address. Never throws for bad input.
   */
  async verify(username: string, password: string, remote?: string): Promise<string | undefined> {
    const list = typeof this.users === 'function' ? this.users() : this.users;
    const user = list.find((u) => u.username === username);
    const ok = await this.matches(user, password, list);
    if (ok && user) {
      this.failures.delete(`u:${username}`);
      return user.accountId;
    }
    const n = Math.max(this.fail(`u:${username}`), remote === undefined ? 0 : this.fail(`a:${remote}`));
    await this.delay(n);
    return undefined;
  }

  /** The delay that follows the n-th consecutive failure. */
  delayFor(n: number): number {
    const base = this.opts.baseDelayMs ?? 500;
    return Math.min(this.opts.maxDelayMs ?? 8000, base * 2 ** Math.min(n - 1, 30));
  }

  /** Counts one failure for a user name (`u:`) or an address (`a:`); returns the count. */
  private fail(key: string): number {
    const now = this.clock.now();
    const forget = this.opts.forgetAfterMs ?? 15 * 60_000;
    const old = this.failures.get(key);
    const count = old && now - old.last < forget ? old.count + 1 : 1;
    if (!old && this.failures.size >= MAX_RECORDS) {
      for (const [k, v] of this.failures) if (now - v.last >= forget) this.failures.delete(k);
      if (this.failures.size >= MAX_RECORDS) this.failures.clear(); // bounded memory against random names
    }
    this.failures.set(key, { count, last: now });
    return count;
  }

  private delay(n: number): Promise<void> {
    const ms = this.delayFor(n);
    if (ms <= 0) return Promise.resolve();
    return (this.opts.sleep ?? sleep)(ms);
  }

  /** Same cost for every path (see the module comment); false for an unknown user. */
  private async matches(user: LocalUser | undefined, password: string, list: readonly LocalUser[]): Promise<boolean> {
    if (user?.passwordHash !== undefined) {
      const h = parsePasswordHash(user.passwordHash);
      if (h) {
        return this.equal(await this.derive(password, h.salt, h), h.key);
      }
      await this.pad(list, password);
      return false;
    }
    const same = this.equal(sha256(password), sha256((user ?? this.dummy).password ?? ''));
    await this.pad(list, password);
    return same && user !== undefined;
  }

  /** One scrypt with the configured hashes' parameters, when there are any. */
  private async pad(list: readonly LocalUser[], password: string): Promise<void> {
    const hash = list.find((u) => u.passwordHash !== undefined && parsePasswordHash(u.passwordHash))?.passwordHash;
    if (hash === undefined) return;
    if (this.reference?.hash !== hash) this.reference = { hash, parsed: parsePasswordHash(hash) };
    const h = this.reference.parsed;
    if (!h) return; // not reached: the hash was picked because it parses
    await this.derive(password, this.dummySalt, h);
  }

  /** scrypt with the parameters and key length of `h`. */
  private derive(password: string, salt: Buffer, h: ParsedHash): Promise<Buffer> {
    this.opts.onWork?.(`scrypt N=${h.N} r=${h.r} p=${h.p} length=${h.key.length}`);
    return scrypt(password, salt, h.key.length, { N: h.N, r: h.r, p: h.p });
  }

  private equal(a: Buffer, b: Buffer): boolean {
    this.opts.onWork?.(`compare ${a.length} bytes`);
    return timingSafeEqual(a, b);
  }
}
