/**
 * localpost's own certificate for localhost (`localpost cert` writes it): where it lives in the
 * data directory, which certificate a listener uses for a `listen.*.tls` setting, and what a
 * client needs to pin it (SHA-256 and MD5 fingerprints, expiry).
 *
 * Invariants: the key lives in `<dataDir>/tls/` (mode 0700) with mode 0600 and is never read
 * here; `auto` means the local certificate only when both files exist, and plaintext otherwise,
 * so a data directory without a certificate serves exactly as before.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The files of the local certificate under a data directory. */
export interface LocalCertFiles {
  dir: string;
  cert: string;
  key: string;
}

/** Where `localpost cert` keeps the certificate and its key. */
export function localCertFiles(dataDir: string): LocalCertFiles {
  const dir = path.join(dataDir, 'tls');
  return { dir, cert: path.join(dir, 'localhost-cert.pem'), key: path.join(dir, 'localhost-key.pem') };
}

/** True when both files of the local certificate exist. */
export function hasLocalCert(dataDir: string): boolean {
  const f = localCertFiles(dataDir);
  return existsSync(f.cert) && existsSync(f.key);
}

/**
 * The certificate files a listener uses: the block's own for a block, the local certificate for
 * `auto` when it exists, none for `off` (or `auto` without one).
 */
export function listenerTls<B extends { cert: string; key: string }>(
  setting: 'auto' | 'off' | B,
  dataDir: string,
): B | { cert: string; key: string } | undefined {
  if (typeof setting === 'object') return setting;
  if (setting === 'off' || !hasLocalCert(dataDir)) return undefined;
  const { cert, key } = localCertFiles(dataDir);
  return { cert, key };
}

/** What a client needs to trust a certificate. */
export interface CertInfo {
  /** The PEM file. */
  file: string;
  /** `AB:CD:…`, upper case, as msmtp and most clients print it. */
  sha256: string;
  /** The MD5 fingerprint in the same form: fetchmail 6.4's `sslfingerprint` compares MD5. */
  md5: string;
  validTo: Date;
  /** Subject alternative names, as OpenSSL prints them (`DNS:localhost, IP Address:127.0.0.1`). */
  altNames: string;
}

const colonHex = (buf: Buffer) =>
  buf
    .toString('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');

/** Reads the first certificate of a PEM file; throws when it is missing or not a certificate. */
export async function readCertInfo(file: string): Promise<CertInfo> {
  const x509 = new X509Certificate(await readFile(file));
  return {
    file,
    sha256: x509.fingerprint256,
    md5: colonHex(createHash('md5').update(x509.raw).digest()),
    validTo: new Date(x509.validTo),
    altNames: x509.subjectAltName ?? '',
  };
}

/** The local certificate's facts, or undefined when there is none. */
export async function localCertInfo(dataDir: string): Promise<CertInfo | undefined> {
  return hasLocalCert(dataDir) ? readCertInfo(localCertFiles(dataDir).cert) : undefined;
}
