/**
 * Types shared by the POP3 session and its command handlers (kept apart from `session.ts` so
 * handlers never import the session class): the protocol states of RFC 1939 §3, the session
 * surface a handler may use, and the server options a session reads.
 */
import type { Maildrop } from './maildrop.js';
import type { ReplyWriter } from './writer.js';

/** RFC 1939 §3: a session moves AUTHORIZATION → TRANSACTION → UPDATE (only through QUIT). */
export type Pop3State = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

/** Legacy-client repairs (Dovecot's `pop3_client_workarounds`): NULs hang Outlook, a missing header end breaks OE. */
export interface Pop3Workarounds {
  /** Send NUL bytes as 0x80 (`outlook-no-nuls`). */
  outlookNoNuls: boolean;
  /** Supply the empty line after the header when a message has none (`oe-ns-eoh`). */
  oeNsEoh: boolean;
}

/** Outcome of a login attempt, which the handler turns into a reply. */
export type LoginOutcome = 'ok' | 'bad-credentials' | 'in-use' | 'unavailable' | 'try-later';

/** What a command handler may use of its session. */
export interface SessionContext {
  readonly state: Pop3State;
  readonly reply: ReplyWriter;
  /** True once the connection is TLS (implicit port or after STLS). */
  readonly secure: boolean;
  /** True on a plaintext connection from another machine: logins would cross the network in clear. */
  readonly loginInClearRefused: boolean;
  /** True when STLS can be offered now (a certificate is configured and not yet secure). */
  readonly canStartTls: boolean;
  /** Advertise `SASL PLAIN` in CAPA (always under TLS; on plaintext only when configured). */
  readonly advertiseSaslPlain: boolean;
  /** Text of the IMPLEMENTATION capability. */
  readonly implementation: string;
  /** Legacy-client repairs in force. */
  readonly workarounds: Pop3Workarounds;
  /** The name given by USER, waiting for PASS (RFC 1939 §7). */
  pendingUser?: string;
  /** The snapshot, in TRANSACTION state. */
  readonly maildrop?: Maildrop;
  /** Check credentials, lock the maildrop, pull on login, take the snapshot. */
  login(username: string, password: string): Promise<LoginOutcome>;
  /** After `+OK` to STLS: run the TLS handshake on this connection (RFC 2595 §4). */
  startTls(): Promise<void>;
  /** The stored bytes of a message of the maildrop (rejects with MessageGoneError). */
  openMessage(uid: number): Promise<AsyncIterable<Buffer> | Iterable<Buffer>>;
  /** Route the next line to `handler` instead of the dispatcher (a SASL continuation, RFC 5034 §4). */
  continueWith(handler: (line: string) => Promise<void>): void;
  /** QUIT: enter UPDATE (from TRANSACTION), apply deletions, reply, close (RFC 1939 §6). */
  quit(): Promise<void>;
}
