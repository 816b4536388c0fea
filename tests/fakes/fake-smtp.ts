/**
 * A scriptable in-process SMTP upstream for fault injection, built on
 * smtp-server: happy by default (AUTH PLAIN/LOGIN for one user, every recipient accepted, every
 * message recorded with its envelope and exact bytes), with per-test overrides:
 *
 * - `onConnect`: refuse the session (e.g. 421) or stall before the greeting;
 * - `onRcpt`: refuse one recipient (550, 450, ...);
 * - `onData`: answer with an error (451, 554), answer late, cut the connection after some bytes
 *   of DATA, or stall after the final dot (never answer).
 *
 * `listen(port)` can be called later or again (an upstream that comes back); `stop()` closes
 * the listener and every connection.
 */
import type net from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** A recorded message. */
export interface ReceivedMessage {
  from: string;
  to: string[];
  data: Buffer;
  user?: string;
  at: number;
}

/** What an override asks for. */
export interface FakeSmtpAction {
  /** Refuse with this reply. */
  code?: number;
  message?: string;
  /** Never answer. */
  stall?: boolean;
  /** onData: destroy the connection after receiving this many bytes of DATA. */
  cutAfterBytes?: number;
  /** onData: answer (250 or `code`) only after this many milliseconds. */
  delayMs?: number;
}

/** Options of the fake. */
export interface FakeSmtpOptions {
  user?: string;
  pass?: string;
  onConnect?: (session: SMTPServerSession, n: number) => FakeSmtpAction | undefined;
  onRcpt?: (address: string, session: SMTPServerSession) => FakeSmtpAction | undefined;
  onData?: (session: SMTPServerSession, n: number) => FakeSmtpAction | undefined;
  /** Answers a login instead of checking user/pass (e.g. 454 for a temporary failure). */
  onAuth?: (username: string, session: SMTPServerSession) => FakeSmtpAction | undefined;
  /** The SIZE advertised in EHLO; default 50 MiB. */
  size?: number;
}

/** A running fake upstream. */
export interface FakeSmtp {
  port: number;
  received: ReceivedMessage[];
  /** Connections accepted so far. */
  connections: number;
  /** DATA transactions started so far. */
  dataCount: number;
  options: FakeSmtpOptions;
  listen(port?: number): Promise<number>;
  stop(): Promise<void>;
}

const err = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

/** Start (or only create, with `listen: false`) a fake upstream on 127.0.0.1. */
export async function startFakeSmtp(
  options: FakeSmtpOptions = {},
  opts: { port?: number; listen?: boolean } = {},
): Promise<FakeSmtp> {
  const user = options.user ?? 'alice';
  const pass = options.pass ?? 'alicepw';
  let server: SMTPServer | undefined;
  const fake: FakeSmtp = {
    port: opts.port ?? 0,
    received: [],
    connections: 0,
    dataCount: 0,
    options,
    async listen(port = fake.port) {
      server = build();
      await new Promise<void>((r, j) => {
        server!.server.once('error', j);
        server!.listen(port, '127.0.0.1', () => r());
      });
      fake.port = (server.server.address() as net.AddressInfo).port;
      return fake.port;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      for (const c of s.connections) (c as unknown as { _socket: net.Socket })._socket.destroy();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };

  const socketOf = (srv: SMTPServer, session: SMTPServerSession): net.Socket | undefined => {
    for (const c of srv.connections)
      if (c.session === session) return (c as unknown as { _socket: net.Socket })._socket;
    return undefined;
  };

  const build = (): SMTPServer => {
    const srv: SMTPServer = new SMTPServer({
      name: 'fake-upstream',
      logger: false,
      disableReverseLookup: true,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      hideSTARTTLS: true,
      authMethods: ['PLAIN', 'LOGIN'],
      size: options.size ?? 50 * 1024 * 1024,
      socketTimeout: 60_000,
      closeTimeout: 100,
      onConnect(session, cb) {
        const n = ++fake.connections;
        const a = options.onConnect?.(session, n);
        if (a?.stall) return;
        cb(a?.code ? err(a.code, a.message ?? 'refused') : null);
      },
      onAuth(auth, session, cb) {
        const a = options.onAuth?.(auth.username ?? '', session);
        if (a?.code) return cb(err(a.code, a.message ?? 'refused'));
        if (auth.username === user && auth.password === pass) cb(null, { user: auth.username });
        else cb(err(535, '5.7.8 Authentication credentials invalid'));
      },
      onRcptTo(address, session, cb) {
        const a = options.onRcpt?.(address.address, session);
        cb(a?.code ? err(a.code, a.message ?? 'refused') : null);
      },
      onData(stream: SMTPServerDataStream, session, cb) {
        const n = ++fake.dataCount;
        const a = options.onData?.(session, n);
        const parts: Buffer[] = [];
        let bytes = 0;
        stream.on('data', (b: Buffer) => {
          parts.push(b);
          bytes += b.length;
          if (a?.cutAfterBytes !== undefined && bytes >= a.cutAfterBytes) socketOf(srv, session)?.destroy();
        });
        stream.on('end', () => {
          if (a?.cutAfterBytes !== undefined || a?.stall) return;
          const answer = () => {
            if (a?.code) return cb(err(a.code, a.message ?? 'refused'));
            fake.received.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              data: Buffer.concat(parts),
              user: typeof session.user === 'string' ? session.user : undefined,
              at: Date.now(),
            });
            cb(null, `2.0.0 Ok: queued as fake${n}`);
          };
          if (a?.delayMs) setTimeout(answer, a.delayMs);
          else answer();
        });
      },
    });
    srv.on('error', () => undefined);
    return srv;
  };

  if (opts.listen !== false) await fake.listen();
  return fake;
}
