/**
 * The small error taxonomy of localpost (STYLE lesson 5). Errors are classified once, at the
 * boundary where they arise: a local client's mistake is a ClientError; an upstream failure is
 * Temporary (retry later; the default for anything unknown), Permanent (bounce / skip), or Auth
 * (temporary, but reported loudly). ConfigError means the configuration is unusable (exit 78).
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

/** The upstream refused something for good (5xx on a message or recipient). */
export class PermanentError extends Error {
  override name = 'PermanentError';
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
export const OFFLINE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ETIMEDOUT', 'EPIPE', 'ENETDOWN', 'EHOSTDOWN', 'ECONNABORTED',
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
