/**
 * The CLI's side of the control API (protocol.ts has the contract): one HTTP request over
 * `<dataDir>/control.sock` (or its place in the runtime directory: socket-path.ts) per call. A
 * missing socket or a refused connection is `ControlUnavailableError` (no daemon listening:
 * the caller works in-process or says so); a non-2xx answer is `ControlRequestError` carrying
 * the daemon's own message. A runtime directory is checked before connecting, as the server
 * checks it before binding: a missing one means no daemon, an unsafe one is an error.
 */
import http from 'node:http';
import type { JournalEntry } from '../cache/mailboxes.js';
import type { OutboxRow } from '../cache/outbox/rows.js';

import {
  controlSocketLocation,
  type FlushResponse,
  type JournalListResponse,
  type OutboxListResponse,
  type StatusReport,
  type SyncOutcome,
  type SyncResponse,
} from './protocol.js';
import { checkRuntimeDir } from './socket-path.js';

/** Nothing listens on the socket. */
export class ControlUnavailableError extends Error {
  override name = 'ControlUnavailableError';
}

/** The daemon answered with an error status. */
export class ControlRequestError extends Error {
  override name = 'ControlRequestError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Options of a request. */
export interface RequestOptions {
  body?: unknown;
  /** Give up after this long (0: wait as long as it takes, for pulls and flushes). Default 30 s. */
  timeoutMs?: number;
}

/** Send one request to the daemon of `dataDir`; resolves with the parsed JSON answer. */
export async function controlRequest<T>(
  dataDir: string,
  method: 'GET' | 'POST',
  path: string,
  o: RequestOptions = {},
): Promise<T> {
  const { file, runtimeDir } = controlSocketLocation(dataDir);
  if (runtimeDir) {
    try {
      await checkRuntimeDir(runtimeDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ControlUnavailableError(`no daemon listens on ${file}`);
      throw err;
    }
  }
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  return new Promise<T>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: file,
        method,
        path,
        agent: false,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let value: unknown;
          try {
            value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            reject(
              new ControlRequestError(
                res.statusCode ?? 0,
                `the daemon sent an answer that is not JSON (HTTP ${res.statusCode})`,
              ),
            );
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(value as T);
          else reject(new ControlRequestError(status, (value as { error?: string })?.error ?? `HTTP ${status}`));
        });
      },
    );
    const timeoutMs = o.timeoutMs ?? 30_000;
    if (timeoutMs > 0)
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`the daemon did not answer ${method} ${path} within ${timeoutMs / 1000}s`)),
      );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (['ENOENT', 'ECONNREFUSED', 'ENOTSOCK'].includes(err.code ?? ''))
        reject(new ControlUnavailableError(`no daemon listens on ${file}`));
      else reject(err);
    });
    req.end(payload);
  });
}

/** Typed calls of every endpoint. */
export const control = {
  /** `GET /status`. */
  status: (dataDir: string) => controlRequest<StatusReport>(dataDir, 'GET', '/status'),
  /** `POST /sync`: resolves once every pull finished. */
  sync: async (dataDir: string, accounts?: string[]): Promise<SyncOutcome[]> =>
    (
      await controlRequest<SyncResponse>(dataDir, 'POST', '/sync', {
        body: accounts?.length ? { accounts } : {},
        timeoutMs: 0,
      })
    ).records,
  /** `GET /outbox`. */
  outbox: async (dataDir: string): Promise<OutboxRow[]> =>
    (await controlRequest<OutboxListResponse>(dataDir, 'GET', '/outbox')).entries,
  /** `POST /outbox/retry/:id`. */
  retry: (dataDir: string, id: string) =>
    controlRequest<{ id: string; queued: true }>(dataDir, 'POST', `/outbox/retry/${encodeURIComponent(id)}`),
  /** `POST /outbox/drop/:id`. */
  drop: (dataDir: string, id: string) =>
    controlRequest<{ id: string; dropped: true }>(dataDir, 'POST', `/outbox/drop/${encodeURIComponent(id)}`),
  /** `POST /outbox/flush`: resolves once the delivery pass finished. */
  flush: (dataDir: string) => controlRequest<FlushResponse>(dataDir, 'POST', '/outbox/flush', { timeoutMs: 0 }),
  /** `GET /journal`. */
  journal: async (dataDir: string): Promise<JournalEntry[]> =>
    (await controlRequest<JournalListResponse>(dataDir, 'GET', '/journal')).entries,
  /** `POST /journal/retry/:id`. */
  journalRetry: (dataDir: string, id: number) =>
    controlRequest<{ id: number; queued: true }>(dataDir, 'POST', `/journal/retry/${id}`),
  /** `POST /journal/drop/:id`. */
  journalDrop: (dataDir: string, id: number) =>
    controlRequest<{ id: number; dropped: true }>(dataDir, 'POST', `/journal/drop/${id}`),
  /** `POST /reload`. */
  reload: (dataDir: string) => controlRequest<{ reloaded: boolean }>(dataDir, 'POST', '/reload'),
};
