/**
 * The listeners' TLS options builder (`src/listeners/tls-options.ts`), with real handshakes on
 * loopback: the default profile refuses a TLS 1.0 client and serves TLS 1.3; the legacy profile
 * negotiates TLS 1.0 and 1.1 and still TLS 1.3 with a current client. Also why the profile sets
 * both the version floor and the security level: either alone still refuses TLS 1.0.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type net from 'node:net';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { listenerTlsProfile, loadListenerTls } from '../../src/listeners/tls-options.js';
import { selfSignedCert } from '../support/smtp.js';

const files = selfSignedCert();
after(() => rmSync(files.dir, { recursive: true, force: true }));

const TLS10: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' };
const TLS11: tls.ConnectionOptions = { ...TLS10, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' };

/** The protocol a client with `client` options negotiates with a server built from `server`, or `refused`. */
async function negotiate(server: tls.SecureContextOptions, client: tls.ConnectionOptions = {}): Promise<string> {
  const srv = tls.createServer(server, (s) => s.end());
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as net.AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...client }, () => {
        resolve(c.getProtocol() ?? 'none');
        c.destroy();
      });
      c.on('error', () => resolve('refused'));
    });
  } finally {
    srv.close();
  }
}

describe('listener TLS options', () => {
  test('the profiles: TLS 1.2 floor by default; TLS 1.0 and security level 0 for legacy', () => {
    assert.deepEqual(listenerTlsProfile(false), { minVersion: 'TLSv1.2' });
    assert.deepEqual(listenerTlsProfile(true), { minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
  });

  test('default: a TLS 1.0 or 1.1 client is refused, a current one gets TLS 1.3', async () => {
    const o = await loadListenerTls({ cert: files.cert, key: files.key });
    assert.ok(Buffer.isBuffer(o.cert) && Buffer.isBuffer(o.key), 'the files are read');
    assert.equal(await negotiate(o, TLS10), 'refused');
    assert.equal(await negotiate(o, TLS11), 'refused');
    assert.equal(await negotiate(o), 'TLSv1.3');
  });

  test('legacy: TLS 1.0 and 1.1 are negotiated, a current client still gets TLS 1.3', async () => {
    const o = await loadListenerTls({ cert: files.cert, key: files.key, legacy: true });
    assert.equal(await negotiate(o, TLS10), 'TLSv1');
    assert.equal(await negotiate(o, TLS11), 'TLSv1.1');
    assert.equal(await negotiate(o), 'TLSv1.3');
  });

  test('OpenSSL 3 needs both: the floor alone or the security level alone still refuses TLS 1.0', async () => {
    const { cert, key } = await loadListenerTls(files);
    assert.equal(await negotiate({ cert, key, minVersion: 'TLSv1' }, TLS10), 'refused');
    assert.equal(await negotiate({ cert, key, ciphers: 'DEFAULT:@SECLEVEL=0' }, TLS10), 'refused');
  });
});
