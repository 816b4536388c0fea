/**
 * localpost's own certificate for localhost: the `listen.*.tls` setting (`auto`, `off` or a
 * block, with errors that name the block's keys), which files a listener uses for it, and what
 * `localpost cert` makes with the real `openssl` (names, validity, key mode, fingerprints as
 * openssl prints them), keeps, and replaces with `--renew`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CERT_DAYS, CertError, createLocalCert, runCert } from '../../src/cli/cert.js';
import { parseConfigText } from '../../src/config/load.js';
import { listenerTls, localCertFiles, localCertInfo } from '../../src/config/local-cert.js';
import { ConfigError } from '../../src/shared/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-cert-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ACCOUNT = `accounts:
  - id: home
    email: me@example.test
    login: { password: pw }
    incoming: { protocol: pop3, host: pop.example.test, username: u, password: p }
`;

function problems(listen: string): string[] {
  try {
    parseConfigText(`listen:\n${listen}\n${ACCOUNT}`);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

/** A stream that keeps what is written. */
function sink(): NodeJS.WritableStream & { text: string } {
  const s = {
    text: '',
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WritableStream & { text: string };
}

describe('listen.*.tls', () => {
  test('auto by default; off; or a block with the certificate files', () => {
    const c = parseConfigText(ACCOUNT);
    assert.equal(c.listen.pop3.tls, 'auto');
    assert.equal(c.listen.smtp.tls, 'auto');
    const off = parseConfigText(`listen: { pop3: { tls: off }, smtp: { tls: auto } }\n${ACCOUNT}`);
    assert.equal(off.listen.pop3.tls, 'off');
    assert.equal(off.listen.smtp.tls, 'auto');
    const own = parseConfigText(`listen: { pop3: { tls: { cert: /c.pem, key: /k.pem } } }\n${ACCOUNT}`);
    assert.deepEqual(own.listen.pop3.tls, { cert: '/c.pem', key: '/k.pem', port: 1995, legacy: false });
  });

  test('errors name the word or the key of the block', () => {
    assert.match(
      problems('  pop3: { tls: on }')[0] ?? '',
      /^listen\.pop3\.tls: expected auto, off, or a mapping with cert and key/,
    );
    assert.match(problems('  smtp: { tls: { cert: /c.pem } }')[0] ?? '', /^listen\.smtp\.tls\.key: required/);
    assert.match(
      problems('  pop3: { tls: { cert: /c, key: /k, prot: 1 } }')[0] ?? '',
      /^listen\.pop3\.tls\.prot: unknown key/,
    );
    assert.match(
      problems('  pop3: { tls: { cert: /c, key: /k, port: x } }')[0] ?? '',
      /^listen\.pop3\.tls\.port: expected a number/,
    );
  });

  test('which files a listener uses: the local certificate for auto once it exists', () => {
    const dataDir = path.join(tmp, 'resolve');
    assert.equal(listenerTls('auto', dataDir), undefined, 'no certificate yet: plaintext');
    const f = localCertFiles(dataDir);
    mkdirSync(f.dir, { recursive: true });
    writeFileSync(f.cert, 'x');
    assert.equal(listenerTls('auto', dataDir), undefined, 'a certificate without its key is not used');
    writeFileSync(f.key, 'x');
    assert.deepEqual(listenerTls('auto', dataDir), { cert: f.cert, key: f.key });
    assert.equal(listenerTls('off', dataDir), undefined);
    const own = { cert: '/c.pem', key: '/k.pem', port: 1995, legacy: false };
    assert.equal(listenerTls(own, dataDir), own);
  });
});

describe('localpost cert', () => {
  const dataDir = path.join(tmp, 'data');

  test('makes a certificate for localhost, 127.0.0.1 and ::1 with a private key', async () => {
    const info = await createLocalCert(dataDir);
    const f = localCertFiles(dataDir);
    assert.equal(info.file, f.cert);
    assert.equal(statSync(f.dir).mode & 0o777, 0o700);
    assert.equal(statSync(f.key).mode & 0o777, 0o600);
    const x509 = new X509Certificate(readFileSync(f.cert));
    assert.match(x509.subject, /CN=localhost/);
    assert.equal(x509.checkHost('localhost'), 'localhost');
    assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x509.checkIP('::1'), '::1');
    assert.ok(x509.checkPrivateKey(createPrivateKey(readFileSync(f.key))));
    const days = (info.validTo.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > CERT_DAYS - 2 && days <= CERT_DAYS + 1, `valid ${days} days`);
    const fp = (alg: string) =>
      execFileSync('openssl', ['x509', '-in', f.cert, '-noout', '-fingerprint', `-${alg}`], { encoding: 'utf8' })
        .trim()
        .split('=')[1];
    assert.equal(info.sha256, fp('sha256'));
    assert.equal(info.md5, fp('md5'));
    const text = execFileSync('openssl', ['x509', '-in', f.cert, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
  });

  test('keeps an existing certificate; --renew replaces it', async () => {
    const cfg = parseConfigText(`dataDir: ${dataDir}\n${ACCOUNT}`);
    const first = await localCertInfo(dataDir);
    assert.ok(first);
    const out = sink();
    assert.equal(await runCert(cfg, {}, { stdout: out, stderr: sink() }), 0);
    assert.match(out.text, /the certificate exists already \(--renew replaces it\)/);
    assert.ok(out.text.includes(first.sha256));
    assert.equal((await localCertInfo(dataDir))?.sha256, first.sha256);
    const renewed = sink();
    assert.equal(await runCert(cfg, { renew: true }, { stdout: renewed, stderr: sink() }), 0);
    const second = await localCertInfo(dataDir);
    assert.notEqual(second?.sha256, first.sha256);
    assert.match(renewed.text, /wrote a new private certificate for localhost/);
    assert.match(
      renewed.text,
      /POP3 \(STLS\), IMAP \(STARTTLS\) and SMTP \(STARTTLS\) offer it from the next start of localpost/,
    );
    assert.match(renewed.text, /key {10}.+localhost-key\.pem \(mode 0600\)/);
  });

  test('says so when a listener is not set to auto', async () => {
    const dir = path.join(tmp, 'off');
    const cfg = parseConfigText(`dataDir: ${dir}\nlisten: { smtp: { tls: off } }\n${ACCOUNT}`);
    const out = sink();
    assert.equal(await runCert(cfg, {}, { stdout: out, stderr: sink() }), 0);
    assert.match(out.text, /^POP3 \(STLS\) and IMAP \(STARTTLS\) offer it/m);
    assert.match(out.text, /listen\.smtp\.tls is not auto in the config/);
  });

  test('without openssl: a clear error, and nothing written', async () => {
    const dir = path.join(tmp, 'no-openssl');
    await assert.rejects(createLocalCert(dir, path.join(tmp, 'no-such-openssl')), (err: Error) => {
      assert.ok(err instanceof CertError);
      assert.match(err.message, /the openssl program is not installed .*apt install openssl/);
      return true;
    });
    assert.equal(await localCertInfo(dir), undefined);
  });
});
