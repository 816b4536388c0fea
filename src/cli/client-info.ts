/**
 * The facts `localpost client-setup` fills into its instructions: listener ports, each account's
 * local user name, address and pull settings, and localpost's own certificate when a listener
 * offers it. Without a config, the defaults with placeholders.
 */
import { type CertInfo, localCertInfo } from '../config/local-cert.js';
import type { Config } from '../config/schema.js';

/** What the instructions need of one account. */
export interface SetupAccount {
  id: string;
  username: string;
  email: string;
  protocol: 'pop3' | 'imap';
  keepOnServer: boolean;
  onLocalDelete: 'keep-upstream' | 'delete-upstream';
  upstream: string;
  sends: boolean;
}

/** What the instructions need from the config. */
export interface SetupInfo {
  /** False when no config file exists yet (placeholders are shown). */
  configured: boolean;
  pop3Port: number;
  smtpPort: number;
  /** The implicit-TLS POP3 port, when `listen.pop3.tls` names a certificate. */
  pop3TlsPort?: number;
  /** The local IMAP port; undefined when `listen.imap.enabled` is false (clients get POP3 then). */
  imapPort?: number;
  /** The implicit-TLS IMAP port, when `listen.imap.tls` names a certificate. */
  imapTlsPort?: number;
  /** localpost's own certificate, and which listeners offer it (`tls: auto`). */
  localCert?: { info: CertInfo; pop3: boolean; imap: boolean; smtp: boolean };
  accounts: SetupAccount[];
}

/** The facts of a config (and of the local certificate, when there is one), or the defaults without one. */
export function setupInfo(cfg?: Config, cert?: CertInfo): SetupInfo {
  if (!cfg) {
    return {
      configured: false,
      pop3Port: 1110,
      imapPort: 1143,
      smtpPort: 1025,
      accounts: [
        {
          id: 'home',
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
  const { pop3, imap, smtp } = cfg.listen;
  const offered = { pop3: pop3.tls === 'auto', imap: imap.enabled && imap.tls === 'auto', smtp: smtp.tls === 'auto' };
  return {
    configured: true,
    pop3Port: pop3.port,
    smtpPort: smtp.port,
    pop3TlsPort: typeof pop3.tls === 'object' ? pop3.tls.port : undefined,
    imapPort: imap.enabled ? imap.port : undefined,
    imapTlsPort: imap.enabled && typeof imap.tls === 'object' ? imap.tls.port : undefined,
    localCert: cert && (offered.pop3 || offered.imap || offered.smtp) ? { info: cert, ...offered } : undefined,
    accounts: cfg.accounts.map((a) => ({
      id: a.id,
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

/** `setupInfo` of a config with its local certificate read from the data directory. */
export async function loadSetupInfo(cfg: Config): Promise<SetupInfo> {
  return setupInfo(cfg, await localCertInfo(cfg.dataDir));
}

/** The same facts for one account (`--account ID`); undefined when no account has that id. */
export function forAccount(i: SetupInfo, id: string): SetupInfo | undefined {
  const a = i.accounts.find((x) => x.id === id);
  return a && { ...i, accounts: [a] };
}
