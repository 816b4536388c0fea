/**
 * What the IMAP command handlers see of their session, and the shape of the command table
 * (`commands/index.ts`). Handlers return their tagged reply; the session writes pending untagged
 * updates before it (RFC 3501 §7: EXPUNGE only where allowed) and the tagged line last.
 */
import type { MailboxStore } from '../../cache/mailboxes.js';
import type { Command } from './command-reader.js';
import type { Result } from './result.js';
import type { SelectedMailbox } from './selected.js';

/** RFC 3501 §3. */
export type ImapState = 'NOT_AUTHENTICATED' | 'AUTHENTICATED' | 'SELECTED' | 'LOGOUT';

/** A tagged reply; `after` runs once it is written (STARTTLS negotiates, LOGOUT closes). */
export interface Reply {
  status: 'OK' | 'NO' | 'BAD';
  /** Response code without brackets (`READ-ONLY`, `APPENDUID 7 12`). */
  code?: string;
  text: string;
  after?: () => void | Promise<void>;
}

/** `deferred`: the handler answers later (IDLE, AUTHENTICATE through a continuation). */
export type HandlerResult = Reply | 'deferred';

/** One entry of the command table. */
export interface CommandSpec {
  /** States the command is valid in: the dispatcher checks, once. */
  states: readonly ImapState[];
  /** Accepts the `UID` prefix. */
  uid?: boolean;
  /** RFC 3501 §7.4.1: no EXPUNGE response after the non-UID form (FETCH, STORE, SEARCH). */
  holdExpunges?: boolean;
  /** Arguments never logged (passwords, SASL responses). */
  sensitive?: boolean;
  handle(s: SessionContext, cmd: Command): Promise<HandlerResult> | HandlerResult;
}

/** The session as handlers use it. */
export interface SessionContext {
  readonly state: ImapState;
  /** The account's store once logged in. */
  readonly store: MailboxStore | undefined;
  readonly selected: SelectedMailbox | undefined;
  readonly secure: boolean;
  /** Plaintext from a non-loopback address: LOGIN and AUTHENTICATE are refused (LOGINDISABLED). */
  readonly loginDisabled: boolean;
  readonly canStartTls: boolean;
  /** CONDSTORE enabled (RFC 7162 §3.1): untagged FETCH carries MODSEQ. */
  condstore: boolean;
  /** QRESYNC enabled (RFC 7162 §3.2.3, implies CONDSTORE): expunges are reported as VANISHED. */
  qresync: boolean;
  /** Server identity for ID. */
  readonly implementation: string;
  capabilities(): string;
  /** Writes one untagged or continuation line (CRLF added). */
  send(line: string): Promise<void>;
  /** Writes raw bytes with backpressure. */
  write(buf: Buffer | string): Promise<void>;
  /** Checks credentials and opens the account; the tagged reply to give. */
  login(user: string, password: string): Promise<Reply>;
  startTls(): Promise<void>;
  /** Enter SELECTED (or leave it with undefined). */
  setSelected(mailbox: SelectedMailbox | undefined): void;
  /** Sends the pending untagged updates of the selected mailbox now. */
  flushUpdates(expunges: boolean): Promise<void>;
  /** The next raw line goes to `handler` (AUTHENTICATE, IDLE) instead of the command parser. */
  continueWith(handler: (line: Buffer) => Promise<HandlerResult>): void;
  /** Finish a deferred command: pending updates, then the tagged line. */
  finish(tag: string, reply: Reply): Promise<void>;
  /** LOGOUT: enter the LOGOUT state; the connection closes after the tagged reply. */
  logout(): void;
  /** IDLE (RFC 2177): untagged updates are sent as they happen until `idle(undefined)`. */
  setIdle(tag: string | undefined): void;
}

/** A command argument the grammar refuses: the dispatcher answers BAD with its message. */
export class BadCommand extends Error {
  override name = 'BadCommand';
}

/** A refusal with a response code: the dispatcher answers `NO [code] text`. */
export class NoReply extends Error {
  override name = 'NoReply';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The value of a parser's Result, or BAD. */
export function parsed<T, E extends string>(r: Result<T, E>): T {
  if (!r.ok) throw r.code ? new NoReply(r.error, r.code) : new BadCommand(r.error);
  return r.value;
}

export const ok = (text: string, code?: string): Reply =>
  code ? { status: 'OK', code, text } : { status: 'OK', text };
export const no = (text: string, code?: string): Reply =>
  code ? { status: 'NO', code, text } : { status: 'NO', text };
