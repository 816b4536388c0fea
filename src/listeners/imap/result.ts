/**
 * The outcome of parsing client input: a value or the reason it is invalid. Parsers of client
 * input return this and never throw, so a hostile command can only ever produce a BAD reply.
 */

export type Result<T, E extends string = never> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string; readonly code?: E };

export const ok = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });

export const err = (error: string): { readonly ok: false; readonly error: string } => ({ ok: false, error });
