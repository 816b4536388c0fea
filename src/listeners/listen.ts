/**
 * Binding and stopping helpers shared by the local listeners (POP3, IMAP, SMTP): listen on one
 * address or every configured host and learn the port actually bound (port 0 picks a free one;
 * `exclusive` so that each listener owns its socket even under a cluster), and the graceful stop.
 */
import type net from 'node:net';
import { createServer as netCreateServer } from 'node:net';
import type tls from 'node:tls';
import { createServer as tlsCreateServer } from 'node:tls';
import type { Logger } from 'pino';
import { sleep } from '../shared/sleep.js';

/** Listen on host:port; resolves with the bound port, rejects with the bind error. */
export function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** One bound address of a listener. */
export interface BoundAddress {
  host: string;
  port: number;
  /** True for an implicit-TLS listener. */
  tls: boolean;
}

/**
 * Listen on every host, with TLS from the first byte when `tls` is given (port 0: the port the first bind picked, on
 * the others too). A host whose address family this machine lacks (::1 or 127.0.0.1 missing)
 * is skipped with a warning, so the other loopback is served rather than nothing; any other
 * error closes what was bound and is thrown for the caller to report.
 */
export async function listenOnHosts(
  hosts: readonly string[],
  port: number,
  accept: (socket: net.Socket, secure: boolean) => void,
  o: { log: Logger; label: string; tls?: tls.SecureContextOptions },
): Promise<Array<{ server: net.Server; address: BoundAddress }>> {
  const tlsOptions = o.tls;
  const make = (): net.Server => {
    if (!tlsOptions) return netCreateServer((s) => accept(s, false));
    const server = tlsCreateServer(tlsOptions, (s) => accept(s, true));
    server.on('tlsClientError', (err) => o.log.debug({ err: err.message }, 'TLS handshake failed'));
    return server;
  };
  const bound: Array<{ server: net.Server; address: BoundAddress }> = [];
  let chosen = port;
  let lastError: unknown;
  for (const host of hosts) {
    const server = make();
    try {
      chosen = await listenOn(server, host, chosen);
      // after the bind: a bind error is the caller's to report, in one line
      server.on('error', (err) => o.log.error({ err }, `${o.label} listener error`));
      bound.push({ server, address: { host, port: chosen, tls: tlsOptions !== undefined } });
    } catch (err) {
      lastError = err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
        o.log.warn({ host, err: (err as Error).message }, 'cannot listen on this address; skipped');
        continue;
      }
      for (const b of bound) b.server.close();
      throw err;
    }
  }
  if (!bound.length) throw lastError ?? new Error('no address to listen on');
  return bound;
}

/** What a graceful stop needs of a session. */
export interface StoppableSession {
  /** Close once the running command is done. */
  shutdown(): void;
  /** Close at once. */
  destroy(): void;
  readonly closed: Promise<void>;
}

/**
 * Stop accepting, ask every session to finish its running command, wait at most
 * `closeTimeoutMs`, then destroy what is left.
 */
export async function stopListening(
  servers: readonly net.Server[],
  sessions: ReadonlySet<StoppableSession>,
  o: { closeTimeoutMs: number; log: Logger; label: string },
): Promise<void> {
  // server.close() calls back only once every connection is gone: close the sessions first.
  const closing = servers.map((server) => new Promise<void>((r) => server.close(() => r())));
  for (const s of sessions) s.shutdown();
  const all = Promise.all([...sessions].map((s) => s.closed));
  const finished = new AbortController();
  const timeout = sleep(o.closeTimeoutMs, finished.signal).then(
    () => 'timeout' as const,
    () => undefined,
  );
  if ((await Promise.race([all, timeout])) === 'timeout') {
    o.log.warn({ sessions: sessions.size }, `${o.label} sessions did not finish in time: closing them`);
    for (const s of sessions) s.destroy();
  }
  finished.abort(); // clears the timer
  await Promise.all(closing);
}
