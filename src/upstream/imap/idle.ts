/**
 * IMAP IDLE on INBOX (RFC 2177): a long-lived connection per account that calls `onNewMail`
 * when the server announces new messages, so the daemon pulls at once instead of at the next
 * scheduled tick. imapflow does not reconnect, so after any drop a new client is made after a
 * growing delay (1 s doubling to 5 min, reset after a healthy connection).
 */
import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import { freshEndpoint, type UpstreamEndpoint } from '../types.js';
import { createImapClient } from './connect.js';

export interface IdleWatcherOptions {
  endpoint: UpstreamEndpoint;
  log: Logger;
  onNewMail: () => void;
  /** Restart IDLE this often (RFC 2177 asks clients to re-issue within 29 minutes). */
  maxIdleMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Keeps one IDLE connection open on INBOX, reconnecting after drops. */
export class IdleWatcher {
  readonly name = 'imap-idle';
  private client?: ImapFlow;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private backoff: number;
  /** Whether the IDLE connection is currently up. */
  connected = false;

  constructor(private readonly opts: IdleWatcherOptions) {
    this.backoff = opts.minBackoffMs ?? 1000;
  }

  async start(): Promise<void> {
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    if (c) {
      try { await Promise.race([c.logout(), new Promise((r) => setTimeout(r, 2000))]); } catch { /* closing anyway */ }
      c.close();
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { log } = this.opts;
    let endpoint;
    try {
      endpoint = await freshEndpoint(this.opts.endpoint); // an OAuth token may have expired since the last connection
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'IDLE: no access token');
      this.scheduleReconnect();
      return;
    }
    // imapflow idles by itself when the connection is inactive; maxIdleTime restarts IDLE.
    const client = createImapClient(endpoint, log, {
      disableAutoIdle: false,
      maxIdleTime: this.opts.maxIdleMs ?? 25 * 60_000,
      socketTimeout: 30 * 60_000,
    });
    this.client = client;
    client.on('error', (err: Error) => log.debug({ err: err.message }, 'idle connection error'));
    client.on('close', () => {
      this.connected = false;
      if (this.client === client) this.client = undefined;
      this.scheduleReconnect();
    });
    client.on('exists', (data: { count: number; prevCount: number }) => {
      if (data.count > data.prevCount) {
        log.debug({ count: data.count, prev: data.prevCount }, 'IDLE: new mail');
        this.opts.onNewMail();
      }
    });
    try {
      await client.connect();
      await client.mailboxOpen('INBOX', { readOnly: true });
      if (this.stopped) { client.close(); return; }
      this.connected = true;
      this.backoff = this.opts.minBackoffMs ?? 1000;
      log.debug('IDLE watching INBOX');
      void client.idle().catch(() => undefined);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'IDLE connection failed');
      client.close();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 5 * 60_000);
    this.timer = setTimeout(() => { this.timer = undefined; void this.connect(); }, delay);
    this.timer.unref();
  }
}
