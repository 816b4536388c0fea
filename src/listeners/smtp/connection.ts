/**
 * smtp-server, adjusted for the mail clients localpost serves (protocol-pitfalls S2, S3, S5).
 * smtp-server has no option for these, so its connection class is subclassed and its server's
 * `connect()` builds the subclass (the same four lines as the library's own `connect`):
 *
 * - `EHLO` and `HELO` without an argument are accepted (MS-SMTPNTLM shows clients doing it):
 *   the client's address literal (`[127.0.0.1]`, `[IPv6:::1]`) stands in for the name.
 * - The EHLO reply lists `AUTH PLAIN LOGIN` and also the pre-RFC 4954 `AUTH=PLAIN LOGIN` line
 *   that Outlook Express 4 reads (Postfix's `broken_sasl_auth_clients`).
 * - After AUTH, a second EHLO advertises the SIZE limit of the logged-in account; before it,
 *   the server-wide limit (the largest of all accounts) is shown.
 *
 * Everything else — parsing, dot-unstuffing, AUTH exchanges, limits — is smtp-server's.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';

/** Per-account SIZE for the EHLO reply once the session is authenticated. */
export type SizeForUser = (user: string) => number | undefined;

/** The address literal of a client (RFC 5321 §4.1.3). */
export function addressLiteral(address: string): string {
  const a = address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  return a.includes(':') ? `[IPv6:${a}]` : `[${a}]`;
}

/** Adds the client's address literal to a bare `EHLO`/`HELO` command line. */
export function withDefaultName(command: Buffer, remoteAddress: string): Buffer {
  const text = command.toString('latin1');
  if (text.trim().split(/\s+/).length !== 1) return command;
  return Buffer.from(`${text.trim()} ${addressLiteral(remoteAddress || '127.0.0.1')}`, 'latin1');
}

/** Rewrites the EHLO feature lines: the `AUTH=` twin after `AUTH`, and the account's SIZE. */
export function adjustEhloLines(lines: string[], size: number | undefined): string[] {
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
export class LocalpostConnection extends SMTPConnection {
  private inEhlo = false;

  constructor(server: LocalpostSmtpServer, socket: net.Socket | tls.TLSSocket, options?: SMTPConnectionOptions | null) {
    super(server, socket, options);
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
    if (this.inEhlo && code === 250 && Array.isArray(data)) {
      const user = this.session.user;
      const size = typeof user === 'string' ? (this._server as LocalpostSmtpServer).sizeFor?.(user) : undefined;
      data = [data[0]!, ...adjustEhloLines(data.slice(1), size)];
    }
    super.send(code, data, context);
  }
}

/** smtp-server whose connections are `LocalpostConnection`s. */
export class LocalpostSmtpServer extends SMTPServer {
  constructor(options: SMTPServerOptions, readonly sizeFor?: SizeForUser) {
    super(options);
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    const connection = new LocalpostConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data) => this._onClientConnect(data));
    connection.init();
  }
}
