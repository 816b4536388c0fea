/**
 * Which sender addresses an account may use: its own (`email` and `aliases`), compared as whole
 * addresses without regard to case, so a message the provider would refuse or rewrite is
 * refused while the client is still connected. The From: header is read from the header text
 * the outbox collected (bounded), never from the whole message.
 */
import { headerValue } from '../../cache/outbox/entry.js';

/** The addresses of a From: header value (display names, comments and groups dropped). */
export function fromAddresses(header: string): string[] {
  const value = headerValue(header, 'From');
  if (value === undefined) return [];
  // Quoted display names and comments may hold commas, angle brackets and @.
  const plain = value.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\([^()]*\)/g, '');
  const out: string[] = [];
  for (const part of plain.split(',')) {
    const angle = /<([^<>]*)>/.exec(part)?.[1];
    const addr = (angle ?? part.replace(/^[^:]*:/, '').replace(/;$/, '')).trim();
    if (addr) out.push(addr);
  }
  return out;
}

/** True when `address` is one of `own` (lower-cased). */
export function isOwnAddress(own: readonly string[], address: string): boolean {
  return own.includes(address.trim().toLowerCase());
}
