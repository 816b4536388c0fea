/**
 * The control API's wire contract (ARCHITECTURE "Control API"): HTTP/1.1 with JSON bodies over
 * the Unix socket `<dataDir>/control.sock` (mode 0600, so only the daemon's user can talk to
 * it), or a socket in a private runtime directory when that path is too long for a Unix socket
 * (socket-path.ts). Shared by `server.ts` and `client.ts` so both ends agree on paths and shapes.
 *
 * | method | path                  | request body              | 200 response                |
 * |--------|-----------------------|---------------------------|-----------------------------|
 * | GET    | /status               | —                         | `StatusReport`              |
 * | POST   | /sync                 | `{ accounts?: string[] }` | `SyncResponse` (after the pulls finished) |
 * | GET    | /outbox               | —                         | `OutboxListResponse`        |
 * | POST   | /outbox/retry/:id     | —                         | `{ id, queued: true }`      |
 * | POST   | /outbox/drop/:id      | —                         | `{ id, dropped: true }`     |
 * | POST   | /outbox/flush         | —                         | `FlushResponse`             |
 * | POST   | /reload               | —                         | `{ reloaded: boolean }`     |
 * | POST   | /accounts/:id/signed-in | —                       | `SignedInResponse` (handlers.ts: IDLE woken, then a pull) |
 *
 * Every failure is a non-2xx status with `{ error: "a sentence for the user" }`: 400 a bad
 * request (malformed JSON, a wrong field), 404 no such path, account or outbox entry, 405 a
 * known path with the wrong method, 413 a body over `MAX_BODY`, 500 the daemon failed.
 */
import type { SyncRecord } from '../../cache/message-store.js';
import type { OutboxRow } from '../../cache/outbox-index.js';

export { CONTROL_SOCKET, controlSocketLocation, controlSocketPath } from './socket-path.js';

/** Largest request body the server reads. */
export const MAX_BODY = 64 * 1024;

/** One finished pull as `POST /sync` returns it. */
export interface SyncOutcome extends SyncRecord {
  /** Messages deleted upstream by this pull (`keepOnServer: false`). */
  deletedUpstream?: number;
}

/** `POST /sync` body. */
export interface SyncRequest {
  accounts?: string[];
}

/** `POST /sync` response. */
export interface SyncResponse {
  records: SyncOutcome[];
}

/** `GET /outbox` response. */
export interface OutboxListResponse {
  entries: OutboxRow[];
}

/** `POST /outbox/flush` response: how many were queued before, and what is still queued. */
export interface FlushResponse {
  before: number;
  left: Array<{ id: string; account: string; lastError?: string }>;
}

/** An error the server turns into `{ error }` with this HTTP status. */
export class ControlError extends Error {
  override name = 'ControlError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}
