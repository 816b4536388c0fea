/**
 * The local SMTP listener: smtp-server
 * configured for loopback submission, listening on every configured host (127.0.0.1 and ::1
 * by default, port 1025).
 *
 * Options and why:
 * - AUTH PLAIN and LOGIN, also without TLS (`allowInsecureAuth`: loopback); mail only after
 *   AUTH (`authOptional: false`). NTLM, CRAM-MD5 and XOAUTH2 are not offered; `AUTH NTLM` gets
 *   smtp-server's 504 (documented as unsupported).
 * - SIZE (the largest account limit before AUTH, the account's after), 8BITMIME, SMTPUTF8,
 *   PIPELINING; DSN and ENHANCEDSTATUSCODES stay hidden.
 * - STARTTLS only with a configured certificate. Without one the command is disabled and
 *   hidden, so smtp-server's built-in certificate (whose private key is public) is never used.
 *   TLS 1.2 and later unless the listener's legacy profile is on (`../tls-options.ts`, shared
 *   with POP3; smtp-server's own default would be TLS 1.0).
 * - No reverse DNS lookups; smtp-server's fixed 100 ms greeting delay (early-talker check)
 *   stays.
 * - Limits: the connection slots shared with POP3 (`maxClients`, `maxClientsPerAddress`, an idle
 *   connection not logged in closed to make room, then 421; `../connection-slots.ts`), smtp-server's 16 KiB `maxCommandLength`
 *   (a longer line gets 421 and a close), the idle `socketTimeout`, and the login, command and
 *   DATA deadlines of `connection.ts` against clients that trickle bytes.
 *
 * One smtp-server instance serves all addresses: the first host is its own listening socket,
 * every further host is a plain net.Server handing its connections to it, so limits and
 * `stop()` cover them all. `stop()` stops accepting, lets running transactions finish for up
 * to `closeTimeoutMs`, then closes what is left (an unfinished DATA is never queued).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { SMTPServerOptions } from 'smtp-server';
import { bunyanLogger } from '../../shared/log-adapter.js';
import { ConnectionSlots } from '../connection-slots.js';
import { listenOn } from '../listen.js';
import type { LocalAuth } from '../local-auth.js';
import { type ListenerTlsFiles, loadListenerTls } from '../tls-options.js';
import { type ConnectionDeadlines, DEFAULT_DEADLINES, LocalpostSmtpServer } from './connection.js';
import { type SubmissionAccount, type SubmissionOutbox, submissionHandlers } from './submission.js';

/** Options of `SmtpListener`. */
export interface SmtpListenerOptions {
  hosts: string[];
  /** 0 picks a free port (the same one on every host when possible). */
  port: number;
  /** PEM files and the TLS profile (`../tls-options.ts`); enables STARTTLS. */
  tls?: ListenerTlsFiles;
  auth: LocalAuth;
  accounts: () => ReadonlyMap<string, SubmissionAccount>;
  outbox: SubmissionOutbox;
  log: Logger;
  /** Name in the greeting and EHLO reply; default `localpost`. */
  name?: string;
  /** Idle timeout of a session; default 5 minutes. */
  socketTimeoutMs?: number;
  /** How long `stop()` waits for running sessions; default 5 s. */
  closeTimeoutMs?: number;
  /** Connections open at once (`../connection-slots.ts`); default 50. */
  maxClients?: number;
  /** Connections open at once from one client address; default 10. */
  maxClientsPerAddress?: number;
  /** The login deadline of a connection arriving while over half the slots are taken; default 10 s. */
  busyLoginTimeoutMs?: number;
  /** Deadlines against slow clients (login, one command line, one DATA body); see connection.ts. */
  deadlines?: Partial<ConnectionDeadlines>;
}

/** One bound address. */
export interface SmtpAddress {
  host: string;
  port: number;
}

/** The local SMTP server. */
export class SmtpListener {
  private server?: LocalpostSmtpServer;
  private readonly extra: net.Server[] = [];
  private bound: SmtpAddress[] = [];

