/**
 * The "sign in again" message put into an account's local INBOX when its provider refuses the
 * saved sign-in: a legacy mail client shows mail, not logs. It is keyed on the moment
 * of the invalidation, so it is written once per invalidation whatever the number of pulls
 * (`AccountStore.has()` also covers a copy the user already deleted: it leaves a tombstone).
 */
import { createHash, randomBytes } from 'node:crypto';
import { type AccountStore, INBOX, storeWholeMessage } from '../../cache/message-store.js';
import { rfc5322Date } from '../../cache/outbox/bounce.js';

/** Who gets the message and why. */
export interface NoticeInput {
  account: string;
  email: string;
  invalidatedAt: number;
  reason?: string;
  now: number;
}

/** The cache key of the notice for one invalidation. */
function noticeKey(account: string, invalidatedAt: number): string {
  return `oauth_${createHash('sha256').update(`${account}\0${invalidatedAt}`).digest('hex').slice(0, 24)}`;
}

/** The first line of the message body, also used in logs and `status`. */
export function signInAgainText(account: string): string {
  return `localpost needs you to sign in again: run \`localpost auth ${account}\``;
}

/** What an account that never signed in is told (there is nothing to do "again"). */
export function signInFirstText(account: string): string {
  return `localpost needs you to sign in: run \`localpost auth ${account}\``;
}

const ascii = (s: string) =>
  s
    .replace(/[\r\n]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 900);

/** The message bytes (CRLF line ends, 7-bit). */
function buildNotice(n: NoticeInput): Buffer {
  const lines = [
    'From: localpost <localpost@localhost>',
    `To: <${ascii(n.email)}>`,
    `Subject: localpost needs you to sign in again (${ascii(n.account)})`,
    `Date: ${rfc5322Date(n.now)}`,
    `Message-ID: <${randomBytes(12).toString('hex')}.oauth@localpost>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    'Auto-Submitted: auto-generated',
    '',
    signInAgainText(n.account),
    '',
    `The mail provider of ${ascii(n.email)} no longer accepts the sign-in that localpost saved`,
    `(on ${rfc5322Date(n.invalidatedAt)}${n.reason ? `: ${ascii(n.reason)}` : ''}).`,
    'This happens when the password is changed, the access is revoked, or an organisation asks',
    'for a new sign-in after some time.',
    '',
    'Until you sign in again, no new mail arrives for this account and mail you send stays',
    'queued (nothing is lost). On the machine running localpost, type:',
    '',
    `    localpost auth ${n.account}`,
    '',
    'and follow the instructions. The daemon picks up the new sign-in by itself.',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** Writes the notice durably into the INBOX unless it is there (or was deleted) already. */
export async function deliverNotice(store: AccountStore, n: NoticeInput): Promise<boolean> {
  const key = noticeKey(n.account, n.invalidatedAt);
  if (store.has(INBOX, key)) return false;
  await storeWholeMessage(store, INBOX, key, buildNotice(n));
  return true;
}
