/**
 * Local logins: the user name and password a mail client types to reach one account
 * (`login.username` plus `login.password` or `login.passwordHash`).
 *
 * One instance serves every local listener (POP3 and SMTP today), so their failures count
 * together; a listener passes the client's address and a `gone()` test, nothing else.
 *
 * Invariants:
 * - Every comparison is timing-safe and an attempt costs the same whether the user exists, the
 *   password is wrong, or the user has a plain password or a hash: plain passwords are compared
 *   as SHA-256 digests with `timingSafeEqual`; hashes are scrypt
 *   (`scrypt$N$r$p$<salt b64>$<key b64>`); an unknown user is checked against a dummy entry,
 *   and whenever any configured user has a hash, an attempt that did not run scrypt runs one
 *   with the same parameters on a dummy salt. The answer is the same either way.
 * - Guessing is throttled by `LoginThrottle` (login-throttle.ts): once a name or an address has
 *   a failure in the window, every answer for it, right password or wrong, waits the same delay,
 *   and only one such attempt is checked at a time (others: `throttled`, a temporary refusal).
 * - Key derivations go through a `DerivationQueue` (one at a time, eight waiting): beyond it an
 *   attempt is refused at once (`busy`), and an attempt whose client has gone is never derived.
 *   The accepted scrypt cost is bounded (`passwordHashProblem`), so one login takes well under a
 *   second and 128 MiB.
 * - `stop()` ends every delay and drops every waiting derivation: a stop never waits on logins.
 * - No password leaves this module; nothing here logs.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { sleep } from '../shared/sleep.js';
import { DerivationQueue } from './derivation-queue.js';
import { LoginThrottle } from './login-throttle.js';

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
  /** Delay once a name or address has one failure (doubling per further failure); default 500 ms. */
  baseDelayMs?: number;
  /** Longest delay; default 8 s. */
  maxDelayMs?: number;
  /** A failure count is forgotten this long after its last failure; default 15 minutes. */
  forgetAfterMs?: number;
  /** Key derivations run at once (default 1) and waiting (default 8). */
  derivations?: { concurrency?: number; maxQueued?: number };
  /** Injected for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  clock?: Clock;
  /**
   * Told of every key derivation run, comparison, requested delay and refusal, so cost and
   * throttling are checked by counting (the daemon logs them at trace level).
   */
  onWork?: (step: string) => void;
}

/** What a listener learns of a login attempt besides the credentials. */
export interface LoginAttempt {
  /** The client's address. */
  remote?: string;
  /** True once the client has gone: its key derivation is then dropped before it runs. */
  gone?: () => boolean;
}

/**
 * The outcome of a login: the account, or why not. `bad-credentials` is the only definitive
 * refusal; `throttled` (another attempt for this name or address is being answered), `busy` (too
 * many key derivations waiting) and `stopping` are temporary and checked nothing.
 */
export type LoginResult =
  | { ok: true; accountId: string }
  | { ok: false; reason: 'bad-credentials' | 'throttled' | 'busy' | 'stopping' };

const SCRYPT_DEFAULT = { N: 16384, r: 8, p: 1 };
const KEY_LEN = 32;
/** The most a configured hash may cost per login: memory (128·N·r bytes) and work (N·r·p). */
export const SCRYPT_LIMITS = { maxMemory: 128 * 2 ** 20, maxWork: 2 ** 20 };

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

/**
 * Why a hash's scrypt parameters are refused (not a power of two, or costlier than
 * `SCRYPT_LIMITS`), or undefined; a hash not of the `scrypt$N$r$p$…` shape is not judged here.
 */
export function passwordHashProblem(hash: string): string | undefined {
  const [, n, rs, ps] = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$/.exec(hash) ?? [];
  if (n === undefined || rs === undefined || ps === undefined) return undefined;
  const [N, r, p] = [Number(n), Number(rs), Number(ps)];
  if (N < 2 || !Number.isSafeInteger(N) || (N & (N - 1)) !== 0 || r < 1 || p < 1) {
    return `invalid scrypt parameters N=${n} r=${rs} p=${ps} (N must be a power of 2, r and p at least 1)`;
  }
  const memory = 128 * N * r;
  if (memory > SCRYPT_LIMITS.maxMemory || N * r * p > SCRYPT_LIMITS.maxWork) {
    return (
      `scrypt parameters N=${N} r=${r} p=${p} are too costly for a login (${Math.ceil(memory / 2 ** 20)} MiB, ` +
      `N×r×p=${N * r * p}; at most 128 MiB and N×r×p ≤ ${SCRYPT_LIMITS.maxWork}): ` +
      'make a new hash with `localpost hash-password`'
    );
  }
  return undefined;
}

/** Parses `scrypt$N$r$p$salt$key` (base64 salt and key); undefined when malformed or too costly. */
export function parsePasswordHash(hash: string): ParsedHash | undefined {
  const [, n, rs, ps, salt64, key64] =
    /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash) ?? [];
  if (salt64 === undefined || key64 === undefined || passwordHashProblem(hash) !== undefined) return undefined;
  const [N, r, p] = [Number(n), Number(rs), Number(ps)];
  const salt = Buffer.from(salt64, 'base64');
  const key = Buffer.from(key64, 'base64');
  if (salt.length < 8 || salt.length > 64 || key.length < 16 || key.length > 64) return undefined;
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

