/**
 * What the dispatcher guarantees a handler through the command table (the state, hence a
 * maildrop in TRANSACTION, and the argument count), as checks the types can see. A failed
 * check is a bug in the table: it throws, and the session answers it as an internal error.
 */
import type { Maildrop } from '../maildrop.js';
import type { SessionContext } from '../types.js';

/** The snapshot of a session in TRANSACTION state. */
export function maildropOf(s: SessionContext): Maildrop {
  if (!s.maildrop) throw new Error(`no maildrop in the ${s.state} state`);
  return s.maildrop;
}

/** Argument `i`, which the table's `minArgs` makes present. */
export function requiredArg(args: readonly string[], i: number): string {
  const arg = args[i];
  if (arg === undefined) throw new Error(`argument ${i + 1} missing despite the arity check`);
  return arg;
}
