/**
 * Provider presets for `localpost init`: server names, ports and TLS modes of the big mail
 * providers, which login name each expects, where its password comes from, and the quirks a
 * user must know (Gmail's POP window of ~250 messages and `recent:`, Microsoft's
 * OAuth-only sign-in), and whether it signs in with OAuth 2.0 (`localpost auth`). `generic` is the
 * fallback for any other server.
 *
 * Every note is written into the generated config as a comment, so it must read well there:
 * a full sentence, no longer than about 90 characters per line after wrapping.
 */
import { defaultPort, type TlsMode } from '../upstream/types.js';

/** Upstream protocol for pulling mail. */
export type Protocol = 'pop3' | 'imap';

/** One upstream server. */
export interface Endpoint {
  host: string;
  port: number;
  tls: TlsMode;
}

/** The servers of a provider; pop3 is absent when the provider offers none. */
export interface ProviderServers {
  imap?: Endpoint;
  pop3?: Endpoint;
  smtp?: Endpoint;
}

/** Everything `init` knows about one provider. */
export interface ProviderPreset {
  /** The `--provider` value. */
  name: string;
  /** Other accepted `--provider` values. */
  aliases: string[];
  /** Human name. */
  title: string;
  /** Email domains that suggest this provider. */
  domains: string[];
  /** The protocol init proposes. */
  protocol: Protocol;
  /** The upstream login for incoming mail: the whole address, or the part before the @. */
  incomingUser: 'email' | 'local-part';
  /** Where the password comes from (one sentence). */
  password: string;
  /** Quirks, one sentence each. */
  notes: string[];
  /**
   * OAuth 2.0 sign-in: the `oauth2.provider` of the config, whether it is the only way in
   * (password logins switched off), and the default tenant (Microsoft) for an address.
   */
  oauth?: { provider: 'google' | 'microsoft'; only: boolean; tenant?: (email: string) => string };
  /** The servers for an address (some providers have regional hosts). */
  servers(email: string): ProviderServers;
}

const imap = (host: string): Endpoint => ({ host, port: defaultPort('imap', 'implicit'), tls: 'implicit' });
const pop3 = (host: string): Endpoint => ({ host, port: defaultPort('pop3', 'implicit'), tls: 'implicit' });
const submission = (host: string): Endpoint => ({ host, port: defaultPort('smtp', 'starttls'), tls: 'starttls' });
const smtps = (host: string): Endpoint => ({ host, port: defaultPort('smtp', 'implicit'), tls: 'implicit' });

/** The domain of an address, lower-case ('' when there is none). */
export function emailDomain(email: string): string {
  const at = email.lastIndexOf('@');
  return at < 0
    ? ''
    : email
        .slice(at + 1)
        .trim()
        .toLowerCase();
}

const MICROSOFT_PASSWORD =
  'Signs in with OAuth 2.0: it needs the Application (client) id of an app ' +
  'registered in Microsoft Entra (README, "Signing in with OAuth 2.0"); no password is stored.';
const MICROSOFT_NOTES = [
  'Microsoft switched off password logins for IMAP and POP (Outlook.com in September 2024, ' +
    'Microsoft 365 tenants earlier): only OAuth 2.0 works, for sending too.',
  'POP must also be switched on: Outlook.com settings, Mail, Forwarding and IMAP.',
];

