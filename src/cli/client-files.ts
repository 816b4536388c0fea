/**
 * The configuration files `localpost client-setup` prints for clients configured by a text file
 * (fetchmail, msmtp, mutt). The whole output is the file: every explanation is a comment, so
 * `localpost client-setup fetchmail > ~/.fetchmailrc` saves a working file, with the ports and
 * user names of the config.
 *
 * What each client needs on a plaintext loopback connection, and why:
 * - fetchmail 6.4 upgrades with STLS whenever it can and then insists on it: `sslproto ''` keeps
 *   it plaintext. With the local certificate it uses STLS, trusts that certificate alone
 *   (`sslcertfile`) and pins it (`sslfingerprint`, which fetchmail 6.4 compares as MD5).
 * - msmtp's `auth on` refuses to send a password without TLS: `auth plain` names the method.
 *   With the local certificate: STARTTLS, trusting that certificate alone (`tls_trust_file`).
 * - mutt: `ssl_starttls = no` (its default would upgrade and ask about the certificate).
 *
 * The local password is never printed: a placeholder stands in its place, and the file says so.
 * The files hold a password, so each says to keep it mode 0600 (fetchmail and msmtp refuse
 * one that others can read).
 */
import type { SetupAccount, SetupInfo } from './client-info.js';

/** One client configured by a text file. */
export interface FileGuide {
  title: string;
  /** Where the file usually lives. */
  path: string;
  /** The file's lines (before the common advice). */
  lines(i: SetupInfo): string[];
  /** The client's "leave a copy" setting and how it passes deletions on; undefined for a client that only sends. */
  leaveCopy?: { setting: string; deletions: string };
  /** Speaks IMAP too: its file reads over IMAP while the IMAP listener is on. */
  imap?: boolean;
}

/** What stands in the file for an account's local password. */
export function passwordPlaceholder(i: SetupInfo, a: SetupAccount): string {
  return i.accounts.length === 1 ? 'YOUR-LOCAL-PASSWORD' : `YOUR-LOCAL-PASSWORD-FOR-${a.username}`;
}

/** A string in double quotes for fetchmail and mutt (backslash and quote escaped). */
const quoted = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The opening comment of every file: where to save it, its mode, the password. */
function saveAs(i: SetupInfo, file: string, client: string, refuses: string): string[] {
  const replace =
    i.accounts.length === 1
      ? '# then replace YOUR-LOCAL-PASSWORD below with your local password (login.password in the'
      : "# then replace each YOUR-LOCAL-PASSWORD-FOR-<user> below with that user's local password (login.password in the";
  return [
    `# ${client} through localpost: this whole output is your ${file}. Save it readable by you alone`,
    `# (${refuses}):`,
    `#   (umask 077; localpost client-setup ${client} > ${file})`,
    replace,
    '# config, or the one `localpost init` printed; localpost never prints it).',
  ];
}

const fetchmail: FileGuide = {
  title: 'fetchmail',
  path: '~/.fetchmailrc',
  lines: (i) => {
    const cert = i.localCert?.pop3 ? i.localCert.info : undefined;
    const out = [
      ...saveAs(i, '~/.fetchmailrc', 'fetchmail', 'fetchmail refuses an rc file that others can read'),
      '# Run `fetchmail` (`fetchmail -d 300` polls every 5 minutes); it hands the mail to the mail server on',
      '# port 25 of this machine. Without one, uncomment the mda line of each user (procmail, maildrop, or',
      '# any program that reads a message on stdin).',
    ];
    if (cert) {
      out.push(
        "# TLS: STLS with localpost's certificate for localhost, trusted alone (sslcertfile) and pinned",
        `# (sslfingerprint: its MD5, the form fetchmail 6.4 compares; SHA-256 ${cert.sha256}).`,
        '# localpost offers STLS from its first start after `localpost cert`; a new certificate',
        '# (`localpost cert --renew`) needs these two lines again.',
      );
    } else {
      out.push("# No TLS on loopback: sslproto '' keeps fetchmail 6.4 from insisting on STLS.");
    }
    out.push('', `poll localhost protocol pop3 port ${i.pop3Port} auth password`);
    for (const a of i.accounts) {
      out.push(`    user ${quoted(a.username)} password ${quoted(passwordPlaceholder(i, a))}`);
      if (cert) {
        out.push(
          `        sslproto 'TLS1.2+' sslcertck sslcertfile ${quoted(cert.file)}`,
          `        sslfingerprint ${quoted(cert.md5)}`,
        );
      } else out.push("        sslproto ''");
      out.push(
        "        # keep    # uncomment to leave the mail in localpost's cache as well (see below)",
        '        # mda "/usr/bin/procmail -d %T"',
      );
    }
    return out;
  },
  leaveCopy: { setting: 'keep', deletions: 'fetchmail never passes on what you delete afterwards.' },
};

