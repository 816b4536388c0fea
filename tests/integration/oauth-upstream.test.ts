/**
 * OAuth 2.0 logins against real servers: Dovecot with an oauth2 passdb that validates tokens
 * through the test's introspection endpoint (POP3 two-step XOAUTH2 and OAUTHBEARER, a token
 * over 4,096 bytes, IMAP through imapflow, a refused token with its decoded SASL error), and an
 * smtp-server upstream that accepts only XOAUTH2 (nodemailer's OAuth2, token renewal).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import { AuthError } from '../../src/shared/errors.js';
import { createImapClient } from '../../src/upstream/imap/connect.js';
import { Pop3Client, pop3Login } from '../../src/upstream/pop3/client.js';
import { NodemailerSender } from '../../src/upstream/smtp/sender.js';
import { type FakeOAuth, startFakeOAuth } from '../support/oauth-server.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let oauth: FakeOAuth;
const USER = 'alice@example.test';

before(async () => {
  oauth = await startFakeOAuth();
  tb = await startTestbed({ postfix: false, env: { OAUTH2_INTROSPECTION_URL: `${oauth.base}/introspect` } });
  await tb.seed('alice', 3);
});
after(async () => {
  await tb?.stop();
  await oauth?.close();
});

/** A pino logger at trace whose lines are collected. */
function traceLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ level: 'trace' }, sink), lines };
}

const pop3 = (log?: pino.Logger) =>
  Pop3Client.connect({ host: '127.0.0.1', port: tb.pop3Port, tls: 'none', log, timeoutMs: 10_000 });

describe('POP3 with OAuth against Dovecot', () => {
  test('XOAUTH2 in two steps (what CAPA offers first); the token never reaches the trace', async () => {
    const token = oauth.mint(USER);
    const { log, lines } = traceLog();
    const c = await pop3(log);
    try {
      assert.ok(c.capabilities.get('SASL')!.includes('XOAUTH2'));
      await c.loginOAuth(USER, token);
      assert.equal((await c.stat()).count, 3);
      await c.quit();
    } finally {
      c.close();
    }
    const text = lines.join('');
    assert.match(text, /"msg":"AUTH XOAUTH2"/, 'the mechanism goes alone on the AUTH line (two-step)');
    assert.doesNotMatch(text, new RegExp(token));
    assert.doesNotMatch(
      text,
      new RegExp(Buffer.from(`user=${USER}\x01auth=Bearer ${token}`).toString('base64').slice(0, 40)),
    );
  });

  test('OAUTHBEARER (RFC 7628)', async () => {
    const c = await pop3();
    try {
      await c.loginOAuth(USER, oauth.mint(USER), 'OAUTHBEARER');
      assert.equal((await c.stat()).count, 3);
      await c.quit();
    } finally {
      c.close();
    }
  });

  test('a token longer than 4,096 bytes', async () => {
    const token = oauth.mint(USER, 5000);
    assert.ok(token.length >= 5000);
    const c = await pop3();
    try {
      await pop3Login(c, { host: '127.0.0.1', port: tb.pop3Port, tls: 'none', username: USER, accessToken: token });
      assert.equal((await c.stat()).count, 3);
      await c.quit();
    } finally {
      c.close();
    }
  });

  for (const mech of ['XOAUTH2', 'OAUTHBEARER'] as const) {
    test(`a refused token (${mech}): the error challenge is answered and decoded into an AuthError`, async () => {
      const c = await pop3();
      try {
        await assert.rejects(c.loginOAuth(USER, 'not-a-valid-token', mech), (err: Error) => {
          assert.ok(err instanceof AuthError, String(err));
          assert.match(err.message, /login refused: -ERR \[AUTH\]/);
          assert.match(err.message, /status (401|invalid_token)/);
          return true;
        });
        // the session is still usable after the exchange ended properly
        await c.quit();
      } finally {
        c.close();
      }
    });
  }
});

describe('IMAP with OAuth against Dovecot (imapflow accessToken)', () => {
  test('logs in with a token', async () => {
    const c = createImapClient(
      { host: '127.0.0.1', port: tb.imapPort, tls: 'none', username: USER, accessToken: oauth.mint(USER) },
      pino({ level: 'silent' }),
    );
    c.on('error', () => undefined);
    try {
      await c.connect();
      const st = await c.status('INBOX', { messages: true });
      assert.equal(st ? st.messages : undefined, 3);
      await c.logout();
    } finally {
      c.close();
    }
  });

  test('refuses a bad token', async () => {
    const c = createImapClient(
      { host: '127.0.0.1', port: tb.imapPort, tls: 'none', username: USER, accessToken: 'bad-token' },
      pino({ level: 'silent' }),
    );
    c.on('error', () => undefined);
    try {
      await assert.rejects(
        c.connect(),
        (err: Error & { authenticationFailed?: boolean }) => err.authenticationFailed === true,
      );
    } finally {
      c.close();
    }
  });
});

describe('SMTP with XOAUTH2 (smtp-server upstream)', () => {
  let server: SMTPServer;
  let port = 0;
  const accepted: string[] = [];
  const seen: string[] = [];
  let dir = '';
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lp-oauth-smtp-'));
    server = new SMTPServer({
      authMethods: ['XOAUTH2'],
      authOptional: false,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, cb) {
        seen.push(auth.accessToken ?? '');
        if (auth.method === 'XOAUTH2' && auth.username === USER && oauth.access.get(auth.accessToken ?? '') === USER)
          return cb(null, { user: USER });
        return cb(null, { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
      },
      onData(stream, _s, cb) {
        stream.resume();
        stream.on('end', () => {
          accepted.push('ok');
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  function message(): { path: string; from: string; to: string[]; size: number; eightBit: boolean } {
    const file = path.join(dir, `${seen.length}-${Date.now()}.eml`);
    const raw = `From: <${USER}>\r\nTo: <bob@example.test>\r\nSubject: oauth\r\n\r\nhello\r\n`;
    writeFileSync(file, raw);
    return { path: file, from: USER, to: ['bob@example.test'], size: raw.length, eightBit: false };
  }

  test('sends with an access token', async () => {
    const token = oauth.mint(USER);
    const s = new NodemailerSender({
      endpoint: { host: '127.0.0.1', port, tls: 'none', username: USER, accessToken: token },
      log: pino({ level: 'silent' }),
    });
    try {
      const r = await s.send(message());
      assert.equal(r.sent.length, 1);
      assert.equal(seen.at(-1), token);
    } finally {
      s.close();
    }
  });

  test('a refused token is renewed once through renewAccessToken; with no good token it is an auth failure', async () => {
    const fresh = oauth.mint(USER);
    const calls: boolean[] = [];
    const s = new NodemailerSender({
      endpoint: {
        host: '127.0.0.1',
        port,
        tls: 'none',
        username: USER,
        accessToken: 'expired-token',
        renewAccessToken: async (force) => {
          calls.push(Boolean(force));
          return force ? fresh : 'expired-token';
        },
      },
      log: pino({ level: 'silent' }),
    });
    try {
      const r = await s.send(message());
      assert.equal(r.sent.length, 1, JSON.stringify(r));
      assert.equal(seen.at(-1), fresh);
      assert.ok(calls.includes(true), 'renewed with force after the refusal');
    } finally {
      s.close();
    }
    const bad = new NodemailerSender({
      endpoint: { host: '127.0.0.1', port, tls: 'none', username: USER, accessToken: 'bad' },
      log: pino({ level: 'silent' }),
    });
    try {
      await assert.rejects(bad.send(message()), (err: Error) => err instanceof AuthError);
    } finally {
      bad.close();
    }
  });
});