const PRESETS: ProviderPreset[] = [
  {
    name: 'gmail',
    aliases: ['google', 'googlemail'],
    title: 'Gmail',
    domains: ['gmail.com', 'googlemail.com'],
    protocol: 'imap',
    incomingUser: 'email',
    oauth: { provider: 'google', only: false },
    password:
      'Use an app password (Google Account, Security, 2-Step Verification, App passwords), ' +
      'or OAuth 2.0 with a client id of your own; your normal Google password is refused.',
    notes: [
      'Google Workspace (company) accounts usually need OAuth 2.0 (README, "Signing in with OAuth 2.0").',
      'IMAP caches INBOX only; adding "[Gmail]/All Mail" would fetch every message twice.',
      'POP: switch it on in Gmail settings, Forwarding and POP/IMAP. Gmail shows only about 250 ' +
        'messages per POP session; localpost repeats sessions until nothing new appears, so a ' +
        'large first pull takes several.',
      'POP: the user name "recent:you@gmail.com" shows the last 30 days whatever other clients ' +
        'already downloaded (also mail you sent); localpost skips what it already has.',
      'Gmail saves a copy of sent mail itself: let your mail client keep its Sent folder local.',
    ],
    servers: () => ({ imap: imap('imap.gmail.com'), pop3: pop3('pop.gmail.com'), smtp: submission('smtp.gmail.com') }),
  },
  {
    name: 'outlook',
    aliases: ['outlook.com', 'hotmail', 'live', 'msn'],
    title: 'Outlook.com (Hotmail, Live)',
    domains: [
      'outlook.com',
      'hotmail.com',
      'live.com',
      'msn.com',
      'outlook.de',
      'hotmail.de',
      'hotmail.co.uk',
      'hotmail.fr',
      'live.de',
    ],
    protocol: 'imap',
    incomingUser: 'email',
    oauth: { provider: 'microsoft', only: true, tenant: () => 'consumers' },
    password: MICROSOFT_PASSWORD,
    notes: MICROSOFT_NOTES,
    servers: () => ({
      imap: imap('outlook.office365.com'),
      pop3: pop3('outlook.office365.com'),
      smtp: submission('smtp-mail.outlook.com'),
    }),
  },
  {
    name: 'microsoft365',
    aliases: ['office365', 'm365', 'exchange-online'],
    title: 'Microsoft 365 (Exchange Online)',
    domains: [],
    protocol: 'imap',
    incomingUser: 'email',
    oauth: { provider: 'microsoft', only: true, tenant: emailDomain },
    password: MICROSOFT_PASSWORD,
    notes: MICROSOFT_NOTES,
    servers: () => ({
      imap: imap('outlook.office365.com'),
      pop3: pop3('outlook.office365.com'),
      smtp: submission('smtp.office365.com'),
    }),
  },
  {
    name: 'yahoo',
    aliases: ['yahoo-mail', 'ymail'],
    title: 'Yahoo Mail',
    domains: [
      'yahoo.com',
      'ymail.com',
      'rocketmail.com',
      'yahoo.co.uk',
      'yahoo.de',
      'yahoo.fr',
      'yahoo.es',
      'yahoo.it',
      'yahoo.ca',
    ],
    protocol: 'imap',
    incomingUser: 'email',
    password:
      'Use an app password (Yahoo Account Security, Generate app password); ' +
      'your normal Yahoo password is refused.',
    notes: ['Yahoo saves a copy of sent mail itself: let your mail client keep its Sent folder local.'],
    servers: () => ({
      imap: imap('imap.mail.yahoo.com'),
      pop3: pop3('pop.mail.yahoo.com'),
      smtp: smtps('smtp.mail.yahoo.com'),
    }),
  },
  {
    name: 'icloud',
    aliases: ['apple', 'me.com', 'mac.com'],
    title: 'iCloud Mail',
    domains: ['icloud.com', 'me.com', 'mac.com'],
    protocol: 'imap',
    incomingUser: 'local-part',
    password:
      'Use an app-specific password (account.apple.com, Sign-In and Security, ' +
      'App-Specific Passwords); your Apple Account password is refused.',
    notes: [
      'iCloud offers IMAP only, no POP3.',
      "The IMAP login is the name before the @ (Apple's advice); if it is refused, try the whole address.",
    ],
    servers: () => ({ imap: imap('imap.mail.me.com'), smtp: submission('smtp.mail.me.com') }),
  },
  {
    name: 'fastmail',
    aliases: ['fastmail.com'],
    title: 'Fastmail',
    domains: ['fastmail.com', 'fastmail.fm', 'fastmail.net', 'messagingengine.com'],
    protocol: 'imap',
    incomingUser: 'email',
    password: 'Use an app password (Settings, Privacy & Security, Manage app passwords) with IMAP/POP and SMTP access.',
    notes: ['The login is your whole Fastmail address, also for addresses on your own domain.'],
    servers: () => ({
      imap: imap('imap.fastmail.com'),
      pop3: pop3('pop.fastmail.com'),
      smtp: smtps('smtp.fastmail.com'),
    }),
  },
  {
    name: 'gmx',
    aliases: ['gmx.net', 'gmx.com', 'gmx.de'],
    title: 'GMX',
    domains: ['gmx.net', 'gmx.de', 'gmx.at', 'gmx.ch', 'gmx.com', 'gmx.us', 'gmx.co.uk', 'gmx.fr', 'gmx.es'],
    protocol: 'imap',
    incomingUser: 'email',
    password: 'Your GMX password, or an app password when two-factor authentication is on.',
    notes: [
      'Switch on "POP3 & IMAP access" in the GMX web mail settings first; it is off for new accounts.',
      'Addresses at gmx.net, .de, .at and .ch use the gmx.net servers; the others use gmx.com.',
    ],
    servers: (email) => {
      const d = /^gmx\.(net|de|at|ch)$/.test(emailDomain(email)) ? 'gmx.net' : 'gmx.com';
      return { imap: imap(`imap.${d}`), pop3: pop3(`pop.${d}`), smtp: submission(`mail.${d}`) };
    },
  },
  {
    name: 'zoho',
    aliases: ['zohomail', 'zoho-mail'],
    title: 'Zoho Mail',
    domains: ['zoho.com', 'zohomail.com', 'zoho.eu', 'zohomail.eu', 'zoho.in', 'zohomail.in', 'zohomail.com.au'],
    protocol: 'imap',
    incomingUser: 'email',
    password: 'Your Zoho password, or an application-specific password when two-factor authentication is on.',
    notes: [
      'Switch on IMAP or POP access in Zoho Mail settings, Mail Accounts, first.',
      'Accounts in the EU, India or Australia data centres use zoho.eu, zoho.in or zoho.com.au ' +
        'hosts; addresses on your own domain use imappro/poppro/smtppro.zoho.* instead.',
    ],
    servers: (email) => {
      const region = /\.(eu|in|com\.au)$/.exec(emailDomain(email))?.[1];
      const d = region ? `zoho.${region}` : 'zoho.com';
      return { imap: imap(`imap.${d}`), pop3: pop3(`pop.${d}`), smtp: smtps(`smtp.${d}`) };
    },
  },
  {
    name: 'generic',
    aliases: ['other', 'custom'],
    title: 'another provider',
    domains: [],
    protocol: 'imap',
    incomingUser: 'email',
    password: 'Your mail password, or an app password if your provider asks for one.',
    notes: ['Check host names and ports against your provider\'s "other mail clients" help page.'],
    servers: (email) => {
      const d = emailDomain(email) || 'example.com';
      return { imap: imap(`imap.${d}`), pop3: pop3(`pop.${d}`), smtp: submission(`smtp.${d}`) };
    },
  },
];

/** Every preset, `generic` last. */
export const PROVIDERS: readonly ProviderPreset[] = PRESETS;

/** The preset for a `--provider` value or alias (case-insensitive). */
export function findProvider(name: string): ProviderPreset | undefined {
  const n = name.trim().toLowerCase();
  return PRESETS.find((p) => p.name === n || p.aliases.includes(n));
}

/** The preset an address's domain suggests, or undefined for an unknown domain. */
export function providerForEmail(email: string): ProviderPreset | undefined {
  const d = emailDomain(email);
  return d ? PRESETS.find((p) => p.domains.includes(d)) : undefined;
}