  constructor(private readonly o: SmtpListenerOptions) {}

  /** Addresses actually bound. */
  get addresses(): SmtpAddress[] {
    return [...this.bound];
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.bound[0]?.port ?? 0;
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.server?.connections.size ?? 0;
  }

  async start(): Promise<void> {
    const o = this.o;
    const log = o.log;
    const sizeFor = (user: string) => o.accounts().get(user)?.maxMessageSize;
    const maxSize = () => Math.max(0, ...[...o.accounts().values()].map((a) => a.maxMessageSize));
    const options: SMTPServerOptions = {
      name: o.name ?? 'localpost',
      banner: 'localpost ready',
      disableReverseLookup: true,
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      authOptional: false,
      size: maxSize(),
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      socketTimeout: o.socketTimeoutMs ?? 5 * 60_000,
      closeTimeout: o.closeTimeoutMs ?? 5_000,
      logger: bunyanLogger(log) as unknown as SMTPServerOptions['logger'],
      ...submissionHandlers({
        auth: o.auth,
        accounts: o.accounts,
        outbox: o.outbox,
        log,
        gone: (session) => this.server?.isGone(session.id) ?? true,
      }),
    };
    if (o.tls) {
      Object.assign(options, await loadListenerTls(o.tls));
    } else {
      Object.assign(options, { disabledCommands: ['STARTTLS'], hideSTARTTLS: true });
    }
    const deadlines = { ...DEFAULT_DEADLINES, ...o.deadlines };
    const slots = new ConnectionSlots({
      max: o.maxClients,
      maxPerAddress: o.maxClientsPerAddress,
      loginTimeoutMs: deadlines.login,
      busyLoginTimeoutMs: o.busyLoginTimeoutMs,
    });
    const server = new LocalpostSmtpServer(options, sizeFor, deadlines, slots);
    server.on('error', (err: Error) => log.warn({ err: err.message }, 'SMTP listener error'));
    server.onSlowClient = (reason) => log.info({ reason }, 'closing a slow or idle connection');
    server.onRefused = (why) => {
      // every connection in the way is logged in or busy: rare, but log a flood once per hundred
      if (slots.refused % 100 === 1) log.warn({ ...slots.policy, why }, 'SMTP connection limit reached: refusing');
    };
    this.server = server;
    try {
      let port = o.port;
      for (const host of o.hosts) {
        const sock =
          this.bound.length === 0 ? server.server : net.createServer((s) => server.server.emit('connection', s));
        try {
          port = await listenOn(sock, host, port);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // ::1 (or 127.0.0.1) missing on this machine: serve the other loopback rather than nothing.
          if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
            log.warn({ host, err: (err as Error).message }, 'cannot listen on this address; skipped');
            continue;
          }
          throw err;
        }
        if (sock !== server.server) this.extra.push(sock);
        this.bound.push({ host, port });
      }
      if (!this.bound.length) throw new Error(`cannot listen on any of ${o.hosts.join(', ')}`);
    } catch (err) {
      await this.stop();
      throw err;
    }
    log.info({ addresses: this.bound, starttls: Boolean(o.tls) }, 'SMTP listener ready');
  }

  /** Stop accepting, let sessions finish (bounded by closeTimeoutMs), close the rest. */
  async stop(): Promise<void> {
    const extra = this.extra.splice(0);
    await Promise.all(extra.map((s) => new Promise<void>((r) => s.close(() => r()))));
    const server = this.server;
    this.server = undefined;
    this.bound = [];
    if (!server) return;
    if (!server.server.listening) {
      for (const c of server.connections) c.close();
      return;
    }
    const closed = new Promise<void>((r) => server.close(() => r()));
    // Sessions outside DATA have nothing worth waiting for; one inside DATA may finish.
    for (const c of server.connections) {
      if (c._dataStream) continue;
      c.send(421, 'Server shutting down');
      c.close();
    }
    await closed;
  }
}
