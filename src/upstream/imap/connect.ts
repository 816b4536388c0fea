/**
 * Builds an imapflow client for an upstream endpoint. imapflow does not reconnect: one
 * instance is one connection attempt, so callers create a new
 * one per attempt. Its logger is our pino child; imapflow marks the password sensitive. With
 * OAuth the endpoint carries `accessToken` and imapflow authenticates with AUTHENTICATE XOAUTH2
 * (or OAUTHBEARER when only that is offered). A refused login comes out classified: AuthError
 * for wrong credentials, ThrottledError when the server asks us to slow down.
 */

import type { ImapFlowOptions } from 'imapflow';
import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { AuthError, isThrottleText, TemporaryError, ThrottledError } from '../../shared/errors.js';
import type { UpstreamEndpoint } from '../types.js';

/** Response codes that ask a client to slow down: RFC 5530 UNAVAILABLE and LIMIT, Gmail's THROTTLED. */
const THROTTLE_CODES = new Set(['UNAVAILABLE', 'LIMIT', 'THROTTLED']);

/** The parts of an imapflow error that say what the server answered. */
interface ImapflowError {
  code?: unknown;
  authenticationFailed?: boolean;
  serverResponseCode?: unknown;
  responseStatus?: unknown;
  responseText?: unknown;
  response?: unknown;
  reason?: unknown;
  message?: unknown;
}

/**
 * Classifies an imapflow error once, at the boundary:
 *
 * | imapflow error                                                         | becomes        |
 * |------------------------------------------------------------------------|----------------|
 * | `[UNAVAILABLE]`, `[LIMIT]`, `[THROTTLED]`, `ETHROTTLE` (Microsoft 365), or a NO/BAD/BYE text such as "Server Unavailable", "too many connections" | ThrottledError |
 * | `[INUSE]` (RFC 5530: another session holds a lock)                     | TemporaryError |
 * | `authenticationFailed` (a NO/BAD to LOGIN or AUTHENTICATE)             | AuthError      |
 * | anything else (network, TLS, protocol)                                 | unchanged      |
 *
 * A classified error keeps the original as `cause` and copies `authenticationFailed` and
 * `serverResponseCode`, so callers that look at imapflow's fields still can.
 */
export function classifyImapError(err: unknown): unknown {
  if (!err || typeof err !== 'object' || err instanceof TemporaryError) return err;
  const e = err as ImapflowError;
  const code = typeof e.serverResponseCode === 'string' ? e.serverResponseCode.toUpperCase() : undefined;
  const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);
  const text = [e.responseText, e.response, e.reason].map(str).filter(Boolean).join(' ');
  // `NO [AUTHENTICATIONFAILED] Authentication failed.`, as the server said it (without the tag)
  const said =
    str(e.responseText) && [str(e.responseStatus), code && `[${code}]`, str(e.responseText)].filter(Boolean).join(' ');
  const serverWords = (said || str(e.reason) || str(e.response) || str(e.message) || 'refused').slice(0, 300);
  const keep = (out: Error): Error =>
    Object.assign(out, {
      ...(e.authenticationFailed ? { authenticationFailed: true } : {}),
      ...(code ? { serverResponseCode: code } : {}),
    });
  const what = e.authenticationFailed ? 'IMAP login refused for now' : 'IMAP server refused';
  if ((code && THROTTLE_CODES.has(code)) || e.code === 'ETHROTTLE' || (text && isThrottleText(text))) {
    return keep(new ThrottledError(`${what}: ${serverWords}`, { cause: err }));
  }
  if (code === 'INUSE') return keep(new TemporaryError(`${what}: ${serverWords}`, { cause: err }));
  if (e.authenticationFailed)
    return keep(new AuthError(`IMAP login refused: ${serverWords}`, { cause: err, code: 'EAUTH' }));
  return err;
}

/** ImapFlow whose `connect()` rejects with classified errors (`classifyImapError`). */
class ClassifiedImapFlow extends ImapFlow {
  override async connect(): Promise<void> {
    try {
      await super.connect();
    } catch (err) {
      throw classifyImapError(err);
    }
  }
}

/** imapflow's default literal cap; it would buffer 1 GB a literal or line otherwise. */
const MAX_LITERAL = 64 * 1024 * 1024;

/**
 * How much imapflow may buffer of one server response (docs/guarantees.md#hostile-upstream-servers):
 * a literal of `maxLiteral` octets, a line of 16 MiB (a long SEARCH or LIST answer), 200,000 tokens
 * (about 100 bytes of heap each). Past any of them the connection fails.
 */
export function bufferLimits(maxLiteral = MAX_LITERAL): Partial<ImapFlowOptions> {
  const maxLineLength = 16 * 1024 * 1024;
  return {
    maxLiteralSize: maxLiteral,
    maxLineLength,
    maxResponseSize: maxLiteral + maxLineLength,
    maxResponseTokens: 200_000,
  };
}

/** A new, unconnected ImapFlow for the endpoint; its `connect()` classifies a refused login. */
export function createImapClient(
  endpoint: UpstreamEndpoint,
  log: Logger,
  extra: Partial<ImapFlowOptions> = {},
): ImapFlow {
  return new ClassifiedImapFlow({
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.tls === 'implicit',
    // true: STARTTLS required; false: never (plain text only when the config says tls: none)
    doSTARTTLS: endpoint.tls === 'starttls' ? true : endpoint.tls === 'none' ? false : undefined,
    // no servername: imapflow checks the certificate against host and sends SNI only for a name
    tls: { rejectUnauthorized: true, ...(endpoint.ca ? { ca: endpoint.ca } : {}) },
    // an access token goes out as XOAUTH2 (or OAUTHBEARER) through imapflow's `accessToken`
    auth: endpoint.accessToken
      ? { user: endpoint.username, accessToken: endpoint.accessToken }
      : { user: endpoint.username, pass: endpoint.password ?? '' },
    logger: imapLogger(log),
    disableAutoIdle: true,
    connectionTimeout: endpoint.connectTimeoutMs ?? 15_000,
    greetingTimeout: endpoint.connectTimeoutMs ?? 15_000,
    socketTimeout: endpoint.timeoutMs ?? 5 * 60_000,
    ...bufferLimits(),
    ...extra,
  });
}

/** imapflow's levels mapped to ours: its debug chatter (every command) goes one level lower. */
const IMAP_LEVELS: Record<string, string> = {
  trace: 'trace',
  debug: 'trace',
  info: 'debug',
  warn: 'warn',
  error: 'error',
};

/**
 * imapflow logs every command at debug; keep its chatter one level lower than ours.
 * `isLevelEnabled` lets imapflow skip serialising each response for a log line nobody reads
 * (without it, it re-compiles every FETCH response, body included: docs/benchmarks.md).
 */
function imapLogger(log: Logger) {
  const child = log.child({ component: 'imap' });
  return {
    isLevelEnabled: (level: string) => child.isLevelEnabled(IMAP_LEVELS[level] ?? 'fatal'),
    trace: (o: unknown) => child.trace(o as object),
    debug: (o: unknown) => child.trace(o as object),
    info: (o: unknown) => child.debug(o as object),
    warn: (o: unknown) => child.warn(o as object),
    error: (o: unknown) => child.error(o as object),
    fatal: (o: unknown) => child.fatal(o as object),
  };
}
