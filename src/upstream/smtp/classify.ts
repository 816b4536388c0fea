/**
 * Classifying what nodemailer reports, once, at the upstream boundary, so nothing
 * downstream guesses. The outcome of a send is either per-recipient results
 * or an error with a scope:
 *
 * | nodemailer says                                              | becomes                               |
 * |--------------------------------------------------------------|---------------------------------------|
 * | resolved; `rejectedErrors` for some recipients               | sent + per recipient failed/deferred  |
 * | EENVELOPE/EMESSAGE with a permanent 5xx (not 503)            | recipients failed (bounce)            |
 * | EENVELOPE, every RCPT refused                                | per recipient: 5xx failed, 4xx deferred |
 * | EENVELOPE/EMESSAGE with a 4xx                                | TemporaryError, scope `message`       |
 * | EAUTH with a 5xx (535: wrong password)                       | AuthError, scope `auth` (loud, kept)  |
 * | EAUTH with a 4xx (454: the server cannot check it now)       | TemporaryError, scope `connection`    |
 * | ETLS, EREQUIRETLS, ENOAUTH, ECONFIG                          | TemporaryError, scope `config` (loud, kept) |
 * | a failed certificate check (any code)                        | scope `config`, the fix (`tlsCa`, host) in the message |
 * | ESOCKET, ECONNECTION, ETIMEDOUT, EDNS, 421, anything unknown | TemporaryError, scope `connection`    |
 *
 * Nothing but a permanent reply to a recipient or to the message ever fails a recipient: a
 * changed password, a TLS problem or a network outage only delays: queued mail is never lost to them.
 */
import { AuthError, TemporaryError } from '../../shared/errors.js';
import { tlsHint } from '../tls-hint.js';

/** One recipient's result. */
export interface RcptResult {
  address: string;
  code?: number;
  response?: string;
}

/** Per-recipient outcome of one send. */
export interface SendResult {
  /** Accepted by the upstream (its 250 after DATA). */
  sent: RcptResult[];
  /** Refused for good. */
  failed: RcptResult[];
  /** Refused for now. */
  deferred: RcptResult[];
  /** The upstream's final reply, when the message was transferred. */
  response?: string;
}

/** Where a temporary failure lies: the whole upstream, or this message only. */
export type FailureScope = 'connection' | 'message' | 'auth' | 'config';

/** A temporary send failure with its scope. */
class SendError extends TemporaryError {
  override name = 'SendError';
  constructor(
    message: string,
    readonly scope: FailureScope,
    options?: { cause?: unknown; code?: string },
  ) {
    super(message, options);
  }
}

/** An upstream refusal of the login (temporary, reported loudly). */
class SendAuthError extends AuthError {
  override name = 'SendAuthError';
  readonly scope: FailureScope = 'auth';
}

/** The shape of nodemailer's errors that matters here. */
interface MailerError {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
  recipient?: string;
  rejectedErrors?: MailerError[];
}

/** A reply that retrying the same message would get again (RFC 5321 5yz, except 503). */
function isPermanentCode(code: number | undefined): boolean {
  return code !== undefined && code >= 500 && code < 600 && code !== 503;
}

const CONFIG_CODES = new Set(['ETLS', 'EREQUIRETLS', 'ENOAUTH', 'ECONFIG', 'EOAUTH2']);
const MESSAGE_CODES = new Set(['EENVELOPE', 'EMESSAGE', 'ESTREAM', 'EMAXRECIPIENTS']);

/** Per-recipient results from nodemailer's `rejectedErrors`. */
function split(errors: MailerError[] | undefined): { failed: RcptResult[]; deferred: RcptResult[] } {
  const failed: RcptResult[] = [];
  const deferred: RcptResult[] = [];
  for (const e of errors ?? []) {
    if (!e.recipient) continue;
    const r: RcptResult = { address: e.recipient, code: e.responseCode, response: e.response };
    (isPermanentCode(e.responseCode) ? failed : deferred).push(r);
  }
  return { failed, deferred };
}

/** Results of a send nodemailer resolved (some recipients may have been refused). */
export function classifyInfo(
  info: { accepted?: unknown[]; rejectedErrors?: unknown[]; response?: string },
  to: readonly string[],
): SendResult {
  const { failed, deferred } = split(info.rejectedErrors as MailerError[] | undefined);
  const refused = new Set([...failed, ...deferred].map((r) => r.address.toLowerCase()));
  const code = Number(/^\d{3}/.exec(info.response ?? '')?.[0] ?? 250);
  const sent = to
    .filter((a) => !refused.has(a.toLowerCase()))
    .map((address) => ({ address, code, response: info.response }));
  return { sent, failed, deferred, response: info.response };
}

/**
 * The outcome of a rejected send: per-recipient results when the upstream refused recipients
 * or the message, else throws a SendError / SendAuthError.
 */
export function classifyError(err: unknown, to: readonly string[]): SendResult {
  const e = (err ?? {}) as MailerError;
  const text = `${e.response ?? e.message ?? String(err)}${e.code && !e.response ? ` (${e.code})` : ''}`;
  if (e.code === 'EAUTH' && e.responseCode !== undefined && e.responseCode >= 400 && e.responseCode < 500) {
    // 454 4.7.0 "temporary authentication failure": the server's problem, not the password's.
    throw new SendError(`upstream could not check the login for now: ${text}`, 'connection', {
      cause: err,
      code: e.code,
    });
  }
  if (e.code === 'EAUTH') throw new SendAuthError(`upstream refused the login: ${text}`, { cause: err, code: e.code });
  const tls = tlsHint(err);
  if (tls)
    throw new SendError(`upstream TLS certificate check failed: ${text}; ${tls}`, 'config', {
      cause: err,
      code: e.code,
    });
  if (e.code && CONFIG_CODES.has(e.code))
    throw new SendError(`upstream configuration problem: ${text}`, 'config', { cause: err, code: e.code });
  if (e.code && MESSAGE_CODES.has(e.code) && e.responseCode !== 421) {
    const { failed, deferred } = split(e.rejectedErrors);
    const listed = new Set([...failed, ...deferred].map((r) => r.address.toLowerCase()));
    const rest = to.filter((a) => !listed.has(a.toLowerCase()));
    if (isPermanentCode(e.responseCode)) {
      // MAIL FROM or DATA refused for good: every recipient not refused on its own fails with it.
      failed.push(...rest.map((address) => ({ address, code: e.responseCode, response: e.response })));
      return { sent: [], failed, deferred };
    }
    if (rest.length === 0 && (failed.length || deferred.length)) return { sent: [], failed, deferred };
    throw new SendError(`upstream refused the message for now: ${text}`, 'message', { cause: err, code: e.code });
  }
  throw new SendError(`upstream unreachable or failing: ${text}`, 'connection', {
    cause: err,
    code: e.code ?? (e.responseCode ? String(e.responseCode) : undefined),
  });
}

/** The scope of any error thrown by a send (unknown errors count as the connection's). */
export function scopeOf(err: unknown): FailureScope {
  return err instanceof SendError || err instanceof SendAuthError ? err.scope : 'connection';
}
