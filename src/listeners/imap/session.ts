/**
 * One IMAP connection (RFC 3501 §3, §5): the state, the command reader, the selected mailbox
 * and its pending updates; each command goes through the table (`commands/index.ts`), whose
 * entry says in which states it is valid: the state is checked here, once.
 *
 * Invariants:
 * - Commands run one at a time, in order, however they arrive; reading pauses while a command
 *   runs and more than INPUT_HIGH_WATER bytes wait (memory stays bounded by the reader's limits
 *   plus that).
 * - Untagged updates of the selected mailbox (changes by any writer) go out before a tagged
 *   reply, and at once while IDLE; EXPUNGE never after FETCH, STORE or SEARCH, nor while a
 *   further command is already buffered (its sequence numbers were chosen before it).
 * - Error boundary: bad syntax is BAD, a refusal NO; anything unexpected is logged and answered
 *   `NO [SERVERBUG]`; MAX_BAD consecutive BADs end the connection with BYE. Nothing internal and
 *   no credential reaches the client or the log (LOGIN/AUTHENTICATE arguments are masked).
 * - Idle timeout: `preLoginIdleMs` before login, `idleTimeoutMs` after (RFC 3501 §5.4: 30 min);
 *   the connection slot's login deadline bounds a client that keeps the line busy without logging in.
 */
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { MailboxEvent, MailboxStore } from '../../cache/mailboxes.js';
import { isLoopbackHost } from '../../shared/loopback.js';
import type { LocalAuth } from '../local-auth.js';
import { SocketEvents } from '../socket-events.js';
import { type Command, CommandReader, type ReaderLimits } from './command-reader.js';
import { lookupCommand } from './commands/index.js';
import { dispatchError } from './errors.js';
import { recentFloors } from './recent.js';
import type { SelectedMailbox } from './selected.js';
import type { HandlerResult, ImapState, Reply, SessionContext } from './types.js';
import { ConnectionClosedError, ResponseWriter } from './writer.js';

const INPUT_HIGH_WATER = 256 * 1024;
/** Consecutive BAD replies before the server gives up on the client. */
const MAX_BAD = 20;

/** What a login gives the server: the account's store (the daemon opens it, after a pull if it likes). */
export interface ImapHooks {
  openAccount(accountId: string): Promise<MailboxStore> | MailboxStore;
}

/** Everything a session needs from its server. */
export interface SessionDeps {
  auth: LocalAuth;
  hooks: ImapHooks;
  log: Logger;
  tlsContext?: SecureContext;
  implementation: string;
  idleTimeoutMs: number;
  preLoginIdleMs: number;
  limits: Partial<ReaderLimits>;
}

