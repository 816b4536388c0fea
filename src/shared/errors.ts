/**
 * The small error taxonomy of localpost. Errors are classified once, at the boundary where they
 * arise: a local client's mistake is a ClientError; an upstream failure is Temporary (retry
 * later; the default for anything unknown), Throttled (temporary: the server asks us to slow
 * down, so pulls back off), or Auth (temporary, but reported loudly). A permanent refusal is no
 * error class: SMTP replies are sorted per recipient (upstream/smtp/classify.ts). ConfigError
 * means the configuration is unusable (exit 78).
 */

/** A local client sent something wrong; answered with a protocol error, logged at info. */
export class ClientError extends Error {
  override name = 'ClientError';
}

/** An upstream failure worth retrying later: network, timeout, 4xx, or anything unknown. */
export class TemporaryError extends Error {
  override name = 'TemporaryError';
  /** Node's socket error code (ECONNREFUSED, ETIMEDOUT, ...) when there was one. */
  code?: string;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.code = options?.code;
  }
}

/** The upstream refused the login: temporary for retry purposes, but reported loudly. */
export class AuthError extends TemporaryError {
  override name = 'AuthError';
}

/**
 * The upstream asks us to slow down: POP3 `[SYS/TEMP]` or `[LOGIN-DELAY]` (RFC 2449
 * §8.1, RFC 3206), Microsoft's `-ERR Server Unavailable. 21`, IMAP `[UNAVAILABLE]`/`[LIMIT]`
 * (RFC 5530) or `[THROTTLED]`. Temporary, and never a wrong password: hammering such a server
 * gets the account locked, so automatic pulls back off. The message says so.
 */
export class ThrottledError extends TemporaryError {
  override name = 'ThrottledError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(`${message}: the server asks us to slow down; localpost backs off`, { ...options, code: 'ETHROTTLED' });
  }
}

/**
 * Server texts that mean "too busy / too many / come back later" even without a response code
 * (Microsoft's POP3 `Server Unavailable. 21`, "try again later", "too many connections").
 */
const THROTTLE_TEXT =
  /\bserver unavailable\b|\bthrottl|\btemporarily unavailable\b|\btry (again )?later\b|\btoo many (simultaneous |concurrent )?(connections|logins|login attempts|sessions|requests)\b|\bslow down\b/i;

/** True when a server's error text asks us to slow down (see `ThrottledError`). */
export function isThrottleText(text: string): boolean {
  return THROTTLE_TEXT.test(text);
}

/** The configuration is missing or invalid; the process exits 78 (EX_CONFIG). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  /** One line per problem, each starting with its path. */
  readonly problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(problems.length ? `${message}\n${problems.map((p) => `  ${p}`).join('\n')}` : message);
    this.problems = problems;
  }
}

/** Network error codes that mean "the upstream is not reachable right now". */
const OFFLINE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ENETDOWN',
  'EHOSTDOWN',
  'ECONNABORTED',
]);

/** True when the error (or its cause) says the upstream could not be reached at all. */
export function isOfflineError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && OFFLINE_CODES.has(code)) return true;
  }
  return false;
}

/** A short human message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
