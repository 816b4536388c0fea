/**
 * The POP3 command table: verb → allowed states, arity and handler. The
 * session's dispatcher checks state and arity here, once, before any handler runs; handlers
 * never check them again. `tests/unit/pop3-server-commands.test.ts` walks this table and proves
 * every verb is refused in every state it does not list.
 *
 * UPDATE is never a state a command can run in: it exists only between QUIT and the close.
 */
import type { Pop3State, SessionContext } from '../types.js';
import { AUTH, CAPA, PASS, QUIT, STLS, USER } from './authorization.js';
import { DELE, LAST, LIST, NOOP, RETR, RSET, STAT, TOP, UIDL } from './transaction.js';

/** One command's entry. */
export interface CommandSpec {
  /** States in which the verb is valid. */
  readonly states: readonly Pop3State[];
  readonly minArgs: number;
  readonly maxArgs: number;
  /** The whole rest of the line is one argument (USER and PASS may contain spaces, RFC 1939 §7). */
  readonly restOfLine?: boolean;
  /** Arguments are credentials: the transcript shows them masked. */
  readonly sensitive?: boolean;
  /** Runs the command; `args` already has a valid count. */
  handle(s: SessionContext, args: string[]): Promise<void>;
}

const AUTHORIZATION = ['AUTHORIZATION'] as const;
const TRANSACTION = ['TRANSACTION'] as const;
const BOTH = ['AUTHORIZATION', 'TRANSACTION'] as const;

/** Every verb the server knows, upper case. */
export type Pop3Verb =
  | 'CAPA'
  | 'QUIT'
  | 'USER'
  | 'PASS'
  | 'AUTH'
  | 'STLS'
  | 'STAT'
  | 'LIST'
  | 'UIDL'
  | 'RETR'
  | 'TOP'
  | 'DELE'
  | 'RSET'
  | 'NOOP'
  | 'LAST';

/** The table the dispatcher consults. */
export const COMMANDS: Readonly<Record<Pop3Verb, CommandSpec>> = {
  CAPA: { states: BOTH, minArgs: 0, maxArgs: 0, handle: CAPA },
  QUIT: { states: BOTH, minArgs: 0, maxArgs: 0, handle: QUIT },
  USER: { states: AUTHORIZATION, minArgs: 1, maxArgs: 1, restOfLine: true, handle: USER },
  PASS: { states: AUTHORIZATION, minArgs: 1, maxArgs: 1, restOfLine: true, sensitive: true, handle: PASS },
  AUTH: { states: AUTHORIZATION, minArgs: 0, maxArgs: 2, sensitive: true, handle: AUTH },
  STLS: { states: AUTHORIZATION, minArgs: 0, maxArgs: 0, handle: STLS },
  STAT: { states: TRANSACTION, minArgs: 0, maxArgs: 0, handle: STAT },
  LIST: { states: TRANSACTION, minArgs: 0, maxArgs: 1, handle: LIST },
  UIDL: { states: TRANSACTION, minArgs: 0, maxArgs: 1, handle: UIDL },
  RETR: { states: TRANSACTION, minArgs: 1, maxArgs: 1, handle: RETR },
  TOP: { states: TRANSACTION, minArgs: 2, maxArgs: 2, handle: TOP },
  DELE: { states: TRANSACTION, minArgs: 1, maxArgs: 1, handle: DELE },
  RSET: { states: TRANSACTION, minArgs: 0, maxArgs: 0, handle: RSET },
  NOOP: { states: TRANSACTION, minArgs: 0, maxArgs: 0, handle: NOOP },
  LAST: { states: TRANSACTION, minArgs: 0, maxArgs: 0, handle: LAST },
};

/** The table entry of a verb (case-insensitive, RFC 1939 §3), or undefined. */
export function lookupCommand(verb: string): { verb: Pop3Verb; spec: CommandSpec } | undefined {
  const v = verb.toUpperCase();
  return Object.hasOwn(COMMANDS, v) ? { verb: v as Pop3Verb, spec: COMMANDS[v as Pop3Verb] } : undefined;
}