export class ImapSession implements SessionContext {
  state: ImapState = 'NOT_AUTHENTICATED';
  store: MailboxStore | undefined;
  selected: SelectedMailbox | undefined;
  condstore = false;
  qresync = false;
  readonly closed: Promise<void>;
  onLoggedIn?: () => void;
  private reader: CommandReader;
  private readonly out: ResponseWriter;
  private socket: Socket;
  private continuation?: (line: Buffer) => Promise<HandlerResult>;
  private idleTag?: string;
  private unlisten?: () => void;
  private busy = false;
  private ending = false;
  private gone = false;
  private bad = 0;
  private saidBye = false;
  /** The selected folder was deleted or renamed while a command ran: BYE with this after its reply. */
  private folderGone?: string;
  private flushing: Promise<void> = Promise.resolve();
  /** A `* VANISHED` went out since the last tagged reply: that reply carries HIGHESTMODSEQ. */
  private vanishedSent = false;
  private markClosed!: () => void;
  private readonly events = new SocketEvents({
    data: (chunk) => this.received(chunk),
    gone: () => this.close(),
    error: (err) => {
      this.log.debug({ err: err.message }, 'connection error');
      this.close();
    },
    timeout: () => {
      this.log.info('idle timeout: closing');
      this.ending = true;
      this.send('* BYE autologout: idle for too long')
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
    this.reader = new CommandReader(deps.limits);
    this.out = new ResponseWriter(socket);
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.attach(socket);
  }

  readonly loginExpired = (): void => {
    if (this.state !== 'NOT_AUTHENTICATED' || this.gone) return;
    this.log.info('closing a connection that did not log in in time');
    this.bye('not logged in within the time allowed');
  };
  get idle(): boolean {
    return this.state === 'NOT_AUTHENTICATED' && !this.busy && !this.continuation && !this.gone;
  }
  evict(): void {
    this.log.info('closing an idle connection that has not logged in: the listener is full');
    this.bye('too many connections, closing this idle one');
  }
  get loginDisabled(): boolean {
    return !this.secure && !isLoopbackHost(this.socket.remoteAddress ?? '');
  }
  get canStartTls(): boolean {
    return !!this.deps.tlsContext && !this.secure;
  }
  get implementation(): string {
    return this.deps.implementation;
  }

  capabilities(): string {
    const caps = ['IMAP4rev1', 'LITERAL+', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UIDPLUS', 'MOVE', 'UNSELECT'];
    caps.push('CONDSTORE', 'QRESYNC', 'SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS');
    if (this.state === 'NOT_AUTHENTICATED') {
      if (this.canStartTls) caps.push('STARTTLS');
      caps.push(...(this.loginDisabled ? ['LOGINDISABLED'] : ['SASL-IR', 'AUTH=PLAIN']));
    }
    return caps.join(' ');
  }

  async start(): Promise<void> {
    this.log.debug({ secure: this.secure }, 'connection');
    await this.send(`* OK [CAPABILITY ${this.capabilities()}] ${this.deps.implementation} IMAP4rev1 ready`).catch(() =>
      this.close(),
    );
  }

  send(line: string): Promise<void> {
    this.log.trace(`S: ${line}`);
    return this.out.write(`${line}\r\n`);
  }

  write(buf: Buffer | string): Promise<void> {
    return this.out.write(buf);
  }

  /** Server stop: close now unless a command runs (it closes after). */
  shutdown(): void {
    this.ending = true;
    if (!this.busy) this.bye('server shutting down');
  }

  destroy(): void {
    this.socket.destroy();
    this.close();
  }

  async login(user: string, password: string): Promise<Reply> {
    if (this.loginDisabled) return { status: 'NO', code: 'PRIVACYREQUIRED', text: 'use STARTTLS first' };
    const result = await this.deps.auth.verify(user, password, {
      remote: this.socket.remoteAddress,
      gone: () => this.gone,
    });
    if (!result.ok) {
      this.log.info({ user, reason: result.reason }, 'login refused');
      return result.reason === 'bad-credentials'
        ? { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'invalid credentials' }
        : { status: 'NO', code: 'UNAVAILABLE', text: 'try again later' };
    }
    let store: MailboxStore;
    try {
      store = await this.deps.hooks.openAccount(result.accountId);
    } catch (err) {
      this.log.error({ account: result.accountId, err }, 'could not open the account');
      return { status: 'NO', code: 'UNAVAILABLE', text: 'mailboxes unavailable, try again later' };
    }
    if (this.gone) return { status: 'NO', text: 'connection closed' };
    this.store = store;
    recentFloors(store); // from the account's first login on, new mail is \Recent
    this.state = 'AUTHENTICATED';
    this.unlisten = store.onChange((ev) => this.onStoreEvent(ev));
    this.socket.setTimeout(this.deps.idleTimeoutMs);
    this.onLoggedIn?.();
    this.log.info({ account: result.accountId }, 'logged in');
    return { status: 'OK', code: `CAPABILITY ${this.capabilities()}`, text: 'logged in' };
  }

  async startTls(): Promise<void> {
    const { tlsContext } = this.deps;
    if (!tlsContext) throw new Error('STARTTLS without a certificate');
    const plain = this.socket;
    // RFC 3501 §6.2.1: nothing the client sent before the handshake may count (injection).
    this.reader = new CommandReader(this.deps.limits);
    this.detach(plain);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: tlsContext });
    this.socket = secure;
    this.out.socket = secure;
    this.attach(secure);
    this.secure = true;
  }

  setSelected(mailbox: SelectedMailbox | undefined): void {
    this.selected = mailbox;
    this.state = mailbox ? 'SELECTED' : 'AUTHENTICATED';
  }

  flushUpdates(expunges: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      const text = this.selected?.drain(expunges, this.condstore, this.qresync);
      if (text) {
        if (this.qresync && text.includes('* VANISHED ')) this.vanishedSent = true;
        this.log.trace(`S: ${text.trimEnd()}`);
        await this.out.write(text);
      }
    };
    this.flushing = this.flushing.then(run, run);
    return this.flushing;
  }

