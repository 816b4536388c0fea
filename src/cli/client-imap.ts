/**
 * IMAP set-up of `localpost client-setup` (docs/imap-server.md "Using it"): the steps for the
 * dialog clients that speak IMAP (Thunderbird, Apple Mail, Outlook 2010+, Windows Mail / Live
 * Mail), two guides of their own (K-9 Mail on a phone, any other IMAP client), and what deleting
 * and moving in the client do. Legacy clients (Outlook Express, Eudora) keep their POP3 steps;
 * every client gets POP3 with `--pop3` or when `listen.imap.enabled` is false.
 *
 * Same advice as for POP3: server `localhost`, no TLS on loopback, a plain password, SMTP
 * authentication with the same name and password. One more: the client should not save its own
 * copy of sent mail (localpost files what it sends in the account's Sent folder).
 */
import type { DialogGuide } from './client-guides.js';
import { PW } from './client-guides.js';
import type { SetupInfo } from './client-info.js';

/** The steps of a dialog client set up for IMAP. */
export type ImapSteps = (i: SetupInfo, user: string) => string[];

/** The sentence about the client's own copy of sent mail. */
const NO_SENT_COPY =
  "localpost files what you send in the account's Sent folder itself, so the client must not save a copy";

/** IMAP steps of the dialog clients that speak IMAP well. */
export const IMAP_STEPS: Record<string, ImapSteps> = {
  thunderbird: (i, user) => [
    'Account Settings > Account Actions > Add Mail Account. Your name: your own. Email address: your own. ' +
      `Password: ${PW}. Then "Configure manually".`,
    `Incoming: IMAP, hostname localhost, port ${i.imapPort}, Connection security None, Authentication "Normal password", username ${user}.`,
    `Outgoing: SMTP, hostname localhost, port ${i.smtpPort}, Connection security None, Authentication "Normal password", username ${user}.`,
    'Done; Thunderbird warns that the connection is not encrypted: confirm (it stays on this machine).',
    `Account Settings > Copies & Folders: untick "Place a copy in" (${NO_SENT_COPY}).`,
  ],
  'apple-mail': (i, user) => [
    `Mail > Add Account > Other Mail Account. Name: your own. Email Address: your own. Password: ${PW}.`,
    `Account Type: IMAP. User name: ${user}. Incoming Mail Server: localhost. Outgoing Mail Server: localhost.`,
    'Mail > Settings > Accounts > the account > Server Settings: untick "Automatically manage connection settings" for both servers.',
    `Incoming: port ${i.imapPort}, "Use TLS/SSL" off, Authentication Password. Outgoing: port ${i.smtpPort}, ` +
      `"Use TLS/SSL" off, Authentication Password, user ${user} with the same password.`,
    `Mailbox Behaviors: untick "Store sent messages on the server" (${NO_SENT_COPY}); Trash: "Trash" on the server.`,
  ],
  outlook: (i, user) => [
    'Close Outlook. Control Panel > Mail (Microsoft Outlook) > Email Accounts > New > "Manual setup or ' +
      'additional server types" > "POP or IMAP".',
    'Your Name and Email Address: your own. Account Type: IMAP. Incoming mail server: localhost. ' +
      `Outgoing mail server (SMTP): localhost. User Name: ${user}. Password: ${PW}. Remember password: on.`,
    '"Require logon using Secure Password Authentication (SPA)": OFF.',
    'More Settings > Outgoing Server: "My outgoing server (SMTP) requires authentication": ON, ' +
      '"Use same settings as my incoming mail server".',
    `More Settings > Advanced: Incoming server (IMAP) ${i.imapPort}, encrypted connection None. ` +
      `Outgoing server (SMTP) ${i.smtpPort}, encrypted connection None. Root folder path: empty.`,
    `Outlook 2010/2013: More Settings > Sent Items: "Do not save copies of sent items" (${NO_SENT_COPY}).`,
  ],
  'windows-mail': (i, user) => [
    'Windows Live Mail: Accounts > Email. Your name and address: your own. "Manually configure server settings": on.',
    `Incoming server type: IMAP, server localhost, port ${i.imapPort}, "requires a secure connection (SSL)": OFF, ` +
      `"Log on using" Clear text authentication, Logon user name: ${user}. Password: ${PW}.`,
    `Outgoing server: localhost, port ${i.smtpPort}, SSL OFF, "Requires authentication": ON (same name and password).`,
    'Account > Properties > IMAP: "Store special folders on IMAP server": on, Sent items path "Sent", ' +
      'Deleted items path "Trash", Drafts path "Drafts".',
    `Options > Send: untick "Save copy of sent messages in the Sent items folder" (${NO_SENT_COPY}).`,
  ],
};

