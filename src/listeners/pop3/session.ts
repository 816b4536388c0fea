/**
 * One POP3 connection, kept thin. It owns the state (RFC 1939 §3), the
 * line reader, the reply writer and the maildrop lock; it dispatches each line through the
 * command table, which checks state and arity once; handlers live in `commands/`.
 *
 * Invariants:
 * - Commands run strictly one at a time, in order, however they arrive (RFC 2449 PIPELINING);
 *   reading pauses while too much unprocessed input is buffered.
 * - A line longer than the limit gets `-ERR` and is skipped; the session goes on (never buffered without limit).
 * - Deadlines (slow-loris): the idle timeout restarts with every byte, but two do not. A
 *   session not logged in by its connection slot's deadline (`../connection-slots.ts`), and a command
 *   line not complete `commandTimeoutMs` after its first byte, get `-ERR` and the connection is closed.
 *   Neither interrupts a command the server is running (a login waiting for its pull, say):
 *   the session is closed when that command is done.
 * - Deletions are applied only by QUIT in TRANSACTION, through one backend call; a dropped
 *   connection, an idle timeout or a server stop commits nothing (clients retry and expect nothing gone).
 * - The maildrop lock is held from a successful login until the connection is gone, and during
 *   the UPDATE state until its commit finished (two clients polling one login never mix deletes).
 * - Error boundary: a ClientError becomes `-ERR text`; anything else is logged with its stack
 *   and answered `-ERR [SYS/TEMP]` — or, in the middle of a multi-line body, closes the
 *   connection, since the framing cannot be recovered. Nothing internal reaches the client.
 * - Credentials never reach the log: PASS/AUTH arguments and SASL continuations are masked.
 */
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ClientError, errorMessage } from '../../shared/errors.js';
import { redactString } from '../../shared/log.js';
import { isLoopbackHost } from '../../shared/loopback.js';
import { LineReader, LineTooLongError } from '../../shared/pop3-wire/index.js';
import type { LocalAuth } from '../local-auth.js';
import { SocketEvents } from '../socket-events.js';
import type { Pop3Backend } from './backend.js';
import { lookupCommand } from './commands/index.js';
import { Maildrop } from './maildrop.js';
import type { LoginOutcome, Pop3State, Pop3Workarounds, SessionContext } from './types.js';
import { ConnectionClosedError, ReplyWriter } from './writer.js';

/** Pause reading while more than this many received bytes wait to be processed. */
const INPUT_HIGH_WATER = 256 * 1024;

/** Everything a session needs from its server. */
export interface SessionDeps {
  auth: LocalAuth;
  backend: Pop3Backend;
  /** Account ids whose maildrop is held by a session (one session per maildrop). */
  locks: Set<string>;
  log: Logger;
  /** Set when a certificate is configured: enables STLS. */
  tlsContext?: SecureContext;
  workarounds: Pop3Workarounds;
  advertiseSaslPlain: boolean;
  implementation: string;
  idleTimeoutMs: number;
  /** Time allowed for one command line, from its first byte to its line end. */
  commandTimeoutMs: number;
  maxLineLength: number;
}

/** A POP3 session on one socket. */
export class Pop3Session implements SessionContext {
  state: Pop3State = 'AUTHORIZATION';
  pendingUser?: string;
  maildrop?: Maildrop;
  readonly reply: ReplyWriter;
  /** Resolves when the connection is closed and the lock released. */
  readonly closed: Promise<void>;
  private socket: Socket;
  private readonly reader: LineReader;
  private continuation?: (line: string) => Promise<void>;
  private account?: string;
  private busy = false;
  private ending = false;
  private gone = false;
  /** Set when a deadline passed while a command was running: close once it is done. */
  private expired?: 'login' | 'command';
  private commandTimer?: NodeJS.Timeout;
  /** Lines read so far; the command deadline is re-armed while lines keep completing. */
  private linesRead = 0;
  private markClosed!: () => void;
  private readonly events = new SocketEvents({
    data: (chunk) => this.received(chunk),
    gone: () => this.close(),
    error: (err) => {
      this.log.debug({ err: err.message }, 'connection error');
      this.close();
    },
    timeout: () => {
      // RFC 1939 §3 autologout: no UPDATE state, nothing is deleted.
      this.log.info('idle timeout: closing without applying deletions');
      this.reply
        .err('autologout: idle for too long')
        .catch(() => undefined)
        .finally(() => this.close());
    },
  });

  constructor(
    socket: Socket,
    private readonly deps: SessionDeps,
    public secure: boolean,
    private readonly log: Logger,
  ) {
    this.socket = socket;
    this.reader = new LineReader(deps.maxLineLength);
    this.reply = new ReplyWriter(socket, (line) => this.log.trace(line));
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.attach(socket);
  }

