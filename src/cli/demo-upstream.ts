/**
 * The throwaway upstream of `localpost demo`: a POP3 server (our own listener code, over its own
 * small cache with a few sample messages) and an SMTP server (smtp-server) that accepts any mail
 * from user `demo` and delivers it into that same upstream mailbox — so a message sent through
 * the demo comes back at the next pull, and the whole round trip can be watched in a mail client.
 *
 * Both listen on 127.0.0.1 only, on free ports, with the login `demo` / `demo`, plaintext (the
 * demo's localpost reaches them with `tls: none`). Everything lives under the directory given,
 * which the caller removes.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';
import { Cache } from '../cache/cache.js';
import { INBOX, storeWholeMessage } from '../cache/message-store.js';
import { LocalAuth } from '../listeners/local-auth.js';
import { CacheBackend } from '../listeners/pop3/backend.js';
import { Pop3Server } from '../listeners/pop3/server.js';

/** The demo's user name and password, upstream and local alike. */
export const DEMO_USER = 'demo';
/** The demo's address. */
export const DEMO_EMAIL = 'demo@localpost.example';

/** A running demo upstream. */
export interface DemoUpstream {
  pop3Port: number;
  smtpPort: number;
  /** Number of sample messages it started with. */
  samples: number;
  stop(): Promise<void>;
}

function message(subject: string, body: string[], n: number): Buffer {
  return Buffer.from(
    [
      `From: localpost demo <${DEMO_EMAIL}>`,
      `To: ${DEMO_EMAIL}`,
      `Subject: ${subject}`,
      `Date: ${new Date(Date.now() - (10 - n) * 60_000).toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <demo-${n}-${randomBytes(6).toString('hex')}@localpost.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      ...body,
      '',
    ].join('\r\n'),
  );
}

/** The sample mailbox. */
function sampleMessages(): Buffer[] {
  return [
    message(
      'Welcome to localpost',
      [
        "This message came from the demo's upstream POP3 server. localpost pulled it into its",
        'durable cache (a Maildir plus state.db) and your mail client read it from localhost.',
        '',
        'Pull the network cable: your client still reads everything already cached.',
      ],
      1,
    ),
    message(
      'How the demo works',
      [
        'upstream POP3 (sample mail) --pull--> localpost cache --> local POP3 --> your client',
        'your client --> local SMTP --> localpost outbox --deliver--> upstream SMTP --> this mailbox',
        '',
        'Send a message to anyone: the demo upstream delivers it back here, and the next pull',
        '(every minute, or when your client logs in) brings it to your inbox.',
      ],
      2,
    ),
    message(
      'Grüße — 8-bit text survives',
      [
        'Bytes are stored exactly as the server sent them: ä ö ü ß € ✓.',
        '',
        'The next line starts with a single dot. POP3 and SMTP double such a dot on the wire',
        '(dot-stuffing) and your client removes the extra one, so you should see exactly one:',
        '.this line starts with one dot',
      ],
      3,
    ),
  ];
}

/** Write one message into the upstream INBOX, durably. */
function deliver(cache: Cache, key: string, bytes: Buffer): Promise<void> {
  return storeWholeMessage(cache.account(DEMO_USER), INBOX, key, bytes);
}

async function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Start the demo upstream under `dir`. */
export async function startDemoUpstream(dir: string, log: Logger): Promise<DemoUpstream> {
  const cache = await Cache.open({ dataDir: dir, accounts: [DEMO_USER], log });
  const samples = sampleMessages();
  const pop3 = new Pop3Server({
    hosts: ['127.0.0.1'],
    port: 0,
    log: log.child({ component: 'demo-upstream-pop3' }),
    auth: new LocalAuth([{ accountId: DEMO_USER, username: DEMO_USER, password: DEMO_USER }]),
    backend: new CacheBackend({ stores: cache, log, onLocalDelete: () => 'keep-upstream' }),
  });
  let writes: Promise<void> = Promise.resolve();
  const smtp = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    size: 25 * 1024 * 1024,
    banner: 'localpost demo upstream',
    onAuth(auth, _session, cb) {
      if (auth.username === DEMO_USER && auth.password === DEMO_USER) cb(null, { user: DEMO_USER });
      else cb(new Error('Invalid username or password (the demo login is demo / demo)'));
    },
    onData(stream, _session, cb) {
      readAll(stream)
        .then((bytes) => {
          const key = `xsent${randomBytes(8).toString('hex')}`;
          const write = writes.then(() => deliver(cache, key, bytes));
          writes = write.catch(() => undefined); // one failed write does not block the next
          return write;
        })
        .then(
          () => cb(null),
          (err: Error) => cb(err),
        );
    },
  });
  try {
    for (const [i, m] of samples.entries()) await deliver(cache, `xsample${i + 1}`, m);
    await pop3.start();
    await new Promise<void>((resolve, reject) => {
      smtp.once('error', reject);
      smtp.listen(0, '127.0.0.1', () => {
        smtp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await pop3.stop();
    cache.close();
    throw err;
  }
  smtp.on('error', (err: Error) => log.warn({ err: err.message }, 'demo upstream SMTP error'));
  return {
    pop3Port: pop3.port,
    smtpPort: ((smtp as unknown as { server: net.Server }).server.address() as net.AddressInfo).port,
    samples: samples.length,
    stop: async () => {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
      await pop3.stop();
      await writes;
      cache.close();
    },
  };
}
