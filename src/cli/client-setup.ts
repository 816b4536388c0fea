/**
 * `localpost client-setup [CLIENT]`: what to type into a mail client, with the ports and user
 * names of the config (defaults 1110 and 1025 when there is none yet).
 *
 * The advice is the same for every client: server `localhost`; POP3 and SMTP without SSL,
 * since loopback traffic never leaves the machine (and Outlook Express speaks only TLS 1.0,
 * which Node refuses by default); SPA/NTLM off (localpost takes USER/PASS and
 * AUTH PLAIN); SMTP authentication on with the same name and password; and what "leave a copy
 * on the server" means when the server is localpost's cache (see `leaveCopyAdvice`).
 * No password is ever printed.
 */
import type { Config } from '../config/schema.js';

/** What the instructions need from the config. */
export interface SetupInfo {
  /** False when no config file exists yet (placeholders are shown). */
  configured: boolean;
  pop3Port: number;
  smtpPort: number;
  /** The implicit-TLS POP3 port, when `listen.pop3.tls` is set. */
  pop3TlsPort?: number;
  accounts: Array<{
    username: string;
    email: string;
    protocol: 'pop3' | 'imap';
    keepOnServer: boolean;
    onLocalDelete: 'keep-upstream' | 'delete-upstream';
    upstream: string;
    sends: boolean;
  }>;
}

/** The facts of a config, or the defaults without one. */
export function setupInfo(cfg?: Config): SetupInfo {
  if (!cfg) {
    return {
      configured: false,
      pop3Port: 1110,
      smtpPort: 1025,
      accounts: [
        {
          username: '<login.username>',
          email: 'you@example.com',
          protocol: 'pop3',
          keepOnServer: true,
          onLocalDelete: 'keep-upstream',
          upstream: 'your provider',
          sends: true,
        },
      ],
    };
  }
  return {
    configured: true,
    pop3Port: cfg.listen.pop3.port,
    smtpPort: cfg.listen.smtp.port,
    pop3TlsPort: typeof cfg.listen.pop3.tls === 'object' ? cfg.listen.pop3.tls.port : undefined,
    accounts: cfg.accounts.map((a) => ({
      username: a.login.username,
      email: a.email,
      protocol: a.incoming.protocol,
      keepOnServer: a.incoming.keepOnServer,
      onLocalDelete: a.incoming.onLocalDelete,
      upstream: a.incoming.host,
      sends: a.outgoing !== undefined,
    })),
  };
}

/** One supported client: its title and its numbered steps. */
interface ClientGuide {
  title: string;
  steps(i: SetupInfo, user: string): string[];
}

const PW = 'the local password (login.password in the config, or the one `localpost init` printed)';

const GUIDES: Record<string, ClientGuide> = {
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
  },
  thunderbird: {
    title: 'Thunderbird',
    steps: (i, user) => [
      'Account Settings > Account Actions > Add Mail Account. Name, address and password: your own name, ' +
        `address, and ${PW}. Then "Configure manually".`,
      `Incoming: POP3, hostname localhost, port ${i.pop3Port}, Connection security None, Authentication "Normal password", username ${user}.`,
      `Outgoing: SMTP, hostname localhost, port ${i.smtpPort}, Connection security None, Authentication "Normal password", username ${user}.`,
      'Done; Thunderbird warns that the connection is not encrypted: confirm (it stays on this machine).',
      'Account Settings > Server Settings: "Leave messages on server": see below. "Check for new messages every" 5 minutes is fine.',
    ],
  },
  'apple-mail': {
    title: 'Apple Mail (macOS)',
    steps: (i, user) => [
      `Mail > Add Account > Other Mail Account. Name, address, and password: ${PW}.`,
      `Account Type: POP. User name: ${user}. Incoming Mail Server: localhost. Outgoing Mail Server: localhost.`,
      'Mail > Settings > Accounts > the account > Server Settings: untick "Automatically manage connection settings" for both servers.',
      `Incoming: port ${i.pop3Port}, "Use TLS/SSL" off, Authentication Password. Outgoing: port ${i.smtpPort}, ` +
        `"Use TLS/SSL" off, Authentication Password, user ${user} with the same password.`,
      'Advanced tab (Account Information on older versions): "Remove copy from server after retrieving a message": see below.',
    ],
  },
  mutt: {
    title: 'Mutt (and NeoMutt)',
    steps: (i, user) => [
      'In ~/.muttrc (or a file it sources; keep it mode 0600 if it holds the password):',
      `    set pop_host      = "pop://${user}@localhost:${i.pop3Port}"`,
      `    set smtp_url      = "smtp://${user}@localhost:${i.smtpPort}/"`,
      '    set pop_pass      = "..."     # the local password; or leave it out to be asked',
      '    set smtp_pass     = "..."',
      '    set pop_delete    = ask-no    # see below',
      '    set ssl_starttls  = no        # loopback: no TLS',
      '    set ssl_force_tls = no',
      'Press G (fetch-mail) to download into your spool file, or read in place with',
      `    set folder = "pop://${user}@localhost:${i.pop3Port}/"  and  set spoolfile = "+"`,
    ],
  },
};

