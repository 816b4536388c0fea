/**
 * Turns an account's config into what the upstream modules need: endpoints with secrets
 * resolved and CA files read, and the right Fetcher for its protocol. Secrets are resolved at
 * each use (so a rotated `{file}` or `{command}` secret is picked up) and never logged.
 *
 * An `{oauth2}` password becomes `accessToken` (refreshed when it is about to expire, see
 * oauth/tokens.ts) plus `renewAccessToken` for long-lived users; it needs the data directory
 * (`EndpointContext`). Given a cache, a sign-in that the provider revoked also puts the
 * "sign in again" message into the account's local INBOX (once per revocation).
 */

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Cache, CacheAccount } from '../cache/cache.js';
import { type AccountConfig, oauth2Of, type Secret } from '../config/schema.js';
import { resolveOAuth2, resolveSecret, type SecretContext } from '../config/secrets.js';
import { ConfigError } from '../shared/errors.js';
import type { ImapChanges } from '../upstream/imap/journal-replay.js';
import { oauthTokens } from '../upstream/oauth/tokens.js';
import type { Fetcher, UpstreamEndpoint } from '../upstream/types.js';

/** What resolving an OAuth secret needs: the data directory; a cache for the INBOX notice. */
export interface EndpointContext {
  dataDir: string;
  log?: Logger;
  /** Deliver the "sign in again" message here (only callers serialised with the account's pulls). */
  cache?: Cache;
}

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
async function resolveEndpoint(
  acc: AccountConfig,
  key: 'incoming' | 'outgoing',
  s: ServerSettings,
  ctx?: EndpointContext,
): Promise<UpstreamEndpoint> {
  const account = acc.id;
  let ca: string | undefined;
  if (s.tlsCa) {
    try {
      ca = await readFile(s.tlsCa, 'utf8');
    } catch (err) {
      throw new ConfigError(`accounts.${account}.${key}.tlsCa: cannot read ${s.tlsCa}: ${(err as Error).message}`);
    }
  }
  const base = { host: s.host, port: s.port, tls: s.tls, ca, username: s.username };
  const secret = s.password;
  const oauth2 = oauth2Of(secret);
  if (oauth2) {
    const sctx = (force = false, notice = false): SecretContext => ({
      account,
      key: `${key}.password`,
      oauth: ctx && {
        tokens: oauthTokens(ctx.dataDir, ctx.log),
        force,
        notice: notice && ctx.cache ? { store: ctx.cache.account(account), email: acc.email } : undefined,
      },
    });
    const { accessToken } = await resolveOAuth2(oauth2, sctx(false, true));
    return {
      ...base,
      accessToken,
      renewAccessToken: async (force) => (await resolveOAuth2(oauth2, sctx(force))).accessToken,
    };
  }
  return { ...base, password: await resolveSecret(secret, { account, key: `${key}.password` }) };
}

/** The incoming endpoint of an account, secret resolved. */
export function incomingEndpoint(acc: AccountConfig, ctx?: EndpointContext): Promise<UpstreamEndpoint> {
  return resolveEndpoint(acc, 'incoming', acc.incoming, ctx);
}

/** The outgoing (SMTP) endpoint of an account, secret resolved; undefined for receive-only accounts. */
export async function outgoingEndpoint(
  acc: AccountConfig,
  ctx?: EndpointContext,
): Promise<UpstreamEndpoint | undefined> {
  return acc.outgoing && resolveEndpoint(acc, 'outgoing', acc.outgoing, ctx);
}

/** A fetcher for one pull of the account. */
export async function createFetcher(
  acc: AccountConfig,
  cache: Cache,
  log: Logger,
  changes?: ImapChanges,
): Promise<Fetcher> {
  const endpoint = await incomingEndpoint(acc, { dataDir: cache.dataDir, log, cache });
  const store = cache.account(acc.id);
  const inc = acc.incoming;
  // imported when a pull needs them: an idle daemon holds neither, POP3 accounts never load imapflow
  if (inc.protocol === 'pop3') {
    const { Pop3Fetcher } = await import('../upstream/pop3/fetcher.js');
    return new Pop3Fetcher({
      endpoint,
      store,
      log,
      keepOnServer: inc.keepOnServer,
      maxMessageSize: inc.maxMessageSize,
    });
  }
  const { ImapFetcher } = await import('../upstream/imap/fetcher.js');
  return new ImapFetcher({
    endpoint,
    store,
    cursors: cache,
    log,
    folders: inc.folders,
    maxMessageSize: inc.maxMessageSize,
    ...(changes ? { changes } : {}),
  });
}

/**
 * What the replay and the mirror use of an IMAP account's cache (`Cache.journal`, its local IMAP
 * view and upstream mirror); undefined for a POP3 account (nothing upstream to replay to).
 * The daemon passes this as `SyncService`'s `changes` when the local IMAP server is on.
 */
export function imapChangesOf(cache: Cache, acc: AccountConfig): ImapChanges | undefined {
  if (acc.incoming.protocol !== 'imap') return undefined;
  const id = acc.id;
  const rows = cache.account(id);
  const view = cache.mailboxes(id, { protocol: 'imap', onLocalDelete: acc.incoming.onLocalDelete });
  const mirror = cache.mirror(id);
  return {
    journal: cache.journal,
    store: {
      accountId: id,
      list: (folder) => rows.list(folder),
      select: (folder) => view.select(folder),
      read: (folder, uid) => view.read(folder, uid),
      applyUpstreamFlags: (folder, flags) => mirror.applyUpstreamFlags(folder, flags),
      applyUpstreamExpunges: (folder, keys) => mirror.applyUpstreamExpunges(folder, keys),
      noteUpstreamFolders: (folders) => mirror.noteUpstreamFolders(folders),
      localFolders: () => mirror.localFolders(),
      unresolvedChanges: (folder) => mirror.unresolvedChanges(folder),
    },
  };
}

/** Drain an IMAP account's change journal upstream on a connection of its own (no pull). */
export async function replayJournalOf(
  acc: AccountConfig,
  cache: Cache,
  log: Logger,
  changes: ImapChanges,
  signal?: AbortSignal,
): Promise<void> {
  const { replayAccount } = await import('../upstream/imap/journal-replay.js');
  const endpoint = await incomingEndpoint(acc, { dataDir: cache.dataDir, log, cache });
  await replayAccount(endpoint, { ...changes, cursors: cache, log, ...(signal ? { signal } : {}) });
}

/** The accounts as the cache opens them: id and the UIDL mode asked for (IMAP accounts: local). */
export function cacheAccounts(accounts: readonly AccountConfig[]): CacheAccount[] {
  return accounts.map((a) => ({ id: a.id, uidls: a.incoming.protocol === 'pop3' ? a.incoming.uidls : 'local' }));
}