/** Guides of clients that exist only with IMAP here. */
export const IMAP_GUIDES: Record<string, DialogGuide> = {
  k9: {
    title: 'K-9 Mail / Thunderbird for Android (IMAP, from your phone over the LAN)',
    remote: true,
    steps: (i, user) => [
      "The phone is another machine: localpost must listen on this computer's LAN address. In the config: " +
        'listen.imap and listen.smtp with hosts: ["<LAN address>"], allowRemote: true, and tls: a block with your ' +
        'certificate (plaintext logins from the network are refused); restart localpost.',
      `Add account > Manual setup > IMAP. Server: the LAN address. Security: STARTTLS, port ${i.imapPort}` +
        `${i.imapTlsPort ? ` (or SSL/TLS, port ${i.imapTlsPort})` : ''}. Username: ${user}. Authentication: Normal password. Password: ${PW}.`,
      'IMAP path prefix: empty; "Auto-detect IMAP namespace": on.',
      `Outgoing: SMTP, the LAN address, Security STARTTLS, port ${i.smtpPort}, "Require sign-in" on, same name and password.`,
      'Accept the certificate once you checked its fingerprint.',
    ],
    leaveCopy: { setting: 'IMAP: mail stays on localpost', deletions: '' },
  },
  generic: {
    title: 'Any other IMAP client',
    steps: (i, user) => [
      `Incoming: IMAP, server localhost, port ${i.imapPort}, no SSL/TLS (STARTTLS once \`localpost cert\` made a certificate), plain password (LOGIN/PLAIN), user ${user}.`,
      `Outgoing: SMTP, server localhost, port ${i.smtpPort}, no SSL/TLS, authentication with the same name and password.`,
      'Folder path prefix: empty; the hierarchy delimiter is "/". Special folders: Sent, Drafts, Trash.',
      `Saving a copy of sent mail: off (${NO_SENT_COPY}).`,
    ],
    leaveCopy: { setting: 'IMAP: mail stays on localpost', deletions: '' },
  },
};

/** What deleting, moving and flagging in an IMAP client do, per account. */
export function imapAdvice(i: SetupInfo): string[] {
  const lines = [
    "With IMAP every client sees the same folders and flags, kept in localpost's cache:",
    '  IMAP account: flags, moves, new folders and deletions are carried to your provider, in order,',
    '    once it is reachable (`localpost journal` shows what still waits);',
    "  POP3 account: the folders are local; deleting from INBOX follows the account's onLocalDelete.",
  ];
  if (i.configured) {
    lines.push('  Your accounts:');
    for (const a of i.accounts)
      lines.push(
        `    ${a.username} (${a.upstream}): ${a.protocol}${a.protocol === 'pop3' ? `, onLocalDelete: ${a.onLocalDelete}` : ''}`,
      );
  }
  return lines;
}

/** The same facts for POP3 set-up (`--pop3`): no IMAP port, so every guide gives its POP3 steps. */
export function forPop3(i: SetupInfo): SetupInfo {
  const { imapPort: _p, imapTlsPort: _t, ...rest } = i;
  return rest;
}
