/**
 * The control API's wire contract: HTTP/1.1 with JSON bodies over
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
 * | GET    | /journal              | —                         | `JournalListResponse`       |
 * | POST   | /journal/retry/:id    | —                         | `{ id, queued: true }`      |
 * | POST   | /journal/drop/:id     | —                         | `{ id, dropped: true }`     |
 * | POST   | /reload               | —                         | `{ reloaded: boolean }`     |
 * | POST   | /accounts/:id/signed-in | —                       | `SignedInResponse` (handlers.ts: IDLE woken, then a pull) |
 *
 * Every failure is a non-2xx status with `{ error: "a sentence for the user" }`: 400 a bad
 * request (malformed JSON, a wrong field), 404 no such path, account, outbox or journal entry, 405 a
 * known path with the wrong method, 413 a body over `MAX_BODY`, 500 the daemon failed.
 */
import type { JournalEntry } from '../cache/mailboxes.js';
import type { KeyChange, SyncRecord } from '../cache/message-store.js';
import type { OutboxRow, OutboxSummary } from '../cache/outbox/rows.js';
import type { PullBackoff } from '../cache/pull-backoff.js';
import type { IdleState } from '../upstream/imap/idle.js';
import type { AuthStatus } from '../upstream/oauth/token-store.js';
import type { FetchProgress } from '../upstream/types.js';

export { controlSocketLocation, controlSocketPath } from './socket-path.js';

/** Largest request body the server reads. */
export const MAX_BODY = 64 * 1024;

/**
 * The `status --json` report (and `GET /status`) is a stable contract (`version: 1`; fields are added, never renamed):
 * - `source`: `"daemon"` (live) or `"state.db"` (no daemon answered);
 * - `daemon`: `{ running, pid? }`; `dataDir`;
 * - `accounts[]`: `{ id, email, sends, messages, bytes, online, lastPull?, pull? }` where
 *   `online` is `"online" | "offline" | "unknown"` (without a daemon: from the last pull),
 *   accounts that send also have `outgoing`, the same for the outgoing (SMTP) server (live: the
 *   connectivity probes and the last delivery attempt; without a daemon `"unknown"`),
 *   `lastPull` is `{ startedAt, finishedAt, result, newMessages, bytes, skipped, error?, missingFolders?, backoff? }`
 *   (times in ms since the epoch; `result` ok | offline | auth | throttled | error; `missingFolders`:
 *   IMAP folders named in `incoming.folders` that the upstream lacks (the others were pulled); `backoff`,
 *   while a failed pull holds automatic pulls: `{ failures, until, reason: "auth" | "throttled" | "error", error? }`,
 *   no automatic pull before `until`), and `pull` is present
 *   only while a pull runs: `{ folder, done, total, bytes }`; OAuth accounts have `auth`:
 *   `{ method: "oauth2", state: "signed-in" | "sign-in-required" | "not-signed-in", since?, reason? }`;
 *   IMAP accounts with `idle: true` have `idle` in live status only: `"connecting" | "connected" |
 *   "waiting-for-sign-in" | "reconnecting" | "stopped"` (stopped: only during a reload);
 *   `upstreamLogins`, live status only: upstream logins the pulls made since the daemon started;
 *   `keyChange`, once the provider changed every upstream key of a folder and localpost matched
 *   the messages by content: `{ folder, kind: "uidl", detectedAt, finishedAt?, matched, fresh }`
 *   (the latest; `finishedAt` absent while the adoption is under way, `fresh` the new messages);
 *   `journal`, for IMAP accounts and any account with entries: `{ pending, failed }`, local IMAP
 *   changes waiting to be carried upstream (queued or being applied) and given up on (`localpost journal`);
 * - `outbox`: `{ accounts: [{ account, queued, nextAttempt, lastError, failed }], entries: [...] }`
 *   (`entries` as `outbox list` shows them);
 * - `listeners`: `{ pop3, pop3Tls, imap, imapTls, smtp }` (`imap` empty when `listen.imap.enabled` is false), each a list of `host:port` (`[::1]:port`): the
 *   bound ports when a daemon runs, the configured ones (maybe 0: "any free port") otherwise.
 */

/** Reachability of an account's incoming (`online`) or outgoing (`outgoing`) server. */
export type OnlineState = 'online' | 'offline' | 'unknown';

/** One account in a status report. */
export interface AccountStatus {
  id: string;
  email: string;
  /** True when the account has an outgoing server. */
  sends: boolean;
  messages: number;
  bytes: number;
  /** The incoming server's reachability. */
  online: OnlineState;
  /** Accounts that send: the outgoing server's reachability. */
  outgoing?: OnlineState;
  /** The last pull, with `backoff` while automatic pulls wait after it failed (saved in state.db). */
  lastPull?: SyncRecord & { backoff?: PullBackoff };
  /** Present while a pull runs (live status only). */
  pull?: FetchProgress;
  /** OAuth accounts only: whether the saved sign-in is usable. */
  auth?: AuthStatus;
  /** IMAP accounts with `idle: true`, live status only: the IDLE connection's state. */
  idle?: IdleState;
  /** Live status only: upstream logins the account's pulls made since the daemon started. */
  upstreamLogins?: number;
  /** The latest change of every upstream key of a folder, matched by content (a POP3 UIDL renumbering). */
  keyChange?: KeyChange;
  /** Local IMAP changes not yet carried upstream: waiting (queued or inflight) and failed. */
  journal?: { pending: number; failed: number };
}

/** Everything `status` reports (see the module comment for the JSON contract). */
export interface StatusReport {
  version: 1;
  source: 'daemon' | 'state.db';
  dataDir: string;
  daemon: { running: boolean; pid?: number };
  accounts: AccountStatus[];
  outbox: { accounts: OutboxSummary[]; entries: OutboxRow[] };
  listeners: { pop3: string[]; pop3Tls: string[]; imap: string[]; imapTls: string[]; smtp: string[] };
}

/** `127.0.0.1:1110`, `[::1]:1110`. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One finished pull as `POST /sync` returns it. */
export interface SyncOutcome extends SyncRecord {
  /** Messages deleted upstream by this pull (`keepOnServer: false`). */
  deletedUpstream?: number;
}

/** `POST /sync` response. */
export interface SyncResponse {
  records: SyncOutcome[];
}

/** `GET /outbox` response. */
export interface OutboxListResponse {
  entries: OutboxRow[];
}

/** `GET /journal` response: entries not carried upstream yet (queued, inflight, failed), oldest first. */
export interface JournalListResponse {
  entries: JournalEntry[];
}

/** `POST /outbox/flush` response: how many were queued before, and what is still queued. */
export interface FlushResponse {
  before: number;
  left: Array<{ id: string; account: string; lastError?: string }>;
}

/** An error the server turns into `{ error }` with this HTTP status. */
export class ControlError extends Error {
  override name = 'ControlError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
