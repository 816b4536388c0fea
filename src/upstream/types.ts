/**
 * Contracts of the upstream side. A Fetcher pulls one account's remote mailbox into its
 * AccountStore; the daemon builds one per pull from the account's config, already resolved
 * (secrets read, CA file loaded), so nothing here imports the daemon or its config schema.
 */

/** How a connection to a server is secured (the config's `tls` key). */
export const TLS_MODES = ['implicit', 'starttls', 'none'] as const;
/** `implicit`: TLS from the first byte; `starttls`: upgraded after connecting; `none`: plaintext. */
export type TlsMode = (typeof TLS_MODES)[number];

/** The default port of a server by protocol and TLS mode (what `init` proposes too). */
export function defaultPort(kind: 'pop3' | 'imap' | 'smtp', tls: TlsMode): number {
  if (kind === 'smtp') return tls === 'implicit' ? 465 : 587;
  if (kind === 'pop3') return tls === 'implicit' ? 995 : 110;
  return tls === 'implicit' ? 993 : 143;
}

/** Where and how to reach an upstream server, with the secret already resolved. */
export interface UpstreamEndpoint {
  host: string;
  port: number;
  tls: TlsMode;
  /** Extra CA certificate(s), PEM text (from `tlsCa`). */
  ca?: string;
  username: string;
  /** The password; absent when the account signs in with OAuth (`accessToken`). */
  password?: string;
  /** An OAuth 2.0 access token, sent with SASL XOAUTH2/OAUTHBEARER instead of a password. */
  accessToken?: string;
  /**
   * A current access token for long-lived users (the pooled SMTP sender, IDLE reconnects);
   * `force` after the server refused the one in hand. Present only with `accessToken`.
   */
  renewAccessToken?: (force?: boolean) => Promise<string>;
  /** Per-read timeout; a silent server is given up on after this long. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

/** The endpoint with a current access token (for a new connection of a long-lived user). */
export async function freshEndpoint(ep: UpstreamEndpoint): Promise<UpstreamEndpoint> {
  return ep.renewAccessToken ? { ...ep, accessToken: await ep.renewAccessToken() } : ep;
}

/** Progress of a running pull, for the CLI's progress bar and `status`. */
export interface FetchProgress {
  folder: string;
  /** Messages to download in this folder/session (known after listing). */
  total: number;
  done: number;
  bytes: number;
}

/** A message that was not downloaded, and why. */
export interface SkippedMessage {
  folder: string;
  key: string;
  size: number;
  reason: string;
}

/** What one pull did. */
export interface FetchResult {
  newMessages: number;
  bytes: number;
  skipped: SkippedMessage[];
  deletedUpstream: number;
  /** Upstream sessions used (POP3 loops sessions until nothing new is offered). */
  sessions: number;
  /** IMAP with a change journal: local changes applied upstream before the pull. */
  replayed?: number;
  /** IMAP: cached messages whose flags changed upstream, and messages expunged upstream, applied locally. */
  upstreamFlags?: number;
  upstreamExpunges?: number;
  /** IMAP: configured folders (names without wildcards) the upstream does not have; the others were pulled. */
  missingFolders?: string[];
}

/** Options common to every pull. */
export interface PullOptions {
  /** Stop between messages: the message in hand finishes and is committed. */
  signal?: AbortSignal;
  onProgress?: (p: FetchProgress) => void;
  /** Called for each upstream connection that reached the server and tried to log in (refused ones too). */
  onLogin?: () => void;
}

/** Pulls one account. */
export interface Fetcher {
  pull(opts?: PullOptions): Promise<FetchResult>;
}

/** The batch limits of invariant 6 (docs/architecture.md): commit every N messages or T ms. */
export const BATCH_MAX_MESSAGES = 100;
export const BATCH_MAX_MS = 250;

/** A fresh, empty result. */
export function emptyResult(): FetchResult {
  return { newMessages: 0, bytes: 0, skipped: [], deletedUpstream: 0, sessions: 0 };
}
