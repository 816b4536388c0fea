/**
 * Incremental IMAP command reader (RFC 3501 §2.2, §4.3; LITERAL+ RFC 7888): socket chunks in,
 * complete commands, literal requests, protocol errors or raw lines out.
 *
 * Invariants:
 * - Pull model: `push()` only queues; `next()` does the work and returns one event or undefined
 *   when more input is needed. Between two `next()` calls the session may switch `rawLines`
 *   (IDLE's `DONE`, AUTHENTICATE continuations) and the switch applies to the very next line.
 * - A synchronizing literal `{n}` yields a `continue` event and the reader waits: the session
 *   writes `+ Ready for literal data` and calls `acceptLiteral()`, or answers NO/BAD and calls
 *   `rejectLiteral()` (the client never sends the bytes, the command is dropped). A literal
 *   over the limit is refused by the reader itself with a non-fatal error, no `+` is due.
 * - A non-synchronizing `{n+}` over the limit is discarded (at most `maxDiscard` bytes) and then
 *   reported fatal; after any fatal error the reader is dead and drops all input.
 * - After a non-fatal error the rest of that command (further `{n+}` literals included) is skipped
 *   without being stored.
 * - Memory: after `next()` returns undefined, the reader holds at most one line fragment
 *   (`maxLineLength`), the current command (`maxCommandBytes`) and unread queued input; a line
 *   over `maxLineLength` is a fatal error as soon as it is seen, without waiting for its LF.
 *   While the session is busy it should pause the socket once `buffered` passes its high-water mark.
 */
import { CommandLexer, type Token, trailingLiteral } from './lexer.js';

export type { Token } from './lexer.js';