  /** Called once a login succeeded: the server's connection slot ends its login deadline. */
  onLoggedIn?: () => void;
  /** The login deadline of the connection slot passed. */
  readonly loginExpired = (): void => this.deadline('login');
  /** Not logged in and nothing running: closing it loses nothing (`../connection-slots.ts`). */
  get idle(): boolean {
    return this.state === 'AUTHORIZATION' && !this.busy && !this.continuation && !this.gone;
  }

  /** Closed to make room for a newer connection (only while `idle`). */
  evict(): void {
    this.log.info('closing an idle connection that has not logged in: the listener is full');
    this.ending = true;
    const destroy = (): void => this.destroy();
    void this.reply.err('too many connections, closing this idle one', 'SYS/TEMP').then(destroy, destroy);
  }

  get loginInClearRefused(): boolean {
    return !this.secure && !isLoopbackHost(this.socket.remoteAddress ?? '');
  }
  get canStartTls(): boolean {
    return !!this.deps.tlsContext && !this.secure;
  }
  get advertiseSaslPlain(): boolean {
    return this.deps.advertiseSaslPlain;
  }
  get implementation(): string {
    return this.deps.implementation;
  }
  get workarounds(): Pop3Workarounds {
    return this.deps.workarounds;
  }

  /** Sends the greeting (RFC 1939 §4). */
  async start(): Promise<void> {
    this.log.debug({ secure: this.secure }, 'connection');
    await this.reply.ok('localpost POP3 server ready').catch(() => this.close());
  }

  /** Server stop: close now unless a command (or an UPDATE commit) is running; it closes after. */
  shutdown(): void {
    this.ending = true;
    if (!this.busy && this.state !== 'UPDATE') this.close();
  }

  /** Destroy the connection at once (no UPDATE). */
  destroy(): void {
    this.socket.destroy();
    this.close();
  }

  async login(username: string, password: string): Promise<LoginOutcome> {
    const result = await this.deps.auth.verify(username, password, {
      remote: this.socket.remoteAddress,
      gone: () => this.gone,
    });
    if (!result.ok) {
      this.log.info({ user: username, reason: result.reason }, 'login refused');
      return result.reason === 'bad-credentials' ? 'bad-credentials' : 'try-later';
    }
    const { accountId } = result;
    if (this.deps.locks.has(accountId)) return 'in-use';
    this.deps.locks.add(accountId);
    this.account = accountId;
    try {
      await this.deps.backend.beforeSnapshot(accountId);
      if (this.gone) return 'unavailable';
      const snapshot = await this.deps.backend.snapshot(accountId);
      this.maildrop = new Maildrop(accountId, snapshot, this.deps.workarounds.oeNsEoh);
      this.state = 'TRANSACTION';
      this.onLoggedIn?.();
      this.log.info({ account: accountId, messages: snapshot.length }, 'logged in');
      return 'ok';
    } catch (err) {
      this.log.error({ account: accountId, err }, 'could not open the maildrop');
      this.releaseLock();
      return 'unavailable';
    }
  }

  openMessage(uid: number): Promise<AsyncIterable<Buffer> | Iterable<Buffer>> {
    const { account } = this;
    if (account === undefined) return Promise.reject(new Error('no maildrop is open'));
    return this.deps.backend.open(account, uid);
  }

  continueWith(handler: (line: string) => Promise<void>): void {
    this.continuation = handler;
  }

