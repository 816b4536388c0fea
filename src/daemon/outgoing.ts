/**
 * The sending half of the daemon, as components (see lifecycle.ts): the outbox (opened over the
 * cache's state.db, with start-up recovery), the delivery loop, the connectivity monitor and the
 * local SMTP listener. Built here from the config so that `src/listeners` and `src/upstream`
 * never see the config schema or each other.
 *
 * - Senders (one pool of `outgoing.maxConnections` nodemailer connections per account) are built lazily with the secret
 *   resolved at first use; a config reload closes them so the next send uses the new settings.
 * - "Back online" from the connectivity monitor flushes the outbox at once and pulls every
 *   account that is not backing off after failed pulls (sync.ts); the delivery loop's own
 *   failures are fed back to the monitor as hints.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import { SENT } from '../cache/message-store.js';
import { Outbox } from '../cache/outbox/outbox.js';
import type { RetryPolicy } from '../cache/retry-policy.js';
import { UpstreamLimits } from '../cache/upstream-limits.js';
import { listenerTls } from '../config/local-cert.js';
import type { Config } from '../config/schema.js';
import { LocalAuth } from '../listeners/local-auth.js';
import { SmtpListener } from '../listeners/smtp/server.js';
import type { SubmissionAccount } from '../listeners/smtp/submission.js';
import type { Clock } from '../shared/clock.js';
import { errorMessage } from '../shared/errors.js';
import type { Sender } from '../upstream/smtp/sender.js';
import { outgoingEndpoint } from './accounts.js';
import { ConnectivityMonitor, endpointsOf } from './connectivity.js';
import { DeliveryService, type SentCopy } from './delivery.js';
import { mailboxesOf } from './imap-listener.js';
import type { Component } from './lifecycle.js';
import { localUsers } from './pop3-listener.js';
import type { SyncService } from './sync.js';

/** The outbox retry policy of a config. */
export function retryPolicy(cfg: Config): RetryPolicy {
  return { initial: cfg.outbox.retry.initial, max: cfg.outbox.retry.max, maxAge: cfg.outbox.maxAge };
}

/**
 * What the SMTP listener knows of each account. Its size limit is the smaller of
 * `outgoing.maxMessageSize` and the SIZE the upstream advertised (`learnt`, once known).
 */
export function submissionAccounts(
  cfg: Config,
  learnt: (account: string) => number | undefined = () => undefined,
): Map<string, SubmissionAccount> {
  return new Map(
    cfg.accounts.map((a) => [
      a.id,
      {
        id: a.id,
        maxMessageSize: Math.min(a.outgoing?.maxMessageSize ?? 0, learnt(a.id) ?? Number.POSITIVE_INFINITY),
        canSend: Boolean(a.outgoing),
        ...(a.outgoing?.allowAnyFrom ? {} : { senders: [a.email, ...a.aliases].map((e) => e.toLowerCase()) }),
      },
    ]),
  );
}

/** Dependencies, read lazily (the cache and sync start before these components). */
export interface OutgoingDeps {
  config: () => Config;
  cache: () => Cache;
  sync: () => SyncService | undefined;
  log: Logger;
  clock?: Clock;
  /** The local logins, shared with the POP3 listener so failures count across both. */
  auth?: LocalAuth;
}

/** The outbox, delivery loop, connectivity monitor and SMTP listener of a daemon. */
export class Outgoing {
  outbox?: Outbox;
  delivery?: DeliveryService;
  connectivity?: ConnectivityMonitor;
  smtp?: SmtpListener;
  /** The upstream SIZE limits learnt so far (opened with the outbox). */
  limits?: UpstreamLimits;
  private senders = new Map<string, Promise<Sender | undefined>>();

  constructor(private readonly d: OutgoingDeps) {}

  /** Close the pooled connections; the next send builds them from the current config. */
  reload(): void {
    const old = this.senders;
    this.senders = new Map();
    for (const s of old.values())
      void s.then(
        (x) => x?.close(),
        () => undefined,
      );
    void this.delivery?.run();
  }

  /** The sender of an account (undefined without `outgoing`). */
  senderFor(account: string): Promise<Sender | undefined> {
    let s = this.senders.get(account);
    if (!s) {
      const acc = this.d.config().accounts.find((a) => a.id === account);
      s = (async () => {
        const endpoint = acc
          ? await outgoingEndpoint(acc, { dataDir: this.d.config().dataDir, log: this.d.log })
          : undefined;
        const log = this.d.log.child({ component: 'smtp-upstream', account });
        if (!endpoint) return undefined;
        // nodemailer is imported at the first send: an idle daemon does not hold it
        const { NodemailerSender } = await import('../upstream/smtp/sender.js');
        return new NodemailerSender({
          endpoint,
          log,
          maxConnections: acc?.outgoing?.maxConnections ?? 1,
          onServerSize: (size) => {
            if (!this.limits || this.limits.get(account) === (size > 0 ? size : undefined)) return;
            log.info({ size }, 'upstream SIZE limit learnt');
            this.limits
              .set(account, size)
              .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not record the upstream SIZE'));
          },
        });
      })();
      s.catch(() => this.senders.delete(account)); // a bad secret is retried at the next attempt
      this.senders.set(account, s);
    }
    return s;
  }

