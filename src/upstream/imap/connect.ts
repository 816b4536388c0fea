/**
 * Builds an imapflow client for an upstream endpoint. imapflow does not reconnect: one
 * instance is one connection attempt (libraries.md §2, pitfall F12), so callers create a new
 * one per attempt. Its logger is our pino child; imapflow marks the password sensitive. With
 * OAuth the endpoint carries `accessToken` and imapflow authenticates with AUTHENTICATE XOAUTH2
 * (or OAUTHBEARER when only that is offered).
 */
import { ImapFlow } from 'imapflow';
import type { ImapFlowOptions } from 'imapflow';
import type { Logger } from 'pino';
import type { UpstreamEndpoint } from '../types.js';

/** A new, unconnected ImapFlow for the endpoint. */
export function createImapClient(endpoint: UpstreamEndpoint, log: Logger, extra: Partial<ImapFlowOptions> = {}): ImapFlow {
  return new ImapFlow({
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.tls === 'implicit',
    // true: STARTTLS required; false: never (plain text only when the config says tls: none)
    doSTARTTLS: endpoint.tls === 'starttls' ? true : endpoint.tls === 'none' ? false : undefined,
    // no servername: imapflow checks the certificate against host and sends SNI only for a name
    tls: { rejectUnauthorized: true, ...(endpoint.ca ? { ca: endpoint.ca } : {}) },
    // an access token goes out as XOAUTH2 (or OAUTHBEARER) through imapflow's `accessToken`
    auth: endpoint.accessToken ? { user: endpoint.username, accessToken: endpoint.accessToken } : { user: endpoint.username, pass: endpoint.password ?? '' },
    logger: imapLogger(log),
    disableAutoIdle: true,
    connectionTimeout: endpoint.connectTimeoutMs ?? 15_000,
    greetingTimeout: endpoint.connectTimeoutMs ?? 15_000,
    socketTimeout: endpoint.timeoutMs ?? 5 * 60_000,
    ...extra,
  });
}

/** imapflow logs every command at debug; keep its chatter one level lower than ours. */
function imapLogger(log: Logger) {
  const child = log.child({ component: 'imap' });
  return {
    trace: (o: unknown) => child.trace(o as object),
    debug: (o: unknown) => child.trace(o as object),
    info: (o: unknown) => child.debug(o as object),
    warn: (o: unknown) => child.warn(o as object),
    error: (o: unknown) => child.error(o as object),
    fatal: (o: unknown) => child.fatal(o as object),
  };
}
