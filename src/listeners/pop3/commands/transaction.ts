/**
 * Handlers of the TRANSACTION state (RFC 1939 §5 and §7). Message numbers are resolved by the
 * snapshot (`Maildrop.lookup`), which refuses bad numbers and messages marked as deleted.
 */
import { ClientError } from '../../../shared/errors.js';
import { MessageGoneError } from '../backend.js';
import { servedBody } from '../body.js';
import type { Lookup } from '../maildrop.js';
import type { SessionContext } from '../types.js';
import { maildropOf, requiredArg } from './guarantees.js';

/** Resolves a message number or answers -ERR (returns undefined). */
async function resolve(s: SessionContext, arg: string): Promise<Lookup | undefined> {
  const r = maildropOf(s).lookup(arg);
  if (typeof r === 'string') {
    await s.reply.err(r);
    return undefined;
  }
  return r;
}

/** RFC 1939 §5 STAT: count and octets of the messages not marked as deleted; `+OK 0 0` when empty. */
export async function STAT(s: SessionContext): Promise<void> {
  const m = maildropOf(s);
  await s.reply.ok(`${m.count} ${m.octets}`);
}

/** RFC 1939 §5 LIST [n]: sizes are the octets RETR sends before dot-stuffing (clients check them). */
export async function LIST(s: SessionContext, [n]: string[]): Promise<void> {
  const m = maildropOf(s);
  if (n === undefined) {
    await s.reply.listChunks(`${m.count} messages (${m.octets} octets)`, m.listChunks());
    return;
  }
  const r = await resolve(s, n);
  if (r) await s.reply.ok(`${r.n} ${r.size}`);
}

/** RFC 1939 §7 UIDL [n]: the permanent local UID, never reused. */
export async function UIDL(s: SessionContext, [n]: string[]): Promise<void> {
  const m = maildropOf(s);
  if (n === undefined) {
    await s.reply.listChunks('unique-id listing follows', m.uidlChunks());
    return;
  }
  const r = await resolve(s, n);
  if (r) await s.reply.ok(`${r.n} ${r.uidl}`);
}

/** RFC 1939 §5 RETR n: the whole message, dot-stuffed, with the legacy-client repairs in force. */
export async function RETR(s: SessionContext, args: string[]): Promise<void> {
  const r = await resolve(s, requiredArg(args, 0));
  if (r) await sendMessage(s, r, `${r.size} octets`);
}

/** RFC 1939 §7 TOP n m: the header, the empty line and m body lines (fetchmail deletes via TOP n 99999999). */
export async function TOP(s: SessionContext, args: string[]): Promise<void> {
  const lines = requiredArg(args, 1);
  if (!/^\d{1,20}$/.test(lines)) {
    await s.reply.err('invalid number of lines');
    return;
  }
  const r = await resolve(s, requiredArg(args, 0));
  if (r) await sendMessage(s, r, 'top of message follows', Number(lines));
}

/** RFC 1939 §5 DELE n: marks only; the UPDATE state after QUIT applies it. */
export async function DELE(s: SessionContext, args: string[]): Promise<void> {
  const r = await resolve(s, requiredArg(args, 0));
  if (!r) return;
  maildropOf(s).mark(r);
  await s.reply.ok(`message ${r.n} deleted`);
}

/** RFC 1939 §5 RSET: unmark every message. */
export async function RSET(s: SessionContext): Promise<void> {
  const m = maildropOf(s);
  m.reset();
  await s.reply.ok(`maildrop has ${m.count} messages (${m.octets} octets)`);
}

/** RFC 1939 §5 NOOP. */
export async function NOOP(s: SessionContext): Promise<void> {
  await s.reply.ok();
}

/**
 * RFC 1460 LAST, removed by RFC 1725: answered -ERR, which makes fetchmail fall back to UIDL
 * as it does against Dovecot; a `+OK 0` would make it download everything again in keep mode.
 */
export async function LAST(s: SessionContext): Promise<void> {
  await s.reply.err('LAST is not supported; use UIDL');
}

async function sendMessage(s: SessionContext, r: Lookup, text: string, topLines?: number): Promise<void> {
  let source: AsyncIterable<Buffer> | Iterable<Buffer>;
  try {
    source = await s.openMessage(r.uid);
  } catch (err) {
    if (err instanceof MessageGoneError) throw new ClientError(`message ${r.n} is no longer available`);
    throw err;
  }
  const { oeNsEoh, outlookNoNuls } = s.workarounds;
  await s.reply.message(text, servedBody(source, { repairEoh: oeNsEoh, topLines }), outlookNoNuls);
}
