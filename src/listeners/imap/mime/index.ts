/**
 * The MIME structure module's public surface for the IMAP session: parse once per message
 * (parseMessage), then ENVELOPE / BODY[STRUCTURE] / BODY[section] and the SEARCH text helpers.
 * See docs/imap-server.md "MIME structure".
 */
export { type Address, parseAddresses } from './address.js';
export { decodeCharset, decodeTransfer, decodeWords } from './decode.js';
export { envelope } from './envelope.js';
export type { ContentType, Params } from './fields.js';
export { addressText, bodyText, headerText, type SentDate, sentDate } from './search.js';
export { parseSection, partial, resolvePart, type SectionKind, type SectionSpec, section } from './section.js';
export { bodyStructure, countLines } from './structure.js';
export { fieldValue, type HeaderField, MAX_DEPTH, MAX_PARTS, type MimePart, parseMessage } from './tree.js';
