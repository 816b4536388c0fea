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
import type { AccountConfig } from './config/schema.js';
import { resolveSecret } from './config/secrets.js';

/** The incoming endpoint of an account, secret resolved. */
export async function incomingEndpoint(acc: AccountConfig): Promise<UpstreamEndpoint> {
  const inc = acc.incoming;
  let ca: string | undefined;
  if (inc.tlsCa) {
    try {
      ca = await readFile(inc.tlsCa, 'utf8');
    } catch (err) {
      throw new ConfigError(`accounts.${acc.id}.incoming.tlsCa: cannot read ${inc.tlsCa}: ${(err as Error).message}`);
    }
  }
  const password = await resolveSecret(inc.password, { account: acc.id, key: 'incoming.password' });
  return { host: inc.host, port: inc.port, tls: inc.tls, ca, username: inc.username, password };
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
