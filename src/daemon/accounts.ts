/**
 * Turns an account's config into what the upstream modules need: endpoints with secrets
 * resolved and CA files read, and the right Fetcher for its protocol. Secrets are resolved at
 * each use (so a rotated `{file}` or `{command}` secret is picked up) and never logged.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import { ConfigError } from '../shared/errors.js';
import { ImapFetcher } from '../upstream/imap/fetcher.js';
import { Pop3Fetcher } from '../upstream/pop3/fetcher.js';
import type { Fetcher, UpstreamEndpoint } from '../upstream/types.js';
import type { AccountConfig, Secret } from './config/schema.js';
import { resolveSecret } from './config/secrets.js';

/** The connection settings shared by `incoming` and `outgoing`. */
interface ServerSettings {
  host: string;
  port: number;
  tls: UpstreamEndpoint['tls'];
  tlsCa?: string;
  username: string;
  password: Secret;
}

/** An endpoint from one server block of an account: CA file read, secret resolved. */
async function resolveEndpoint(account: string, key: 'incoming' | 'outgoing', s: ServerSettings): Promise<UpstreamEndpoint> {
  let ca: string | undefined;
  if (s.tlsCa) {
    try {
      ca = await readFile(s.tlsCa, 'utf8');
    } catch (err) {
      throw new ConfigError(`accounts.${account}.${key}.tlsCa: cannot read ${s.tlsCa}: ${(err as Error).message}`);
    }
  }
  const password = await resolveSecret(s.password, { account, key: `${key}.password` });
  return { host: s.host, port: s.port, tls: s.tls, ca, username: s.username, password };
}

/** The incoming endpoint of an account, secret resolved. */
export function incomingEndpoint(acc: AccountConfig): Promise<UpstreamEndpoint> {
  return resolveEndpoint(acc.id, 'incoming', acc.incoming);
}

/** The outgoing (SMTP) endpoint of an account, secret resolved; undefined for receive-only accounts. */
export async function outgoingEndpoint(acc: AccountConfig): Promise<UpstreamEndpoint | undefined> {
  return acc.outgoing && resolveEndpoint(acc.id, 'outgoing', acc.outgoing);
}

/** A fetcher for one pull of the account. */
export async function createFetcher(acc: AccountConfig, cache: Cache, log: Logger): Promise<Fetcher> {
  const endpoint = await incomingEndpoint(acc);
  const store = cache.account(acc.id);
  const inc = acc.incoming;
  if (inc.protocol === 'pop3') {
    return new Pop3Fetcher({ endpoint, store, log, keepOnServer: inc.keepOnServer, maxMessageSize: inc.maxMessageSize });
  }
  return new ImapFetcher({ endpoint, store, cursors: cache, log, folders: inc.folders, maxMessageSize: inc.maxMessageSize });
}
