/**
 * smtp-server, adjusted for the mail clients localpost serves (old Outlook versions among them).
 * smtp-server has no option for these, so its connection class is subclassed and its server's
 * `connect()` builds the subclass (the same four lines as the library's own `connect`):
 *
 * - `EHLO` and `HELO` without an argument are accepted (MS-SMTPNTLM shows clients doing it):
 *   the client's address literal (`[127.0.0.1]`, `[IPv6:::1]`) stands in for the name.
 * - The EHLO reply lists `AUTH PLAIN LOGIN` and also the pre-RFC 4954 `AUTH=PLAIN LOGIN` line
 *   that Outlook Express 4 reads (Postfix's `broken_sasl_auth_clients`).
 * - After AUTH, a second EHLO advertises the SIZE limit of the logged-in account; before it,
 *   the server-wide limit (the largest of all accounts) is shown.
 * - Connection slots shared with POP3 (`../connection-slots.ts`) instead of smtp-server's
 *   `maxClients`: a connection is admitted (an idle one not logged in may be closed with `421` to
 *   make room) or refused with `421`, and must authenticate by its slot's login deadline.
 * - Deadlines against slow clients (slow-loris), which smtp-server's idle timeout misses since
 *   any byte restarts it: besides the login deadline, a connection must finish a command line
 *   within `command` of first seeing it incomplete, and a DATA body within `data`; otherwise
 *   `421` and the connection is closed (an unfinished DATA is never queued). A watchdog per
 *   connection checks these two about once a second.
 *
 * Everything else — parsing, dot-unstuffing, AUTH exchanges, limits — is smtp-server's.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { ConnectionSlots, type Slot, type SlotOccupant } from '../connection-slots.js';

/** Per-account SIZE for the EHLO reply once the session is authenticated. */
export type SizeForUser = (user: string) => number | undefined;

/** Deadlines of a connection, in milliseconds (see the module comment); `login` goes to the slots. */
export interface ConnectionDeadlines {
  login: number;
  command: number;
  data: number;
}

/** The defaults: a minute to log in or to finish a line, ten minutes for one message body. */
export const DEFAULT_DEADLINES: ConnectionDeadlines = { login: 60_000, command: 60_000, data: 10 * 60_000 };

/** The address literal of a client (RFC 5321 §4.1.3). */
function addressLiteral(address: string): string {
  const a = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  return a.includes(':') ? `[IPv6:${a}]` : `[${a}]`;
}

/** Adds the client's address literal to a bare `EHLO`/`HELO` command line. */
function withDefaultName(command: Buffer, remoteAddress: string): Buffer {
  const text = command.toString('latin1');
  if (text.trim().split(/\s+/).length !== 1) return command;
  return Buffer.from(`${text.trim()} ${addressLiteral(remoteAddress || '127.0.0.1')}`, 'latin1');
}

/** Rewrites the EHLO feature lines: the `AUTH=` twin after `AUTH`, and the account's SIZE. */
function adjustEhloLines(lines: string[], size: number | undefined): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (size !== undefined && /^SIZE( \d+)?$/i.test(line)) {
      out.push(`SIZE ${size}`);
      continue;
    }
    out.push(line);
    const auth = /^AUTH (.+)$/i.exec(line);
    if (auth) out.push(`AUTH=${auth[1]}`);
  }
  return out;
}

/** One client connection with the adjustments of the module comment. */
class LocalpostConnection extends SMTPConnection implements SlotOccupant {
  private inEhlo = false;
  /** A command is being handled (an AUTH waiting for its check, say). */
  private running = false;
  /** Complete command lines seen so far. */
  private commands = 0;
  /** Since when an incomplete command line has been waiting (and how many commands had been seen). */
  private partial?: { since: number; commands: number };
  private dataSince?: number;
  private watchdog?: NodeJS.Timeout;

  constructor(
    server: LocalpostSmtpServer,
    socket: net.Socket | tls.TLSSocket,
    options: SMTPConnectionOptions | null | undefined,
    private readonly slot: Slot,
  ) {
    super(server, socket, options);
    const d = server.deadlines;
    this.watchdog = setInterval(() => this.checkDeadlines(d), Math.max(20, Math.min(1000, d.command / 4, d.data / 4)));
    this.watchdog.unref();
    slot.bind(this);
  }