  continueWith(handler: (line: Buffer) => Promise<HandlerResult>): void {
    this.continuation = handler;
    this.reader.rawLines = true;
  }

  setIdle(tag: string | undefined): void {
    this.idleTag = tag;
    if (tag && this.selected?.hasPending) void this.flushUpdates(true).catch(() => this.close());
  }

  logout(): void {
    this.state = 'LOGOUT';
    this.ending = true;
  }

  async finish(tag: string, reply: Reply, holdExpunges = false): Promise<void> {
    if (this.selected && this.state === 'SELECTED' && !this.folderGone) {
      await this.flushUpdates(!holdExpunges && this.reader.buffered === 0);
    }
    this.bad = reply.status === 'BAD' ? this.bad + 1 : 0;
    if (this.vanishedSent) reply = this.withHighestModseq(reply);
    await this.send(`${tag} ${reply.status}${reply.code ? ` [${reply.code}]` : ''} ${reply.text}`);
    await reply.after?.();
    if (this.folderGone) this.bye(this.folderGone);
    else if (this.bad >= MAX_BAD) this.bye('too many invalid commands');
  }

  /** After a VANISHED the tagged OK names the new HIGHESTMODSEQ (as Dovecot): a client resumes from it. */
  private withHighestModseq(reply: Reply): Reply {
    this.vanishedSent = false;
    const highest = this.selected && this.store?.folder(this.selected.name)?.highestModseq;
    if (reply.status !== 'OK' || reply.code || !highest) return reply;
    return { ...reply, code: `HIGHESTMODSEQ ${highest}` };
  }

  // ---- input -------------------------------------------------------------------------------

  private onStoreEvent(ev: MailboxEvent): void {
    if (!this.selected) return;
    if (ev.kind === 'folders') this.checkSelectedFolder();
    else this.selected.note(ev);
    if (this.idleTag !== undefined && !this.busy && this.selected.hasPending) {
      void this.flushUpdates(true).catch(() => this.close());
    }
  }

  /** After a folder change: the selected folder deleted or renamed means BYE (`SelectedMailbox.gone`). */
  private checkSelectedFolder(): void {
    const gone = this.store && !this.folderGone ? this.selected?.gone(this.store) : undefined;
    if (!gone) return;
    this.folderGone = gone;
    this.log.info({ folder: this.selected?.name, reason: gone }, 'selected folder gone: closing');
    if (!this.busy) this.bye(gone); // else after the running command's reply
  }

  private attach(s: Socket): void {
    this.events.attach(s, this.state === 'NOT_AUTHENTICATED' ? this.deps.preLoginIdleMs : this.deps.idleTimeoutMs);
  }

  private detach(s: Socket): void {
    this.events.detach(s);
  }