  /**
   * Where a sent message is filed: a copy in the account's local Sent folder, which every client
   * of the local IMAP server sees. POP3 account: the local `Sent`. IMAP account with
   * `outgoing.saveSent`: that folder, through the change journal (`cache/mailboxes.ts`), so the
   * upload happens once, in order with the other changes, and the next pull recognises the copy
   * instead of downloading it again. IMAP account without it: the provider files its own copy
   * (Gmail, Microsoft 365), which a pull of its Sent folder brings.
   */
  sentCopy(account: string): SentCopy | undefined {
    const acc = this.d.config().accounts.find((a) => a.id === account);
    if (!acc) return undefined;
    const imap = acc.incoming.protocol === 'imap';
    const folder = imap ? acc.outgoing?.saveSent : SENT;
    if (!folder) return undefined;
    return async (file) => {
      const store = mailboxesOf(this.d.cache(), acc);
      if (!store.folder(folder)) await store.createFolder(folder);
      await store.append(folder, await readFile(file), { flags: ['\\Seen'] });
      if (imap) this.d.sync()?.localChange(acc.id);
    };
  }

  /** The outbox, once its component started (before every component that uses it). */
  private openOutbox(): Outbox {
    if (!this.outbox) throw new Error('the outbox is not open');
    return this.outbox;
  }

  /** The four components, in start order: outbox, delivery, connectivity, SMTP listener. */
  components(): [Component, Component, Component, Component] {
    const d = this.d;
    const log = d.log;
    return [
      {
        name: 'outbox',
        start: async () => {
          const cache = d.cache();
          this.limits = await UpstreamLimits.open(d.config().dataDir);
          this.outbox = await Outbox.open({
            dataDir: d.config().dataDir,
            db: cache.stateDb,
            log: log.child({ component: 'outbox' }),
            clock: d.clock,
            bounceStore: (id) => (d.config().accounts.some((a) => a.id === id) ? cache.account(id) : undefined),
          });
          const r = this.outbox.recovery;
          if (r && (r.tmpRemoved || r.halfWritten || r.finished || r.requeued || r.broken))
            log.info({ ...r }, 'outbox recovered');
        },
        stop: async () => {
          this.outbox?.close();
        },
      },
      {
        name: 'delivery',
        start: async () => {
          this.delivery = new DeliveryService({
            outbox: this.openOutbox(),
            senderFor: (a) => this.senderFor(a),
            policy: () => retryPolicy(d.config()),
            log: log.child({ component: 'delivery' }),
            clock: d.clock,
            sentCopy: (a) => this.sentCopy(a),
            onReachability: (a, ok) => this.connectivity?.report(a, 'outgoing', ok),
          });
          this.delivery.start();
        },
        stop: async () => {
          await this.delivery?.stop();
          for (const s of this.senders.values())
            await s.then(
              (x) => x?.close(),
              () => undefined,
            );
          this.senders.clear();
        },
      },
      {
        name: 'connectivity',
        start: async () => {
          const c = d.config().connectivity;
          this.connectivity = new ConnectivityMonitor({
            endpoints: () => endpointsOf(d.config().accounts),
            intervalMs: c.probeInterval,
            timeoutMs: c.probeTimeout,
            log: log.child({ component: 'connectivity' }),
            clock: d.clock,
            onBackOnline: () => {
              void this.delivery?.flush();
              // automatic: an account backing off after failed pulls (not hammered into a lockout) keeps waiting
              void d
                .sync()
                ?.autoSyncAll('reconnect')
                .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'pull after reconnect failed'));
            },
          });
          this.connectivity.start();
        },
        stop: async () => {
          await this.connectivity?.stop();
        },
      },
      {
        name: 'smtp-listener',
        start: async () => {
          const cfg = d.config();
          const l = cfg.listen.smtp;
          this.smtp = new SmtpListener({
            hosts: l.hosts,
            port: l.port,
            tls: listenerTls(l.tls, cfg.dataDir),
            log: log.child({ component: 'smtp' }),
            auth: d.auth ?? new LocalAuth(() => localUsers(d.config())),
            maxClients: l.maxConnections,
            maxClientsPerAddress: l.maxConnectionsPerAddress,
            accounts: () => submissionAccounts(d.config(), (a) => this.limits?.get(a)),
            outbox: this.openOutbox(),
          });
          await this.smtp.start();
        },
        stop: async () => {
          await this.smtp?.stop();
        },
      },
    ];
  }
}
