/**
 * The POP3 wire codec shared by the local POP3 server and the upstream POP3 client: line
 * framing with a maximum length, capped list replies, dot-stuffing in both directions with the CRLF sizer, and
 * status lines with response codes. Pure byte handling; no sockets, no I/O.
 */

export {
  CrlfSizer,
  DotStuffer,
  type DotStufferOptions,
  DotUnstuffer,
  dotStuff,
  type UnstuffResult,
} from './dot-stuffing.js';
export { HeaderEndFinder } from './header-end.js';
export { LineReader, LineTooLongError } from './line-reader.js';
export { ListReply, type ListReplyLimits } from './list-reply.js';
export {
  formatContinuation,
  formatStatusLine,
  hasResponseCode,
  parseStatusLine,
  type StatusLine,
} from './status-line.js';