/** A derivation that did not run: the attempt is refused without an answer on the password. */
type NotRun = 'busy' | 'gone' | 'stopping';

/** Checks local logins with timing-safe comparisons, the throttle and the derivation queue. */
export class LocalAuth {
  private readonly throttle: LoginThrottle;
  private readonly queue: DerivationQueue;
  private readonly stopped = new AbortController();
  private readonly dummy: LocalUser = { accountId: '', username: '', password: randomBytes(24).toString('base64') };
  private readonly dummySalt = randomBytes(16);
  /** The scrypt parameters of the first configured hash (what an attempt must cost), by hash text. */
  private reference?: { hash: string; parsed: ParsedHash | undefined };

  /** `users` may be a function, read at each login (so a config reload takes effect). */
  constructor(
    private readonly users: readonly LocalUser[] | (() => readonly LocalUser[]),
    private readonly opts: LocalAuthOptions = {},
  ) {
    this.throttle = new LoginThrottle({ ...opts, windowMs: opts.forgetAfterMs });
    this.queue = new DerivationQueue(opts.derivations?.concurrency ?? 1, opts.derivations?.maxQueued ?? 8);
  }

  /**
   * Checks `username`/`password` and answers once the throttle's delay is over (see the module
   * comment). Never throws for bad input.
   */
  async verify(username: string, password: string, attempt: LoginAttempt = {}): Promise<LoginResult> {
    if (this.stopped.signal.aborted) return { ok: false, reason: 'stopping' };
    const admitted = this.throttle.begin(username, attempt.remote);
    if (!admitted) {
      this.opts.onWork?.('refused: throttled');
      return { ok: false, reason: 'throttled' };
    }
    try {
      const list = typeof this.users === 'function' ? this.users() : this.users;
      const user = list.find((u) => u.username === username);
      const ok = await this.matches(user, password, list, attempt.gone ?? (() => false));
      if (typeof ok === 'string') {
        this.opts.onWork?.(`refused: ${ok}`);
        return { ok: false, reason: ok === 'gone' ? 'bad-credentials' : ok };
      }
      if (!ok || !user) admitted.failed(); // at once: the client may not wait for the answer
      if (!(await this.delay(admitted.delayMs))) return { ok: false, reason: 'stopping' };
      if (!ok || !user) return { ok: false, reason: 'bad-credentials' };
      admitted.succeeded();
      return { ok: true, accountId: user.accountId };
    } finally {
      admitted.end();
    }
  }

  /** Ends every delay and drops every waiting derivation; later attempts get `stopping`. */
  stop(): void {
    this.stopped.abort();
    this.queue.stop();
  }

  /** Waits `ms` (the same for every outcome); false when `stop()` cut it short. */
  private async delay(ms: number): Promise<boolean> {
    if (ms <= 0) return true;
    this.opts.onWork?.(`delay ${ms}`);
    try {
      await (this.opts.sleep ?? sleep)(ms, this.stopped.signal);
      return !this.stopped.signal.aborted;
    } catch {
      return false;
    }
  }

  /** Same cost for every path (see the module comment); false for an unknown user. */
  private async matches(
    user: LocalUser | undefined,
    password: string,
    list: readonly LocalUser[],
    gone: () => boolean,
  ): Promise<boolean | NotRun> {
    if (user?.passwordHash !== undefined) {
      const h = parsePasswordHash(user.passwordHash);
      if (h) {
        const key = await this.derive(password, h.salt, h, gone);
        return typeof key === 'string' ? key : this.equal(key, h.key);
      }
      return (await this.pad(list, password, gone)) ?? false;
    }
    const same = this.equal(sha256(password), sha256((user ?? this.dummy).password ?? ''));
    return (await this.pad(list, password, gone)) ?? (same && user !== undefined);
  }

  /** One scrypt with the configured hashes' parameters, when there are any; why it did not run, if so. */
  private async pad(list: readonly LocalUser[], password: string, gone: () => boolean): Promise<NotRun | undefined> {
    const hash = list.find((u) => u.passwordHash !== undefined && parsePasswordHash(u.passwordHash))?.passwordHash;
    if (hash === undefined) return undefined;
    if (this.reference?.hash !== hash) this.reference = { hash, parsed: parsePasswordHash(hash) };
    const h = this.reference.parsed;
    if (!h) return undefined; // not reached: the hash was picked because it parses
    const key = await this.derive(password, this.dummySalt, h, gone);
    return typeof key === 'string' ? key : undefined;
  }

  /** scrypt with the parameters and key length of `h`, through the queue. */
  private async derive(password: string, salt: Buffer, h: ParsedHash, gone: () => boolean): Promise<Buffer | NotRun> {
    const done = await this.queue.run(() => {
      this.opts.onWork?.(`scrypt N=${h.N} r=${h.r} p=${h.p} length=${h.key.length}`);
      return scrypt(password, salt, h.key.length, { N: h.N, r: h.r, p: h.p });
    }, gone);
    if (done.ran) return done.value;
    return done.reason === 'stopped' ? 'stopping' : done.reason;
  }

  private equal(a: Buffer, b: Buffer): boolean {
    this.opts.onWork?.(`compare ${a.length} bytes`);
    return timingSafeEqual(a, b);
  }
}
