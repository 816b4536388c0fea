/**
 * TLS of the local IMAP server: STARTTLS (RFC 3501 §6.2.1) with nothing sent before the
 * handshake counting, implicit TLS, and LOGINDISABLED for a plaintext client that is not on
 * loopback (RFC 3501 §6.2.3; tested when the machine has a non-loopback address).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { type ImapFixture, startImap } from '../support/imap-server.js';
import { selfSignedCert } from '../support/smtp.js';

const fixtures: ImapFixture[] = [];
const sockets: net.Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const f of fixtures) await f.close();
});

/** Reads CRLF lines from a socket. */
function lines(s: net.Socket): () => Promise<string> {
  let buf = '';
  const waiting: Array<() => void> = [];
  s.on('data', (b: Buffer) => {
    buf += b.toString('latin1');
    for (const w of waiting.splice(0)) w();
  });
  return async () => {
    for (;;) {
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 2);
        return l;
      }
      await new Promise<void>((r) => waiting.push(r));
    }
  };
}

async function tlsServer(hosts = ['127.0.0.1']): Promise<ImapFixture> {
  const { cert, key } = selfSignedCert();
  const fx = await startImap({ server: { hosts, tls: { cert, key, port: 0 } } });
  fixtures.push(fx);
  return fx;
}

describe('IMAP over TLS', () => {
  test('STARTTLS: capabilities before and after, pipelined input before the handshake ignored', async () => {
    const fx = await tlsServer();
    const plain = net.connect(fx.port, '127.0.0.1');
    sockets.push(plain);
    const read = lines(plain);
    assert.match(await read(), /^\* OK \[CAPABILITY .*STARTTLS.*AUTH=PLAIN\] /);
    plain.write('a1 STARTTLS\r\na2 LOGIN alice localpw\r\n');
    assert.equal(await read(), 'a1 OK begin TLS negotiation now');
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    sockets.push(secure);
    await once(secure, 'secureConnect');
    const sread = lines(secure);
    secure.write('b1 CAPABILITY\r\n');
    const cap = await sread();
    assert.match(cap, /^\* CAPABILITY IMAP4rev1 /);
    assert.doesNotMatch(cap, /STARTTLS/);
    assert.equal(await sread(), 'b1 OK CAPABILITY completed');
    secure.write('b2 STARTTLS\r\nb3 LOGIN alice localpw\r\n');
    assert.equal(await sread(), 'b2 NO TLS is already active');
    assert.match(await sread(), /^b3 OK \[CAPABILITY [^\]]*\] logged in$/);
  });

  test('implicit TLS port greets under TLS and allows login', async () => {
    const fx = await tlsServer();
    const s = tls.connect({ port: fx.server.tlsPort as number, host: '127.0.0.1', rejectUnauthorized: false });
    sockets.push(s);
    const read = lines(s);
    const greeting = await read();
    assert.match(greeting, /^\* OK \[CAPABILITY .*AUTH=PLAIN\] /);
    assert.doesNotMatch(greeting, /STARTTLS|LOGINDISABLED/);
    s.write('a1 LOGIN alice localpw\r\n');
    assert.match(await read(), /^a1 OK /);
  });

  const remote = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  test('LOGINDISABLED for plaintext from a non-loopback address', { skip: !remote }, async () => {
    const fx = await tlsServer([remote as string]);
    const s = net.connect(fx.port, remote as string);
    sockets.push(s);
    const read = lines(s);
    const greeting = await read();
    assert.match(greeting, /LOGINDISABLED/);
    assert.doesNotMatch(greeting, /AUTH=PLAIN/);
    s.write('a1 LOGIN alice localpw\r\na2 AUTHENTICATE PLAIN AGFsaWNlAGxvY2FscHc=\r\n');
    assert.equal(await read(), 'a1 NO [PRIVACYREQUIRED] use STARTTLS first');
    assert.equal(await read(), 'a2 NO [PRIVACYREQUIRED] use STARTTLS first');
  });
});

describe('IMAP credentials in the log', () => {
  test('LOGIN, AUTHENTICATE and SASL continuations never log the password', async () => {
    const logLines: string[] = [];
    const fx = await startImap({ logLines });
    fixtures.push(fx);
    const s = net.connect(fx.port, '127.0.0.1');
    sockets.push(s);
    const read = lines(s);
    await read();
    s.write('a1 LOGIN alice s3cretPW\r\na2 AUTHENTICATE PLAIN\r\n');
    assert.match(await read(), /^a1 NO /);
    assert.equal(await read(), '+ ');
    const b64 = Buffer.from('\0alice\0s3cretPW2').toString('base64');
    s.write(`${b64}\r\n`);
    assert.match(await read(), /^a2 NO /);
    s.write('a3 LOGIN alice {8}\r\n');
    assert.equal(await read(), '+ Ready for literal data');
    s.write('s3cretPW\r\n');
    assert.match(await read(), /^a3 NO /);
    const all = logLines.join('\n');
    assert.match(all, /LOGIN \[redacted\]/);
    assert.doesNotMatch(all, /s3cretPW/);
    assert.ok(!all.includes(b64));
  });
});
