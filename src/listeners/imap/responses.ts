/**
 * Response pieces the handlers share beyond the wire encoders (`response.ts`): the flags every
 * mailbox offers and the untagged FETCH of a flag change.
 */
import type { MailboxMessage } from '../../cache/mailboxes.js';

/** The system flags, always listed in FLAGS and PERMANENTFLAGS. */
export const BASE_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** `FLAGS (...)` of a message, with `\Recent` last when it is recent in this session. */
export function flagsItem(m: MailboxMessage, recent: boolean): string {
  const flags = m.flags.join(' ');
  return `FLAGS (${recent ? (flags ? `${flags} \\Recent` : '\\Recent') : flags})`;
}

/** `* n FETCH (UID u FLAGS (...) MODSEQ (m))` for a flag change (CRLF included). */
export function flagsFetchLine(
  seq: number,
  m: MailboxMessage,
  withUid: boolean,
  modseq: boolean,
  recent: boolean,
): string {
  const uid = withUid ? `UID ${m.uid} ` : '';
  const ms = modseq ? ` MODSEQ (${m.modseq || 1})` : '';
  return `* ${seq} FETCH (${uid}${flagsItem(m, recent)}${ms})\r\n`;
}