/** The client names `client-setup` knows, in display order. */
export const CLIENT_NAMES = Object.keys(GUIDES);

/** What "leave a copy on the server" does when the server is localpost. */
function leaveCopyAdvice(i: SetupInfo): string[] {
  const lines = [
    'Leave a copy on server: "the server" is localpost\'s cache here, not your provider.',
    "  Off (the client deletes what it downloaded): the message leaves localpost's cache; what happens",
    "  upstream depends on the account's onLocalDelete:",
    '    keep-upstream    the provider keeps its copy, and localpost never downloads it again;',
    '    delete-upstream  localpost deletes it at the provider too, at the next pull.',
    '  On: the cache keeps everything, so a second client, or this one after a reinstall, sees all mail;',
    '  tick "remove from server when deleted from Deleted Items" to pass your deletions on.',
    '  Separately, keepOnServer (POP3 accounts) says whether localpost itself leaves mail at the',
    "  provider once its own copy is safe; your client's setting never changes that.",
  ];
  if (i.configured) {
    lines.push('  Your accounts:');
    for (const a of i.accounts) {
      const keep = a.protocol === 'pop3' ? `keepOnServer: ${a.keepOnServer}, ` : '';
      lines.push(`    ${a.username} (${a.upstream}): ${keep}onLocalDelete: ${a.onLocalDelete}`);
    }
  }
  lines.push('  One client and mail you want kept at the provider: leave a copy OFF with keep-upstream.');
  return lines;
}

/** The full instructions for one client. */
export function clientSetupText(client: string, i: SetupInfo): string {
  const guide = GUIDES[client];
  if (!guide) throw new Error(`unknown client ${client}`);
  const [only] = i.accounts.length === 1 ? i.accounts : [];
  const single = only !== undefined;
  const user = only ? only.username : '<user name from the list above>';
  const out = [`${guide.title}: reading and sending mail through localpost`, ''];
  if (!i.configured)
    out.push('(No config file yet: defaults are shown. Run `localpost init` first for your user name.)', '');
  out.push(
    `  Incoming (POP3)   localhost, port ${i.pop3Port}, no SSL/TLS`,
    `  Outgoing (SMTP)   localhost, port ${i.smtpPort}, no SSL/TLS, authentication ON with the same name and password`,
    '  Password          plain (never SPA/NTLM/"secure password")',
  );
  if (only) out.push(`  User name         ${user}  (${only.email})`);
  else {
    out.push('  User names, one account each:');
    for (const a of i.accounts) out.push(`    ${a.username.padEnd(16)} ${a.email}${a.sends ? '' : '  (receive only)'}`);
  }
  out.push('', ...guide.steps(i, user).map((s, n) => `${n + 1}. ${s}`), '', ...leaveCopyAdvice(i), '');
  out.push('No SSL on purpose: loopback connections never leave this machine, and old clients (Outlook Express)');
  out.push('cannot speak the TLS versions Node accepts.');
  if (i.pop3TlsPort !== undefined) {
    out.push(
      `For another machine on your network, the POP3 listener also offers TLS on port ${i.pop3TlsPort} (listen.pop3.tls).`,
    );
  }
  if (!single) {
    const sends = i.accounts.some((a) => a.sends) ? "; mail sent as each leaves through that account's provider" : '';
    out.push('', `Add one account in the client per user name above${sends}.`);
  }
  return `${out.join('\n')}\n`;
}

/** The list printed without an argument. */
export function clientListText(): string {
  return `${[
    'localpost client-setup CLIENT prints what to type into a mail client. Clients:',
    ...Object.entries(GUIDES).map(([n, guide]) => `  ${n.padEnd(16)} ${guide.title}`),
    '',
    'Any other POP3/SMTP client: server localhost, POP3 and SMTP ports from the config (1110 and 1025 by',
    'default), no SSL, plain password, SMTP authentication with the same user name and password.',
  ].join('\n')}\n`;
}