  get idle(): boolean {
    return !this.session.user && !this.running && !this._nextHandler && !this._closing && !this._closed;
  }

  evict(): void {
    this.lateOrEvicted('too many connections, closing this idle one');
  }

  loginExpired(): void {
    if (!this.session.user) this.lateOrEvicted('not authenticated within the time allowed');
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    this.commands++;
    this.running = true;
    super._onCommand(command, () => {
      this.running = false;
      callback?.();
    });
  }

  override close(): void {
    this.slot.release();
    super.close();
  }

  override _onClose(): void {
    clearInterval(this.watchdog);
    this.slot.release();
    super._onClose();
  }

  /** Answers 421 with the reason, which closes the connection. */
  private lateOrEvicted(reason: string): void {
    clearInterval(this.watchdog);
    (this._server as LocalpostSmtpServer).onSlowClient?.(reason);
    this.send(421, `Error: ${reason}`);
  }

  /** Closes a connection that missed a deadline with 421. */
  private checkDeadlines(d: ConnectionDeadlines): void {
    if (this._socket.destroyed) {
      clearInterval(this.watchdog);
      return;
    }
    const now = Date.now();
    let late: string | undefined;
    if (this._dataStream) {
      this.partial = undefined;
      this.dataSince ??= now;
      if (now - this.dataSince > d.data) late = 'message data not completed in time';
    } else {
      this.dataSince = undefined;
      const waiting = this._parser ? this._parser._remainder.length > 0 : false;
      if (!waiting || this.partial?.commands !== this.commands)
        this.partial = waiting ? { since: now, commands: this.commands } : undefined;
      else if (now - this.partial.since > d.command) late = 'command line not completed in time';
    }
    if (late) this.lateOrEvicted(late);
  }

  override handler_EHLO(command: Buffer, callback: () => void): void {
    this.inEhlo = true;
    try {
      super.handler_EHLO(withDefaultName(command, this.remoteAddress), callback);
    } finally {
      this.inEhlo = false;
    }
  }

  override handler_HELO(command: Buffer, callback: () => void): void {
    super.handler_HELO(withDefaultName(command, this.remoteAddress), callback);
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (code === 235) this.slot.loggedIn(); // RFC 4954: authentication succeeded
    if (this.inEhlo && code === 250 && Array.isArray(data)) {
      const user = this.session.user;
      const size = typeof user === 'string' ? (this._server as LocalpostSmtpServer).sizeFor?.(user) : undefined;
      const [greeting, ...capabilities] = data;
      if (greeting !== undefined) data = [greeting, ...adjustEhloLines(capabilities, size)];
    }
    super.send(code, data, context);
  }
}

/** smtp-server whose connections are `LocalpostConnection`s. */
export class LocalpostSmtpServer extends SMTPServer {
  /** Called with the reason when a connection is closed for missing a deadline or to make room. */
  onSlowClient?: (reason: string) => void;
  /** Called when a connection is refused because the listener (or its address) is full. */
  onRefused?: (why: string) => void;

  constructor(
    options: SMTPServerOptions,
    readonly sizeFor?: SizeForUser,
    readonly deadlines: ConnectionDeadlines = DEFAULT_DEADLINES,
    readonly slots = new ConnectionSlots({ loginTimeoutMs: deadlines.login }),
  ) {
    super(options);
  }

  /** True once the connection of session `id` is closing or closed. */
  isGone(id: string): boolean {
    for (const c of this.connections) if (c.id === id) return c._closing || c._closed;
    return true;
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    const slot = this.slots.admit(socket.remoteAddress);
    if (typeof slot === 'string') {
      // Refused before any session exists: answer, and never hold the descriptor for long.
      this.onRefused?.(slot);
      const from = slot === 'address' ? ' from your address' : '';
      socket.on('error', () => undefined);
      socket.end(
        `421 ${this.options.name ?? 'localpost'} Too many connected clients${from}, try again in a moment\r\n`,
      );
      socket.setTimeout(2000, () => socket.destroy());
      return;
    }
    const connection = new LocalpostConnection(this, socket, socketOptions, slot);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
  }
}
