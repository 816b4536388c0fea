/**
 * `localpost client-setup [CLIENT] [--account ID]`: what to type into a mail client, with the
 * ports and user names of the config (defaults 1110 and 1025 when there is none yet).
 *
 * Clients set up through dialogs get numbered steps (client-guides.ts); clients set up by a text
 * file (fetchmail, msmtp, mutt) get the whole file and nothing else (client-files.ts), so the
 * output can be saved as it is.
 *
 * The advice is the same for every client: server `localhost`; POP3 and SMTP without SSL,
 * since loopback traffic never leaves the machine (and Outlook Express speaks only TLS 1.0,
 * which Node refuses by default); SPA/NTLM off (localpost takes USER/PASS and AUTH PLAIN); SMTP
 * authentication on with the same name and password; and what "leave a copy on the server" means
 * when the server is localpost's cache (`leaveCopyAdvice`). When the listeners offer localpost's
 * own certificate (`localpost cert`), its fingerprint is shown, and the text-file clients trust
 * and pin it. No password is ever printed.
 */
import type { CertInfo } from '../config/local-cert.js';
import { FILE_GUIDES, type FileGuide } from './client-files.js';
import { DIALOG_GUIDES, type DialogGuide } from './client-guides.js';
import type { SetupInfo } from './client-info.js';

/** The client names `client-setup` knows, in display order. */
export const CLIENT_NAMES = [
  'outlook-express',
  'windows-mail',
  'outlook',
  'thunderbird',
  'apple-mail',
  'eudora',
  'mutt',
  'fetchmail',
  'msmtp',
];

const guideOf = (client: string): DialogGuide | FileGuide | undefined => DIALOG_GUIDES[client] ?? FILE_GUIDES[client];

/** What "leave a copy on the server" does when the server is localpost. */
function leaveCopyAdvice(i: SetupInfo, leaveCopy: { setting: string; deletions: string }): string[] {
  const lines = [
    `Leave a copy on server (${leaveCopy.setting}): "the server" is localpost's cache here, not your provider.`,
    "  Off (the client deletes what it downloaded): the message leaves localpost's cache; what happens",
    "  upstream depends on the account's onLocalDelete:",
    '    keep-upstream    the provider keeps its copy, and localpost never downloads it again;',
    '    delete-upstream  localpost deletes it at the provider too, at the next pull.',
    '  On: the cache keeps everything, so a second client, or this one after a reinstall, sees all mail;',
    `  ${leaveCopy.deletions}`,
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

/** A warning when the local certificate has expired or soon will. */
function expiryWarning(cert: CertInfo, now: Date): string[] {
  const days = Math.floor((cert.validTo.getTime() - now.getTime()) / 86_400_000);
  if (days > 30) return [];
  const when = days < 0 ? 'has expired' : `expires in ${days} day${days === 1 ? '' : 's'}`;
  return [`The local certificate ${when}: run \`localpost cert --renew\`, restart localpost, and set up again.`];
}

/** The lines about the local certificate for clients set up through dialogs. */
function certNote(i: SetupInfo, now: Date): string[] {
  const c = i.localCert;
  if (!c) return [];
  const where = c.pop3 && c.smtp ? 'POP3 (STLS) and SMTP (STARTTLS)' : c.pop3 ? 'POP3 (STLS)' : 'SMTP (STARTTLS)';
  return [
    '',
    `localpost also offers TLS on the same ports, ${where}, with its own certificate for localhost`,
    `(${c.info.file}), SHA-256 fingerprint`,
    `  ${c.info.sha256}`,
    'A client that can use it may choose STARTTLS and trust that certificate once it shows this fingerprint;',
    'the settings above, without TLS, keep working.',
    ...expiryWarning(c.info, now),
  ];
}

/** A dialog guide: summary, numbered steps, advice. */
function dialogText(guide: DialogGuide, i: SetupInfo, now: Date): string {
  const [only] = i.accounts.length === 1 ? i.accounts : [];
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
  out.push('', ...guide.steps(i, user).map((s, n) => `${n + 1}. ${s}`), '', ...leaveCopyAdvice(i, guide.leaveCopy), '');
  out.push('No SSL on purpose: loopback connections never leave this machine, and old clients (Outlook Express)');
  out.push('cannot speak the TLS versions Node accepts.');
  if (i.pop3TlsPort !== undefined) {
    out.push(
      `For another machine on your network, the POP3 listener also offers TLS on port ${i.pop3TlsPort} (listen.pop3.tls).`,
    );
  }
  out.push(...certNote(i, now));
  if (!only) {
    const sends = i.accounts.some((a) => a.sends) ? "; mail sent as each leaves through that account's provider" : '';
    out.push('', `Add one account in the client per user name above${sends}.`);
  }
  return `${out.join('\n')}\n`;
}

/** A text-file guide: the file, its advice as comments. */
function fileText(guide: FileGuide, i: SetupInfo, now: Date): string {
  const out: string[] = [];
  if (!i.configured)
    out.push('# No config file yet: defaults are shown. Run `localpost init` first, then this again.', '#');
  out.push(...guide.lines(i));
  const cert = i.localCert?.info;
  const warn = cert ? expiryWarning(cert, now) : [];
  if (guide.leaveCopy || warn.length) out.push('');
  if (guide.leaveCopy) out.push(...leaveCopyAdvice(i, guide.leaveCopy).map((l) => `# ${l}`));
  out.push(...warn.map((l) => `# ${l}`));
  return `${out.join('\n')}\n`;
}

/** The full instructions for one client. */
export function clientSetupText(client: string, i: SetupInfo, now = new Date()): string {
  const guide = guideOf(client);
  if (!guide) throw new Error(`unknown client ${client}`);
  return 'steps' in guide ? dialogText(guide, i, now) : fileText(guide, i, now);
}

/** The list printed without an argument. */
export function clientListText(): string {
  return `${[
    'localpost client-setup CLIENT prints what to type into a mail client (fetchmail, msmtp and mutt: the',
    'whole configuration file, to save as it is). --account ID picks one account of several. Clients:',
    ...CLIENT_NAMES.map((n) => `  ${n.padEnd(16)} ${guideOf(n)?.title ?? n}`),
    '',
    'Any other POP3/SMTP client: server localhost, POP3 and SMTP ports from the config (1110 and 1025 by',
    'default), no SSL, plain password, SMTP authentication with the same user name and password.',
  ].join('\n')}\n`;
}
