/**
 * FETCH ENVELOPE (RFC 3501 §7.4.2) from a parsed part's header, as Dovecot writes it: header
 * values as sent (not RFC 2047 decoded), unfolded; sender and reply-to default to from; groups
 * as (NIL NIL "group" NIL) … (NIL NIL NIL NIL); an absent field is NIL.
 */
import { type Address, parseAddresses } from './address.js';
import { humanString, imapNStringNoLf } from './imap-string.js';
import { type MimePart, rawFieldValue } from './tree.js';

const ENVELOPE_FIELDS = [
  'date',
  'subject',
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'in-reply-to',
  'message-id',
] as const;
type EnvelopeField = (typeof ENVELOPE_FIELDS)[number];
const ADDRESS_FIELDS = new Set<string>(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc']);

function addressList(list: Address[] | null): string {
  if (!list || list.length === 0) return 'NIL';
  let out = '(';
  for (const a of list)
    out += `(${a.name === null ? 'NIL' : humanString(a.name)} ${imapNStringNoLf(a.route)} ${imapNStringNoLf(a.mailbox)} ${imapNStringNoLf(a.host)})`;
  return `${out})`;
}

/** The ENVELOPE list (with its parentheses) of the message whose root part is `part`, as latin1. */
export function envelopeString(buf: Buffer, part: MimePart): string {
  // Repeated fields (as Dovecot): the last string wins, address lists add up.
  const v = new Map<EnvelopeField, string>();
  const lists = new Map<EnvelopeField, Address[]>();
  for (const f of part.fields) {
    const name = f.name as EnvelopeField;
    if (!(ENVELOPE_FIELDS as readonly string[]).includes(name)) continue;
    const value = rawFieldValue(buf, f);
    if (ADDRESS_FIELDS.has(name)) lists.set(name, [...(lists.get(name) ?? []), ...parseAddresses(value)]);
    else v.set(name, value);
  }
  const str = (k: EnvelopeField) => imapNStringNoLf(v.get(k) ?? null);
  const addr = (k: EnvelopeField): Address[] | null => lists.get(k) ?? null;
  const subject = v.get('subject');
  const from = addr('from');
  const sender = addr('sender');
  const replyTo = addr('reply-to');
  return `(${[
    str('date'),
    subject === undefined ? 'NIL' : humanString(subject),
    addressList(from),
    addressList(sender?.length ? sender : from),
    addressList(replyTo?.length ? replyTo : from),
    addressList(addr('to')),
    addressList(addr('cc')),
    addressList(addr('bcc')),
    str('in-reply-to'),
    str('message-id'),
  ].join(' ')})`;
}

/** FETCH ENVELOPE value bytes for a whole message. */
export function envelope(buf: Buffer, root: MimePart): Buffer {
  return Buffer.from(envelopeString(buf, root), 'latin1');
}