  private received(chunk: Buffer): void {
    if (this.ending) return;
    this.reader.push(chunk);
    // Only while a command runs: otherwise the reader takes in what arrives (within its limits).
    if (this.busy && this.reader.buffered > INPUT_HIGH_WATER) this.socket.pause();
    void this.pump();
  }

  /** Runs buffered commands one by one until none is complete. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.ending && !this.gone) {
        const ev = this.reader.next();
        if (!ev) break;
        if (ev.kind === 'command') await this.dispatch(ev.command);
        else if (ev.kind === 'line') await this.continued(ev.line);
        else if (ev.kind === 'continue') await this.literalRequest(ev.tag, ev.name);
        else {
          const reply: Reply = ev.tooBig
            ? { status: 'BAD', code: 'TOOBIG', text: ev.error }
            : { status: 'BAD', text: ev.error };
          await this.finish(ev.tag ?? '*', reply);
          if (ev.fatal) this.bye('protocol error');
        }
      }
    } catch (err) {
      if (!(err instanceof ConnectionClosedError)) this.log.error({ err }, 'session failed');
      this.destroy();
    } finally {
      this.busy = false;
    }
    if (this.ending && !this.gone && this.state === 'LOGOUT') this.close();
    else if (this.ending && !this.gone) this.bye('server shutting down');
    else if (this.socket.isPaused()) this.socket.resume();
  }

  /** A synchronizing literal: go on (`+`) only for a command valid now, else refuse it at once. */
  private async literalRequest(tag: string, name: string): Promise<void> {
    const spec = lookupCommand(name);
    if (spec?.states.includes(this.state)) {
      await this.send('+ Ready for literal data');
      this.reader.acceptLiteral();
      return;
    }
    this.reader.rejectLiteral();
    await this.finish(tag, { status: 'BAD', text: spec ? `${name} not allowed now` : 'unknown command' });
  }

  private async continued(line: Buffer): Promise<void> {
    const handler = this.continuation;
    this.continuation = undefined;
    this.reader.rawLines = false;
    if (!handler) return;
    this.log.trace('C: [continuation]');
    const result = await this.guard(() => handler(line));
    if (result !== 'deferred') throw new Error('a continuation must finish its command');
  }

  private async dispatch(cmd: Command): Promise<void> {
    const spec = lookupCommand(cmd.name);
    const name = `${cmd.uid ? 'UID ' : ''}${cmd.name}`;
    this.log.trace(`C: ${cmd.tag} ${name}${spec?.sensitive && cmd.args.length ? ' [redacted]' : ''}`);
    if (!spec || (cmd.uid && !spec.uid))
      return this.finish(cmd.tag, { status: 'BAD', text: `unknown command ${name}` });
    if (!spec.states.includes(this.state))
      return this.finish(cmd.tag, { status: 'BAD', text: `${name} not allowed in the ${this.state} state` });
    const reply = await this.guard(() => spec.handle(this, cmd));
    if (reply !== 'deferred') await this.finish(cmd.tag, reply, spec.holdExpunges && !cmd.uid);
  }

  /** The error boundary around a handler: a thrown refusal becomes its reply. */
  private async guard(fn: () => Promise<HandlerResult> | HandlerResult): Promise<HandlerResult> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ConnectionClosedError || this.gone) throw new ConnectionClosedError('connection closed');
      return dispatchError(err, this.log);
    }
  }

  // ---- teardown ----------------------------------------------------------------------------

  /** `* BYE text`, then close. */
  private bye(text: string): void {
    this.ending = true;
    if (this.gone || this.saidBye) return;
    this.saidBye = true;
    const close = (): void => this.close();
    this.send(`* BYE ${text}`).then(close, close);
  }

  private close(): void {
    if (!this.gone) {
      this.gone = true;
      this.ending = true;
      this.socket.end();
      this.socket.resume(); // a paused socket never reads the peer's FIN: it would stay open
    }
    this.unlisten?.();
    this.unlisten = undefined;
    this.markClosed();
  }
}