const msmtp: FileGuide = {
  title: 'msmtp',
  path: '~/.msmtprc',
  lines: (i) => {
    const cert = i.localCert?.smtp ? i.localCert.info : undefined;
    const senders = i.accounts.filter((a) => a.sends);
    const out = [
      ...saveAs(i, '~/.msmtprc', 'msmtp', 'msmtp refuses a file holding a password that others can read'),
      '# ~/.config/msmtp/config works as well.',
      '# Send with `msmtp -t < message` (recipients from its header) or `msmtp ADDRESS < message`; a',
      '# program that wants a sendmail takes /usr/bin/msmtp.',
      '',
      'defaults',
      'host localhost',
      `port ${i.smtpPort}`,
      '# auth plain, not auth on: msmtp chooses no method by itself for a password without TLS.',
      'auth plain',
    ];
    if (cert) {
      out.push(
        "# STARTTLS with localpost's certificate for localhost (offered from localpost's first start after",
        '# `localpost cert`), trusted alone. Or pin it instead (tls_fingerprint overrides',
        '# tls_trust_file); a new certificate needs the line again:',
        `# tls_fingerprint ${cert.sha256}`,
        'tls on',
        'tls_starttls on',
        `tls_trust_file ${cert.file}`,
      );
    } else {
      out.push('# No TLS on loopback.', 'tls off');
    }
    if (!senders.length) {
      out.push('', '# No account of this config sends mail (none has an outgoing server): nothing to send through.');
      return out;
    }
    for (const a of senders) {
      out.push(
        '',
        `account ${a.username}`,
        `from ${a.email}`,
        `user ${a.username}`,
        `password ${passwordPlaceholder(i, a)}`,
      );
    }
    const [first] = senders;
    if (first) out.push('', `account default : ${first.username}`);
    if (senders.length > 1) out.push('# another account: msmtp -a NAME');
    return out;
  },
};

/** The line naming the other accounts of the config, when there are some. */
function muttOtherAccounts(i: SetupInfo, a: SetupAccount): string[] {
  if (i.accounts.length < 2) return [];
  const ids = i.accounts.map((x) => x.id).join(', ');
  return [`# For account ${a.username}; another: localpost client-setup mutt --account ID (ids: ${ids}).`];
}

/** Mutt reading every folder over IMAP (the default while the IMAP listener is on). */
function muttImap(i: SetupInfo, a: SetupAccount): string[] {
  const out = [
    '# Mutt through localpost over IMAP: every folder, flags and deletions shared with your other clients.',
    '# Save this output as ~/.muttrc (or a file it sources); keep it mode 0600 if you uncomment the',
    '# passwords (mutt asks for them otherwise). POP3 instead: localpost client-setup mutt --pop3.',
  ];
  out.push(...muttOtherAccounts(i, a));
  out.push(
    '# record = "": localpost files what you send in the account\'s Sent folder itself.',
    '',
    `set from          = ${quoted(a.email)}`,
    `set folder        = ${quoted(`imap://${a.username}@localhost:${i.imapPort}/`)}`,
    'set spoolfile     = "+INBOX"',
    'set postponed     = "+Drafts"',
    'set trash         = "+Trash"',
    'set record        = ""',
    `set smtp_url      = ${quoted(`smtp://${a.username}@localhost:${i.smtpPort}/`)}`,
    `# set imap_pass   = ${quoted(passwordPlaceholder(i, a))}`,
    `# set smtp_pass   = ${quoted(passwordPlaceholder(i, a))}`,
    'set imap_check_subscribed = yes',
    'set ssl_starttls  = no',
    'set ssl_force_tls = no',
  );
  if (!a.sends) out.push(`# ${a.username} has no outgoing server in the config: mail sent as it is refused.`);
  return out;
}

const mutt: FileGuide = {
  title: 'Mutt (and NeoMutt)',
  path: '~/.muttrc',
  imap: true,
  lines: (i) => {
    const [a] = i.accounts;
    if (!a) return [];
    if (i.imapPort !== undefined) return muttImap(i, a);
    const pop = `pop://${a.username}@localhost:${i.pop3Port}`;
    const out = [
      '# Mutt through localpost. Save this output as ~/.muttrc (or a file it sources); keep it mode 0600',
      '# if you uncomment the passwords (mutt asks for them otherwise).',
    ];
    out.push(...muttOtherAccounts(i, a));
    out.push(
      '# No TLS on loopback: ssl_starttls = no, since mutt would otherwise upgrade and ask about the certificate.',
      '',
      `set from          = ${quoted(a.email)}`,
      `set pop_host      = ${quoted(pop)}`,
      `set smtp_url      = ${quoted(`smtp://${a.username}@localhost:${i.smtpPort}/`)}`,
      `# set pop_pass    = ${quoted(passwordPlaceholder(i, a))}`,
      `# set smtp_pass   = ${quoted(passwordPlaceholder(i, a))}`,
      '# ask-no: G (fetch-mail) downloads into your spool file and asks before deleting (see below)',
      'set pop_delete    = ask-no',
      'set ssl_starttls  = no',
      'set ssl_force_tls = no',
      '# To read in place instead of downloading with G:',
      `# set folder    = ${quoted(`${pop}/`)}`,
      '# set spoolfile = "+"',
    );
    if (!a.sends) out.push(`# ${a.username} has no outgoing server in the config: mail sent as it is refused.`);
    return out;
  },
  leaveCopy: {
    setting: 'pop_delete = no or ask-no',
    deletions: 'reading in place (folder = pop://...) passes your deletions on; downloaded mail does not.',
  },
};

export const FILE_GUIDES: Record<string, FileGuide> = { fetchmail, msmtp, mutt };
