/**
 * `localpost client-setup [CLIENT] [--account ID] [--pop3]`: what to type into a mail client, with
 * the ports and user names of the config (defaults 1143, 1110 and 1025 when there is none yet).
 * Clients that speak IMAP well get IMAP (client-imap.ts) while the IMAP listener is on; the legacy
 * ones, and every client with `--pop3`, get POP3.
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
import { IMAP_GUIDES, IMAP_STEPS, type ImapSteps, imapAdvice } from './client-imap.js';
import type { SetupInfo } from './client-info.js';

/** The client names `client-setup` knows, in display order. */
export const CLIENT_NAMES = [
  'outlook-express',
  'windows-mail',
  'outlook',
  'thunderbird',
  'apple-mail',
  'eudora',
  'k9',
  'generic',
  'mutt',
  'fetchmail',
  'msmtp',
];

const guideOf = (client: string): DialogGuide | FileGuide | undefined =>
  DIALOG_GUIDES[client] ?? IMAP_GUIDES[client] ?? FILE_GUIDES[client];

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
  const on = [c.pop3 && 'POP3 (STLS)', c.imap && 'IMAP (STARTTLS)', c.smtp && 'SMTP (STARTTLS)'].filter(
    (x): x is string => typeof x === 'string',
  );
  const where = on.length > 1 ? `${on.slice(0, -1).join(', ')} and ${on.at(-1)}` : on.join('');
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

/** A dialog guide: summary, numbered steps, advice; `imap`: the client's IMAP steps, used instead of POP3. */
function dialogText(client: string, guide: DialogGuide, i: SetupInfo, now: Date, imap?: ImapSteps): string {
  const [only] = i.accounts.length === 1 ? i.accounts : [];
  const user = only ? only.username : '<user name from the list above>';
  const out = [`${guide.title}: reading and sending mail through localpost`, ''];
  if (!i.configured)
    out.push('(No config file yet: defaults are shown. Run `localpost init` first for your user name.)', '');
  // a phone reaches this machine over the LAN, with TLS (plaintext logins from the network are refused)
  const [host, tls] = guide.remote ? ["this computer's LAN address", 'STARTTLS'] : ['localhost', 'no SSL/TLS'];
  out.push(
    imap
      ? `  Incoming (IMAP)   ${host}, port ${i.imapPort}, ${tls}`
      : `  Incoming (POP3)   ${host}, port ${i.pop3Port}, ${tls}`,
    `  Outgoing (SMTP)   ${host}, port ${i.smtpPort}, ${tls}, authentication ON with the same name and password`,
    '  Password          plain (never SPA/NTLM/"secure password")',
  );
  if (only) out.push(`  User name         ${user}  (${only.email})`);
  else {
    out.push('  User names, one account each:');
    for (const a of i.accounts) out.push(`    ${a.username.padEnd(16)} ${a.email}${a.sends ? '' : '  (receive only)'}`);
  }
  const steps = (imap ?? guide.steps)(i, user);
  const advice = imap ? imapAdvice(i) : leaveCopyAdvice(i, guide.leaveCopy);
  out.push('', ...steps.map((s, n) => `${n + 1}. ${s}`), '', ...advice, '');
  if (imap && !IMAP_GUIDES[client])
    out.push(`POP3 instead (port ${i.pop3Port}, same name and password): localpost client-setup ${client} --pop3`, '');
  if (!guide.remote) {
    out.push('No SSL on purpose: loopback connections never leave this machine, and old clients (Outlook Express)');
    out.push('cannot speak the TLS versions Node accepts.');
  }
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
  const advice =
    guide.imap && i.imapPort !== undefined ? imapAdvice(i) : guide.leaveCopy ? leaveCopyAdvice(i, guide.leaveCopy) : [];
  if (advice.length || warn.length) out.push('');
  out.push(...advice.map((l) => `# ${l}`));
  out.push(...warn.map((l) => `# ${l}`));
  return `${out.join('\n')}\n`;
}

/** The full instructions for one client. */
export function clientSetupText(client: string, i: SetupInfo, now = new Date()): string {
  const guide = guideOf(client);
  if (!guide) throw new Error(`unknown client ${client}`);
  if (!('steps' in guide)) return fileText(guide, i, now);
  if (IMAP_GUIDES[client]) {
    if (i.imapPort === undefined)
      return `${guide.title}: the local IMAP listener is off (listen.imap.enabled: false in the config).\n`;
    return dialogText(client, guide, i, now, guide.steps);
  }
  return dialogText(client, guide, i, now, i.imapPort === undefined ? undefined : IMAP_STEPS[client]);
}

/** The list printed without an argument. */
export function clientListText(): string {
  return `${[
    'localpost client-setup CLIENT prints what to type into a mail client (fetchmail, msmtp and mutt: the',
    'whole configuration file, to save as it is). --account ID picks one account of several; --pop3 gives',
    'POP3 settings to a client that would get IMAP. Clients:',
    ...CLIENT_NAMES.map((n) => `  ${n.padEnd(16)} ${guideOf(n)?.title ?? n}`),
    '',
    'Any other client: server localhost, IMAP, POP3 and SMTP ports from the config (1143, 1110 and 1025 by',
    'default), no SSL, plain password, SMTP authentication with the same user name and password.',
  ].join('\n')}\n`;
}
