/**
 * `localpost cert [--renew]`: a private certificate for localhost, the way Proton Bridge does
 * it, so that clients which want TLS on loopback get it, and can pin it (`client-setup`).
 *
 * The certificate is self-signed, for `localhost`, 127.0.0.1 and ::1 (subject and alternative
 * names), RSA 2048 (what every client still in use accepts), valid 825 days (the most Apple's
 * clients accept), for server authentication only. It is made by the `openssl` program (on
 * Debian and macOS by default) from a config file of our own rather than `-addext`, which
 * LibreSSL (macOS) lacks. Invariants: the key is written mode 0600 inside `<dataDir>/tls`
 * (0700); the key and the certificate are each replaced atomically; an existing certificate is
 * kept unless `--renew` is given; nothing here touches the listeners, which read the files at
 * their next start when `listen.*.tls` is `auto`.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type CertInfo, localCertFiles, localCertInfo, readCertInfo } from '../config/local-cert.js';
import type { Config } from '../config/schema.js';
import { writeFileDurable } from '../shared/durable-fs.js';
import { runProgram } from '../shared/exec.js';
import { ensureDataDir } from '../shared/trust.js';

/** Days the certificate is valid: 825, the longest Apple's TLS clients accept. */
export const CERT_DAYS = 825;

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = localhost
O = localpost on this machine
[ext]
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
`;

/** Thrown when the certificate cannot be made; the message says why and what to do. */
export class CertError extends Error {}

/** Makes a new certificate and key in the data directory, replacing any; resolves with its facts. */
export async function createLocalCert(dataDir: string, openssl = 'openssl'): Promise<CertInfo> {
  const files = localCertFiles(dataDir);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  await chmod(files.dir, 0o700);
  const tmp = await mkdtemp(path.join(files.dir, '.new-'));
  try {
    const [cnf, cert, key] = ['openssl.cnf', 'cert.pem', 'key.pem'].map((f) => path.join(tmp, f)) as [
      string,
      string,
      string,
    ];
    await writeFile(cnf, OPENSSL_CONFIG);
    const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', String(CERT_DAYS)];
    const r = await runProgram(openssl, [...args, '-config', cnf, '-keyout', key, '-out', cert], { timeoutMs: 60_000 });
    if (r.error?.code === 'ENOENT')
      throw new CertError(
        `the openssl program is not installed (it makes the certificate): install it (Debian: apt install openssl), ` +
          'or give listen.pop3.tls, listen.imap.tls and listen.smtp.tls a certificate of your own',
      );
    if (r.code !== 0) {
      const why = r.error?.message ?? (r.stderr.trim().split('\n').at(-1) || `exit ${r.code ?? r.signal}`);
      throw new CertError(`openssl could not make the certificate: ${why}`);
    }
    await writeFileDurable(files.key, await readFile(key), 0o600);
    await writeFileDurable(files.cert, await readFile(cert), 0o644);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return readCertInfo(files.cert);
}

/** What `localpost cert` prints about a certificate. */
function describe(info: CertInfo, dataDir: string): string[] {
  return [
    `  certificate  ${info.file}`,
    `  key          ${localCertFiles(dataDir).key} (mode 0600)`,
    `  names        ${info.altNames}`,
    `  valid until  ${info.validTo.toISOString().slice(0, 10)}`,
    `  SHA-256      ${info.sha256}`,
  ];
}

/** What the listeners do with the certificate under this config. */
function usage(cfg: Config): string[] {
  const l = cfg.listen;
  const listeners = [
    { key: 'pop3', text: 'POP3 (STLS)', auto: l.pop3.tls === 'auto' },
    ...(l.imap.enabled ? [{ key: 'imap', text: 'IMAP (STARTTLS)', auto: l.imap.tls === 'auto' }] : []),
    { key: 'smtp', text: 'SMTP (STARTTLS)', auto: l.smtp.tls === 'auto' },
  ];
  const on = listeners.filter((x) => x.auto).map((x) => x.text);
  const off = listeners.filter((x) => !x.auto).map((x) => `listen.${x.key}.tls`);
  const and = (xs: string[]) => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}` : (xs[0] ?? ''));
  const lines = on.length
    ? [`${and(on)} offer it from the next start of localpost (restart it); plain logins keep working.`]
    : [];
  if (off.length)
    lines.push(
      `${and(off)} ${off.length === 1 ? 'is' : 'are'} not auto in the config, so ${off.length === 1 ? 'that listener does' : 'those listeners do'} not use it.`,
    );
  lines.push(
    'Client settings that trust and pin it: localpost client-setup fetchmail (or msmtp, mutt, thunderbird ...).',
  );
  return lines;
}

/** `localpost cert`: resolves with the exit code (0 made or already there, 1 could not make it). */
export async function runCert(
  cfg: Config,
  o: { renew?: boolean },
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number> {
  let info: CertInfo | undefined;
  try {
    info = o.renew ? undefined : await localCertInfo(cfg.dataDir);
  } catch (err) {
    io.stderr.write(
      `localpost cert: the certificate in ${localCertFiles(cfg.dataDir).dir} cannot be read (${(err as Error).message}); --renew replaces it\n`,
    );
    return 1;
  }
  if (info) {
    io.stdout.write(
      `${['localpost cert: the certificate exists already (--renew replaces it):', ...describe(info, cfg.dataDir), ...usage(cfg)].join('\n')}\n`,
    );
    return 0;
  }
  await ensureDataDir(cfg.dataDir); // a refusal is a ConfigError: exit 78
  try {
    info = await createLocalCert(cfg.dataDir);
  } catch (err) {
    io.stderr.write(`localpost cert: ${(err as Error).message}\n`);
    return 1;
  }
  const what = o.renew
    ? 'a new private certificate for localhost (clients that pinned the old one need their settings again):'
    : 'a private certificate for localhost:';
  io.stdout.write(`${[`localpost cert: wrote ${what}`, ...describe(info, cfg.dataDir), ...usage(cfg)].join('\n')}\n`);
  return 0;
}
