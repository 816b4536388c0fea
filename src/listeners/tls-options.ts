/**
 * The TLS settings of every local listener (POP3 STLS and implicit TLS, SMTP STARTTLS), built in
 * this one place so that all of them accept the same protocol versions and ciphers.
 *
 * Default: TLS 1.2 and later with Node's default ciphers. The legacy profile (`legacy: true`,
 * off unless configured) lowers the floor to TLS 1.0 and OpenSSL's security level to 0: OpenSSL
 * 3 needs both, since level 1 already forbids the SHA-1/MD5 signatures TLS 1.0 and 1.1 use
 * (docs/pitfalls.md#legacy-tls). The ciphers stay OpenSSL's DEFAULT: TLS 1.0 clients get
 * AES-CBC suites, and Node's OpenSSL has no RC4 or 3DES suite for Windows XP's clients.
 */
import { readFile } from 'node:fs/promises';
import type tls from 'node:tls';

/** A listener's certificate files and whether it accepts old clients. */
export interface ListenerTlsFiles {
  /** PEM certificate chain and key (file paths). */
  cert: string;
  key: string;
  /** Also accept TLS 1.0/1.1 and OpenSSL security level 0, for old clients without TLS 1.2. */
  legacy?: boolean;
}

/** The protocol floor and ciphers of a listener: the default profile, or the legacy one. */
export function listenerTlsProfile(legacy: boolean): Pick<tls.SecureContextOptions, 'minVersion' | 'ciphers'> {
  return legacy ? { minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' } : { minVersion: 'TLSv1.2' };
}

/** The secure-context options of a listener: its certificate files read, and its profile. */
export async function loadListenerTls(o: ListenerTlsFiles): Promise<tls.SecureContextOptions> {
  const [cert, key] = await Promise.all([readFile(o.cert), readFile(o.key)]);
  return { cert, key, ...listenerTlsProfile(o.legacy ?? false) };
}