export interface ReaderLimits {
  /** Octets in one line fragment outside literals, CRLF excluded. */
  readonly maxLineLength: number;
  /** Largest literal accepted in APPEND. */
  readonly maxLiteralSize: number;
  /** Largest literal accepted in any other command. */
  readonly maxOtherLiteralSize: number;
  /** All fragments and literals of one command together. */
  readonly maxCommandBytes: number;
  /** Parenthesised lists inside one another. */
  readonly maxDepth: number;
  /** Tokens in one command, nested ones included. */
  readonly maxArgs: number;
  /** Bytes of an oversize `{n+}` literal swallowed before the fatal error; larger ones are fatal at once. */
  readonly maxDiscard: number;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = {
  maxLineLength: 64 * 1024,
  maxLiteralSize: 64 * 1024 * 1024,
  maxOtherLiteralSize: 1024 * 1024,
  maxCommandBytes: 65 * 1024 * 1024,
  maxDepth: 16,
  maxArgs: 10_000,
  maxDiscard: 1024 * 1024,
};

/** One complete command. `UID FETCH …` arrives as name FETCH with `uid` set. */
export interface Command {
  readonly tag: string;
  readonly name: string;
  readonly uid: boolean;
  readonly args: Token[];
}

export type ReaderEvent =
  | { readonly kind: 'command'; readonly command: Command }
  /** A synchronizing literal awaits `acceptLiteral()` or `rejectLiteral()`. */
  | { readonly kind: 'continue'; readonly tag: string; readonly name: string; readonly size: number }
  /** Reply `<tag> BAD` (or `* BAD` without a tag); when fatal, `* BYE` and close. */
  | {
      readonly kind: 'error';
      readonly tag?: string;
      readonly error: string;
      readonly fatal: boolean;
      readonly tooBig?: boolean;
    }
  /** A whole line in `rawLines` mode, CRLF removed. */
  | { readonly kind: 'line'; readonly line: Buffer };

type State =
  | { readonly s: 'line' }
  | { readonly s: 'literal'; readonly size: number; remaining: number; readonly parts: Buffer[] }
  | { readonly s: 'await'; readonly size: number }
  | { readonly s: 'skipLine' }
  | { readonly s: 'skipLiteral'; remaining: number; readonly finally?: ReaderEvent }
  | { readonly s: 'dead' };

interface Pending {
  readonly tag?: string;
  name?: string;
  uid: boolean;
  readonly lexer: CommandLexer;
  bytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const TAG = /^[^\x00-\x20(){%*"\\+\x7f-\xff]+$/;
const NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const TAIL = 32;
/** Commands a `UID` prefix may carry (RFC 3501 §6.4.8, UIDPLUS RFC 4315, MOVE RFC 6851). */
export const UID_COMMANDS: ReadonlySet<string> = new Set(['FETCH', 'STORE', 'COPY', 'MOVE', 'SEARCH', 'EXPUNGE']);

export class CommandReader {
  readonly limits: ReaderLimits;
  /** When set, each line is delivered as a `line` event, unparsed. */
  rawLines = false;
  /** Queued input; `chunks[first]` is the head, read from `pos`. */
  private chunks: Buffer[] = [];
  private first = 0;
  private pos = 0;
  private queued = 0;
  private partial: Buffer[] = [];
  private partialLength = 0;
  /** Last bytes of a line being skipped, to see a `{n+}` at its end. */
  private skipTail = '';
  private state: State = { s: 'line' };
  private cmd: Pending | undefined;

  constructor(limits: Partial<ReaderLimits> = {}) {
    this.limits = { ...DEFAULT_READER_LIMITS, ...limits };
  }

  /** Queues received bytes; the Buffer must not be modified afterwards. */
  push(chunk: Buffer): void {
    if (this.state.s === 'dead' || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** Bytes held: unread input, a partial line, the command so far and a literal in progress. */
  get buffered(): number {
    const lit = this.state.s === 'literal' ? this.state.size - this.state.remaining : 0;
    return this.queued - this.pos + this.partialLength + (this.cmd?.bytes ?? 0) + lit;
  }

  /** True once a fatal error was returned. */
  get dead(): boolean {
    return this.state.s === 'dead';
  }

  /** The session wrote `+ Ready for literal data`: read the announced bytes. */
  acceptLiteral(): void {
    if (this.state.s !== 'await') throw new Error('no literal awaits a decision');
    this.state = { s: 'literal', size: this.state.size, remaining: this.state.size, parts: [] };
  }

  /** The session refused the literal: the client sends nothing more for this command. */
  rejectLiteral(): void {
    if (this.state.s !== 'await') throw new Error('no literal awaits a decision');
    this.reset();
  }

  /** Returns the next event, or undefined when more input is needed (or a literal awaits). */
  next(): ReaderEvent | undefined {
    for (;;) {
      const st = this.state;
      switch (st.s) {
        case 'dead':
        case 'await':
          return undefined;
        case 'line': {
          const line = this.takeLine();
          if (line === undefined) return undefined;
          if (line === 'long')
            return this.die(this.tooLongTag(), `line longer than ${this.limits.maxLineLength} octets`);
          if (this.rawLines && !this.cmd) return { kind: 'line', line };
          const ev = this.onFragment(line);
          if (ev) return ev;
          break;
        }
        case 'literal': {
          const got = this.take(st.remaining, st.parts);
          st.remaining -= got;
          if (st.remaining > 0) return undefined;
          const bytes = st.parts.length === 1 ? (st.parts[0] as Buffer) : Buffer.concat(st.parts);
          const cmd = this.cmd as Pending;
          const error = cmd.lexer.addLiteral(bytes);
          cmd.bytes += bytes.length;
          this.state = { s: 'line' };
          if (error) {
            this.reset();
            this.state = { s: 'skipLine' };
            return { kind: 'error', tag: cmd.tag, error, fatal: false };
          }
          break;
        }
        case 'skipLine': {
          if (!this.skipLine()) return undefined;
          const lit = trailingLiteral(this.skipTail.replace(/\r$/, ''));
          this.skipTail = '';
          if (lit && !lit.sync) {
            if (lit.size > this.limits.maxDiscard) return this.die(undefined, 'literal too large', true);
            this.state = { s: 'skipLiteral', remaining: lit.size };
          } else this.reset();
          break;
        }
        case 'skipLiteral': {
          st.remaining -= this.take(st.remaining);
          if (st.remaining > 0) return undefined;
          if (st.finally) {
            this.drop();
            return st.finally;
          }
          this.skipTail = '';
          this.state = { s: 'skipLine' };
          break;
        }
      }
    }
  }

  /** Handles one complete fragment of the current (or a new) command. */
  private onFragment(line: Buffer): ReaderEvent | undefined {
    if (!this.cmd) {
      if (line.length === 0) return undefined;
      const sp = line.indexOf(0x20);
      const tag = line.toString('latin1', 0, sp < 0 ? line.length : sp);
      const lim = this.limits;
      this.cmd = {
        tag: TAG.test(tag) ? tag : undefined,
        uid: false,
        lexer: new CommandLexer(lim.maxDepth, lim.maxArgs),
        bytes: 0,
      };
    }
    const cmd = this.cmd;
    cmd.bytes += line.length + 2;
    if (cmd.bytes > this.limits.maxCommandBytes) return this.fail(line, 'command too long', true);
    const end = cmd.lexer.lex(line);
    if (end.kind === 'error') return this.fail(line, end.error);
    if (cmd.name === undefined) {
      const err = this.readName(cmd);
      if (err) return this.fail(line, err);
    }
    if (end.kind === 'end') {
      if (!cmd.lexer.balanced) return this.fail(line, 'unbalanced parenthesis');
      const command: Command = {
        tag: cmd.tag as string,
        name: cmd.name as string,
        uid: cmd.uid,
        args: cmd.lexer.root.slice(cmd.uid ? 3 : 2),
      };
      this.reset();
      return { kind: 'command', command };
    }
    const cap = cmd.name === 'APPEND' ? this.limits.maxLiteralSize : this.limits.maxOtherLiteralSize;
    const fits = end.size <= cap && cmd.bytes + end.size <= this.limits.maxCommandBytes;
    if (end.sync) {
      if (!fits) return this.fail(line, 'literal too large', true);
      this.state = { s: 'await', size: end.size };
      return { kind: 'continue', tag: cmd.tag as string, name: cmd.name as string, size: end.size };
    }
    if (fits) {
      this.state = { s: 'literal', size: end.size, remaining: end.size, parts: [] };
      return undefined;
    }
    const error: ReaderEvent = { kind: 'error', tag: cmd.tag, error: 'literal too large', fatal: true, tooBig: true };
    if (end.size > this.limits.maxDiscard) return this.die(cmd.tag, 'literal too large', true);
    this.cmd = undefined;
    this.state = { s: 'skipLiteral', remaining: end.size, finally: error };
    return undefined;
  }

  /** Validates tag and command name once the first fragment is lexed; returns an error text. */
  private readName(cmd: Pending): string | undefined {
    const [tag, name, sub] = cmd.lexer.root;
    if (cmd.tag === undefined || tag?.kind !== 'atom') return 'invalid tag';
    if (name?.kind !== 'atom' || !NAME.test(name.value)) return 'missing or invalid command name';
    cmd.name = name.value.toUpperCase();
    if (cmd.name === 'UID') {
      const subName = sub?.kind === 'atom' ? sub.value.toUpperCase() : '';
      if (!UID_COMMANDS.has(subName)) return 'UID needs FETCH, STORE, COPY, MOVE, SEARCH or EXPUNGE';
      cmd.name = subName;
      cmd.uid = true;
    }
    return undefined;
  }

  /** A non-fatal error in the command whose fragment `line` just ended: skip its remainder. */
  private fail(line: Buffer, error: string, tooBig = false): ReaderEvent {
    const tag = this.cmd?.tag;
    const lit = trailingLiteral(line.toString('latin1', Math.max(0, line.length - TAIL)));
    this.reset();
    if (lit && !lit.sync) {
      if (lit.size > this.limits.maxDiscard) return this.die(tag, error, tooBig);
      this.state = { s: 'skipLiteral', remaining: lit.size };
    }
    return tooBig ? { kind: 'error', tag, error, fatal: false, tooBig } : { kind: 'error', tag, error, fatal: false };
  }

  /** The tag of the command whose line is too long, if its start shows one. */
  private tooLongTag(): string | undefined {
    if (this.cmd) return this.cmd.tag;
    const start = this.partial[0]?.toString('latin1', 0, 64) ?? '';
    const sp = start.indexOf(' ');
    const tag = sp < 0 ? '' : start.slice(0, sp);
    return TAG.test(tag) ? tag : undefined;
  }

  private die(tag: string | undefined, error: string, tooBig = false): ReaderEvent {
    this.drop();
    return tooBig ? { kind: 'error', tag, error, fatal: true, tooBig } : { kind: 'error', tag, error, fatal: true };
  }

  /** Goes dead and frees every buffer. */
  private drop(): void {
    this.reset();
    this.state = { s: 'dead' };
    this.chunks = [];
    this.first = 0;
    this.pos = 0;
    this.queued = 0;
  }

  private reset(): void {
    this.cmd = undefined;
    this.state = { s: 'line' };
    this.partial = [];
    this.partialLength = 0;
  }

  /** Next complete line without CRLF / LF, undefined if incomplete, 'long' past the limit. */
  private takeLine(): Buffer | undefined | 'long' {
    for (;;) {
      const head = this.chunks[this.first];
      if (!head) return undefined;
      const lf = head.indexOf(LF, this.pos);
      if (lf < 0) {
        this.partial.push(head.subarray(this.pos));
        this.partialLength += head.length - this.pos;
        this.shift();
        // +1: the CR that may precede the LF.
        if (this.partialLength > this.limits.maxLineLength + 1) return 'long';
        continue;
      }
      let line = head.subarray(this.pos, lf);
      this.pos = lf + 1;
      if (this.pos === head.length) this.shift();
      if (this.partial.length) {
        this.partial.push(line);
        line = Buffer.concat(this.partial);
        this.partial = [];
        this.partialLength = 0;
      }
      if (line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.limits.maxLineLength) return 'long';
      return line;
    }
  }

  /** Discards through the next LF, keeping the last bytes in `skipTail`; false if incomplete. */
  private skipLine(): boolean {
    for (;;) {
      const head = this.chunks[this.first];
      if (!head) return false;
      const lf = head.indexOf(LF, this.pos);
      const stop = lf < 0 ? head.length : lf;
      let cut = stop;
      if (cut > this.pos && head[cut - 1] === CR) cut--;
      this.skipTail = (this.skipTail + head.toString('latin1', Math.max(this.pos, cut - TAIL), cut)).slice(-TAIL);
      if (lf < 0) {
        this.shift();
        continue;
      }
      this.pos = lf + 1;
      if (this.pos === head.length) this.shift();
      return true;
    }
  }

  /** Moves up to `n` queued bytes into `into` (or drops them); returns how many. */
  private take(n: number, into?: Buffer[]): number {
    let got = 0;
    while (got < n) {
      const head = this.chunks[this.first];
      if (!head) break;
      const k = Math.min(n - got, head.length - this.pos);
      into?.push(head.subarray(this.pos, this.pos + k));
      this.pos += k;
      got += k;
      if (this.pos === head.length) this.shift();
    }
    return got;
  }

  /** Drops the head chunk in O(1) amortised, however many tiny chunks are queued. */
  private shift(): void {
    this.queued -= this.chunks[this.first]?.length ?? 0;
    this.first++;
    this.pos = 0;
    if (this.first >= 64 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