  async startTls(): Promise<void> {
    const { tlsContext } = this.deps;
    if (!tlsContext) throw new Error('STLS without a certificate'); // the handler checks canStartTls
    const plain = this.socket;
    this.reader.takeRest(); // RFC 2595 §4: nothing sent before the handshake may count (injection)
    this.detach(plain);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: tlsContext });
    this.socket = secure;
    this.reply.attach(secure);
    this.attach(secure);
    this.secure = true;
    this.pendingUser = undefined;
  }

  async quit(): Promise<void> {
    this.ending = true;
    if (this.state !== 'TRANSACTION') {
      await this.reply.ok('localpost signing off');
      this.close();
      return;
    }
    const { maildrop, account } = this;
    if (!maildrop || account === undefined) throw new Error('TRANSACTION state without a maildrop');
    this.state = 'UPDATE'; // RFC 1939 §6
    const uids = maildrop.deletedUids();
    try {
      if (uids.length) await this.deps.backend.deleteMessages(account, uids);
      this.log.info({ account: this.account, deleted: uids.length }, 'session ended (UPDATE applied)');
      await this.reply.ok(`localpost signing off (${uids.length} messages deleted)`);
    } catch (err) {
      if (!(err instanceof ConnectionClosedError)) {
        this.log.error({ account: this.account, err }, 'UPDATE failed: deletions not applied');
        await this.reply.err('some deleted messages not removed', 'SYS/TEMP').catch(() => undefined);
      }
    } finally {
      this.releaseLock();
      this.close();
    }
  }

  // ---- input -------------------------------------------------------------------------------

  /** The socket events the session listens to. */
  private attach(s: Socket): void {
    this.events.attach(s, this.deps.idleTimeoutMs);
  }

  private detach(s: Socket): void {
    this.events.detach(s);
  }

  private received(chunk: Buffer): void {
    if (this.ending) return;
    this.reader.push(chunk);
    if (this.reader.buffered > INPUT_HIGH_WATER) this.socket.pause();
    if (!this.commandTimer) this.armCommandTimer();
    void this.pump();
  }

  private armCommandTimer(): void {
    const lines = this.linesRead;
    this.commandTimer = setTimeout(() => {
      this.commandTimer = undefined;
      // Lines completed meanwhile, or the server is the slow one: not the client's fault.
      if (this.linesRead !== lines || this.busy) this.armCommandTimer();
      else if (this.reader.buffered > 0) this.deadline('command');
    }, this.deps.commandTimeoutMs).unref();
  }

  /** A deadline passed: answer and close now, or after the running command. */
  private deadline(which: 'login' | 'command'): void {
    this.expired = which;
    if (!this.busy) void this.expire();
  }

  private async expire(): Promise<void> {
    const which = this.expired;
    this.expired = undefined;
    if (this.gone || !which || (which === 'login' && this.state !== 'AUTHORIZATION')) return;
    const text = which === 'login' ? 'not logged in within the time allowed' : 'command line not completed in time';
    this.log.info({ reason: text }, 'closing a slow connection');
    this.ending = true;
    await this.reply.err(text, 'SYS/TEMP').catch(() => undefined);
    this.close();
  }

  /** Runs buffered commands one by one until none is complete. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.ending && !this.gone) {
        let line: Buffer | null;
        try {
          line = this.reader.readLine();
        } catch (err) {
          if (!(err instanceof LineTooLongError)) throw err;
          await this.reply.err(`line too long (over ${this.deps.maxLineLength} octets)`);
          continue;
        }
        if (line === null) break;
        this.linesRead++;
        await this.handle(line.toString('utf8'));
      }
    } catch (err) {
      if (!(err instanceof ConnectionClosedError)) this.log.error({ err }, 'session failed');
      this.destroy();
    } finally {
      this.busy = false;
    }
    if (this.reader.buffered === 0) {
      clearTimeout(this.commandTimer);
      this.commandTimer = undefined;
    }
    if (this.expired) await this.expire();
    if (this.ending && this.state !== 'UPDATE') this.close();
    else if (this.socket.isPaused() && this.reader.buffered <= INPUT_HIGH_WATER) this.socket.resume();
  }

  /** Dispatch one line: continuation, or verb lookup, state and arity check, handler. */
  private async handle(raw: string): Promise<void> {
    if (this.continuation) {
      const next = this.continuation;
      this.continuation = undefined;
      this.log.trace('C: [redacted]');
      return this.run(() => next(raw));
    }
    const line = raw.replace(/[ \t]+$/, '');
    if (line === '') return; // tolerated, not answered (sloppy clients send them)
    // The verb ends at the first space or tab; anything else (CR, NUL, U+2028, leading blanks)
    // belongs to it or to the argument, and an odd verb is simply unknown.
    const sp = line.search(/[ \t]/);
    const verb = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp).replace(/^[ \t]+/, '');
    const found = lookupCommand(verb);
    this.log.trace(`C: ${found?.spec.sensitive && rest ? `${verb} [redacted]` : redactString(line)}`);
    if (!found) return this.reply.err('unknown command');
    const { spec } = found;
    if (!spec.states.includes(this.state))
      return this.reply.err(`${found.verb} is not valid in the ${this.state} state`);
    const args = spec.restOfLine ? (rest ? [rest] : []) : rest.split(/[ \t]+/).filter(Boolean);
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      return this.reply.err(`wrong number of arguments for ${found.verb}`);
    }
    return this.run(() => spec.handle(this, args));
  }

  /** The error boundary around one handler: nothing internal reaches the client. */
  private async run(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof ConnectionClosedError || this.gone) throw new ConnectionClosedError('connection closed');
      if (this.reply.inBody) {
        this.log.error({ err }, 'failed in the middle of a reply: closing the connection');
        throw new ConnectionClosedError('reply aborted');
      }
      if (err instanceof ClientError) {
        this.log.info({ err: errorMessage(err) }, 'client error');
        await this.reply.err(err.message);
        return;
      }
      this.log.error({ err }, 'command failed');
      await this.reply.err('internal error, try again later', 'SYS/TEMP');
    }
  }

  // ---- teardown ----------------------------------------------------------------------------

  private releaseLock(): void {
    if (this.account !== undefined) this.deps.locks.delete(this.account);
    this.account = undefined;
  }

  /** Close the connection; keeps the lock while an UPDATE commit is still running. */
  private close(): void {
    clearTimeout(this.commandTimer);
    if (!this.gone) {
      this.gone = true;
      this.ending = true;
      this.socket.end();
    }
    if (this.state === 'UPDATE' && this.account !== undefined) return; // quit() releases when done
    this.releaseLock();
    this.markClosed();
  }
}
