/**
 * The step-by-step guides of `localpost client-setup` for clients set up through dialogs:
 * menu paths, field names and the boxes to tick or clear, in each client's own words, with the
 * ports and user name filled in. Each guide also says how the client passes a deletion on to the
 * server ("leave a copy on server"), since the wording differs: only Outlook, Outlook Express and
 * Windows Mail have "Remove from server when deleted from 'Deleted Items'".
 */
import type { SetupInfo } from './client-info.js';

/** One client set up through dialogs. */
export interface DialogGuide {
  title: string;
  steps(i: SetupInfo, user: string): string[];
  /** The client's "leave a copy" setting and how it passes deletions on to localpost. */
  leaveCopy: { setting: string; deletions: string };
  /** Set up from another machine (a phone): TLS, never the loopback advice. */
  remote?: boolean;
}

/** The local password, as the steps name it (never its value). */
export const PW = 'the local password (login.password in the config, or the one `localpost init` printed)';

export const DIALOG_GUIDES: Record<string, DialogGuide> = {
  'outlook-express': {
    title: 'Outlook Express 5/6',
    steps: (i, user) => [
      'Tools > Accounts > Add > Mail. Display name and e-mail address: your own.',
      'My incoming mail server is a POP3 server. Incoming mail (POP3): localhost. Outgoing mail (SMTP): localhost.',
      `Account name: ${user}. Password: ${PW}. Remember password: on.`,
      '"Log on using Secure Password Authentication (SPA)": OFF.',
      'Finish, then select the account > Properties.',
      'Servers tab: "My server requires authentication": ON > Settings: "Use same settings as my incoming mail server".',
      `Advanced tab: Outgoing mail (SMTP): ${i.smtpPort}. Incoming mail (POP3): ${i.pop3Port}.`,
      'Advanced tab: both "This server requires a secure connection (SSL)" boxes OFF.',
      'Advanced tab: "Leave a copy of messages on server": see below.',
    ],
    leaveCopy: {
      setting: '"Leave a copy of messages on server"',
      deletions: 'tick "Remove from server when deleted from \'Deleted Items\'" to pass your deletions on.',
    },
  },
  'windows-mail': {
    title: 'Windows Mail (Vista) and Windows Live Mail',
    steps: (i, user) => [
      'Tools > Accounts > Add > E-mail Account (Live Mail: Accounts > Email). Your name and address: your own.',
      '"Manually configure server settings": on. Incoming server type: POP3, server localhost, ' +
        `port ${i.pop3Port}, "requires a secure connection (SSL)": OFF.`,
      '"Log on using": Clear text authentication (never "Secure Password Authentication"). ' +
        `Logon user name: ${user}. Password: ${PW}.`,
      `Outgoing server: localhost, port ${i.smtpPort}, SSL OFF, "Requires authentication": ON (same name and password).`,
      'Account > Properties > Advanced: "Leave a copy of messages on server": see below.',
      'The Windows 10/11 Mail app: Add account > Advanced setup > Internet email; incoming ' +
        `localhost:${i.pop3Port} (POP3), outgoing localhost:${i.smtpPort}; both "Require SSL" boxes off, ` +
        '"Outgoing server requires authentication" and "Use the same user name and password" on.',
    ],
    leaveCopy: {
      setting: '"Leave a copy of messages on server"',
      deletions: 'tick "Remove from server when deleted from \'Deleted items\'" to pass your deletions on.',
    },
  },
  outlook: {
    title: 'Outlook 2010 to 2021 and Microsoft 365 (classic Outlook)',
    steps: (i, user) => [
      'Close Outlook. Control Panel > Mail (Microsoft Outlook) > Email Accounts > New > "Manual setup or ' +
        'additional server types" > "POP or IMAP". (File > Add Account logs in with your address as the user name, ' +
        'which localpost does not know.)',
      'Your Name and Email Address: your own. Account Type: POP3. Incoming mail server: localhost. ' +
        `Outgoing mail server (SMTP): localhost. User Name: ${user}. Password: ${PW}. Remember password: on.`,
      '"Require logon using Secure Password Authentication (SPA)": OFF.',
      'More Settings > Outgoing Server: "My outgoing server (SMTP) requires authentication": ON, ' +
        '"Use same settings as my incoming mail server".',
      `More Settings > Advanced: Incoming server (POP3) ${i.pop3Port}, "This server requires an encrypted connection ` +
        `(SSL/TLS)": OFF. Outgoing server (SMTP) ${i.smtpPort}, "Use the following type of encrypted connection": None.`,
      'More Settings > Advanced: "Leave a copy of messages on the server": see below.',
    ],
    leaveCopy: {
      setting: '"Leave a copy of messages on the server"',
      deletions: 'tick "Remove from server when deleted from \'Deleted Items\'" to pass your deletions on.',
    },
  },
  thunderbird: {
    title: 'Thunderbird',
    steps: (i, user) => [
      'Account Settings > Account Actions > Add Mail Account. Your name: your own. Email address: your own. ' +
        `Password: ${PW}. Then "Configure manually".`,
      `Incoming: POP3, hostname localhost, port ${i.pop3Port}, Connection security None, Authentication "Normal password", username ${user}.`,
      `Outgoing: SMTP, hostname localhost, port ${i.smtpPort}, Connection security None, Authentication "Normal password", username ${user}.`,
      'Done; Thunderbird warns that the connection is not encrypted: confirm (it stays on this machine).',
      'Account Settings > Server Settings: "Leave messages on server": see below. "Check for new messages every" 5 minutes is fine.',
    ],
    leaveCopy: {
      setting: '"Leave messages on server"',
      deletions: 'tick "Until I delete them" beside it to pass your deletions on.',
    },
  },
  'apple-mail': {
    title: 'Apple Mail (macOS)',
    steps: (i, user) => [
      `Mail > Add Account > Other Mail Account. Name: your own. Email Address: your own. Password: ${PW}.`,
      `Account Type: POP. User name: ${user}. Incoming Mail Server: localhost. Outgoing Mail Server: localhost.`,
      'Mail > Settings > Accounts > the account > Server Settings: untick "Automatically manage connection settings" for both servers.',
      `Incoming: port ${i.pop3Port}, "Use TLS/SSL" off, Authentication Password. Outgoing: port ${i.smtpPort}, ` +
        `"Use TLS/SSL" off, Authentication Password, user ${user} with the same password.`,
      'Advanced tab (Account Information on older versions): "Remove copy from server after retrieving a message": see below.',
    ],
    leaveCopy: {
      setting: '"Remove copy from server after retrieving a message" unticked, or a delay',
      deletions: '"When moved from Inbox" passes your deletions on.',
    },
  },
  eudora: {
    title: 'Eudora 5 to 7 (Windows)',
    steps: (i, user) => [
      'Tools > Options > Getting Started: Real name and Return address: your own. ' +
        `Mail Server (Incoming): localhost. Login Name: ${user}. SMTP Server (Outgoing): localhost. "Allow authentication": on.`,
      'Checking Mail: Server configuration POP, "Secure Sockets when Receiving": Never, Authentication style: Passwords. ' +
        '"Save password": on (Eudora asks for it once).',
      'Sending Mail: "Secure Sockets when Sending": Never. Eudora logs in with the same name and password.',
      'Eudora has no port fields of its own: copy esoteric.epi from the Extrastuff folder into the Eudora folder ' +
        `and restart; then Tools > Options > Ports: POP ${i.pop3Port}, SMTP ${i.smtpPort}. Or, with Eudora closed, ` +
        `add POPPort=${i.pop3Port} and SMTPPort=${i.smtpPort} under [Settings] in Eudora.ini.`,
      'Incoming Mail: "Leave mail on server": see below.',
    ],
    leaveCopy: {
      setting: '"Leave mail on server"',
      deletions: 'tick "Delete from server when emptied from Trash" to pass your deletions on.',
    },
  },
};
