/**
 * The control API server (protocol.ts has the contract): an HTTP server on the Unix socket
 * `<dataDir>/control.sock` (or in the private runtime directory when that path is too long for
 * a Unix socket: socket-path.ts), started last among the daemon's components so every request
 * sees a fully started daemon, and stopped first.
 *
 * - The socket file is created with mode 0600 (under a 0077 umask for the bind, then chmod):
 *   the data directory is already 0700; the socket is the daemon's user's only. A runtime
 *   directory is created 0700 and checked (`ensureRuntimeDir`) before anything is probed,
 *   removed or bound in it; the socket's real place is logged at info level then.
 * - A socket file left by a crashed daemon is replaced at start. The instance lock is taken
 *   before any component starts, so a live daemon never owns the file being replaced; a
 *   connect that succeeds nevertheless (another daemon outside the lock) is refused loudly.
 * - `stop()` closes the server, ends idle keep-alive connections, and removes the file.
 * - Handlers run one request each; a handler's `ControlError` becomes its status and message,
 *   anything else a 500 with the message (logged), never a crash.
 */

import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';
import { ControlError, MAX_BODY } from './protocol.js';
import { controlSocketLocation, ensureRuntimeDir, type SocketLocation } from './socket-path.js';

/** One request as a handler sees it. */
export interface ControlRequest {
  /** Path parameters (`:id`). */
  params: Record<string, string>;
  /** The parsed JSON body (`{}` when empty). */
  body: unknown;
}

/** A route: method, path pattern with `:name` segments, and its handler. */
export interface ControlRoute {
  method: 'GET' | 'POST';
  path: string;
  handle(req: ControlRequest): Promise<unknown>;
}

/** True when something accepts connections on the socket file. */
function socketAlive(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Matches `/outbox/retry/:id` against a request path; the params, or undefined. */
export function matchPath(pattern: string, actual: string): Record<string, string> | undefined {
  const p = pattern.split('/');
  const a = actual.split('/');
  if (p.length !== a.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, want] of p.entries()) {
    const got = a[i];
    if (want.startsWith(':')) {
      if (!got) return undefined;
      try {
        params[want.slice(1)] = decodeURIComponent(got);
      } catch {
        return undefined;
      }
    } else if (want !== got) return undefined;
  }
  return params;
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new ControlError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ControlError(400, 'the request body is not valid JSON');
  }
}

/** The control API server. */
export class ControlServer {
  private server?: http.Server;
  private readonly location: SocketLocation;
  /** The socket's directory is ours to remove a file in: the data directory, or a checked runtime directory. */
  private dirChecked: boolean;
  /** The socket file, wherever it is. */
  readonly socketPath: string;

  /** Throws when no usable socket path fits (see socket-path.ts). */
  constructor(private readonly o: { dataDir: string; routes: ControlRoute[]; log: Logger }) {
    this.location = controlSocketLocation(o.dataDir);
    this.socketPath = this.location.file;
    this.dirChecked = !this.location.runtimeDir;
  }

  /** Create and check the runtime directory if used, replace a stale socket file, listen, chmod 0600. */
  async start(): Promise<void> {
    const file = this.socketPath;
    if (this.location.runtimeDir) {
      await ensureRuntimeDir(this.location.runtimeDir);
      this.dirChecked = true;
    }
    if (await socketAlive(file))
      throw new Error(`${file} is in use by another process (a second localpost on this data directory?)`);
    await rm(file, { force: true });
    const server = http.createServer((req, res) => {
      void this.dispatch(req, res);
    });
    server.keepAliveTimeout = 5_000;
    const old = process.umask(0o077);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(file, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    try {
      await chmod(file, 0o600);
    } catch (err) {
      // never leave a server listening that stop() does not know about
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
    this.server = server;
    if (this.location.runtimeDir)
      this.o.log.info(
        { socket: file, dataDir: this.o.dataDir },
        'control API listening (the data directory path is too long for a Unix socket)',
      );
    else this.o.log.debug({ socket: file }, 'control API listening');
  }

  /** Stop accepting, close idle connections, remove the socket file (not in a runtime directory refused at start). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), 2_000);
      await closed;
      clearTimeout(timer);
    }
    if (this.dirChecked) await rm(this.socketPath, { force: true });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, value: unknown) => {
      const body = `${JSON.stringify(value)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const [url = '/'] = (req.url ?? '/').split('?');
    try {
      const matches = this.o.routes.flatMap((r) => {
        const params = matchPath(r.path, url);
        return params ? [{ r, params }] : [];
      });
      if (!matches.length) throw new ControlError(404, `no such control path: ${url}`);
      const m = matches.find((x) => x.r.method === req.method);
      if (!m)
        throw new ControlError(
          405,
          `${req.method} is not allowed on ${url} (use ${matches.map((x) => x.r.method).join(' or ')})`,
        );
      const body = await readBody(req);
      send(200, await m.r.handle({ params: m.params, body }));
    } catch (err) {
      if (err instanceof ControlError) {
        send(err.status, { error: err.message });
        return;
      }
      this.o.log.error({ err: errorMessage(err), method: req.method, path: url }, 'control request failed');
      send(500, { error: errorMessage(err) });
    }
  }
}
