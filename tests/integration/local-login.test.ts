/**
 * Local logins under attack, through the real listeners:
 * - POP3 and SMTP share one LocalAuth: failed logins on either slow the next answers on both,
 *   growing per remote address, and the right password waits like a wrong one;
 * - against the daemon: a guesser that disconnects before its answers gains nothing (its
 *   failures count, and the right password is then deferred); a login flood with a passwordHash
 *   runs a bounded number of key derivations (counted in the trace log of LocalAuth's work), a
 *   legitimate login and STAT still work once it stops, and SIGTERM during a flood exits;
 * - an unknown user and a wrong password get the same answer and cost the same work (key
 *   derivations, comparisons, delays, counted through LocalAuth's hooks), on both protocols,
 *   also when the real user has a scrypt hash;
 * - a full session at trace level (the daemon, with real upstream pulls and deliveries) leaves
 *   no password, AUTH payload or base64 of either in the log.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { hashPassword, LocalAuth } from '../../src/listeners/local-auth.js';
import { type FakePop3, startFakePop3 } from '../fakes/fake-pop3.js';
import { type FakeSmtp, startFakeSmtp } from '../fakes/fake-smtp.js';
import { waitFor, within } from '../support/localpost.js';
import { connected, type Pop3Conn, type Pop3Fixture, sampleMessage, startPop3 } from '../support/pop3-server.js';
import { type DaemonProcess, dialog, plain, type SmtpFixture, startDaemon, startSmtp } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const cleanup: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function listeners(auth: LocalAuth): Promise<{ pop3: Pop3Fixture; smtp: SmtpFixture }> {
  const pop3 = await startPop3({ messages: [sampleMessage(1)], server: { auth } });
  const smtp = await startSmtp({ auth, hosts: ['127.0.0.1'] });
  cleanup.push(
    () => pop3.close(),
    () => smtp.close(),
  );
  return { pop3, smtp };
}

/**
 * Starts the daemon at trace level on free loopback ports with one account, alice: local login
 * `login`, POP3 upstream on `pop3Port` (password `pop3Password`), then `more` account lines.
 */
async function traceDaemon(
  dir: string,
  o: { login: string; pop3Port: number; pop3Password: string; more?: string[] },
): Promise<{ daemon: DaemonProcess; pop3Port: number }> {
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `dataDir: ${path.join(dir, 'data')}`,
      'log: { level: trace }',
      'listen:',
      '  pop3: { port: 0, hosts: ["127.0.0.1"] }',
      '  smtp: { port: 0, hosts: ["127.0.0.1"] }',
      '  imap: { port: 0, hosts: ["127.0.0.1"] }',
      'connectivity: { probeInterval: 300ms, probeTimeout: 1s }',
      'accounts:',
      '  - id: alice',
      '    email: alice@example.test',
      `    login: ${o.login}`,
      '    incoming:',
      '      protocol: pop3',
      '      host: 127.0.0.1',
      `      port: ${o.pop3Port}`,
      '      tls: none',
      '      username: alice',
      `      password: "${o.pop3Password}"`,
      '      schedule: "0 0 1 1 *"',
      ...(o.more ?? []),
      '',
    ].join('\n'),
  );
  const daemon = await startDaemon(config);
  cleanup.push(() => (daemon.child.exitCode === null ? daemon.kill() : undefined));
  const pop3Port = ((await daemon.waitLog(/^POP3 listener ready$/)).addresses as Array<{ port: number }>)[0]!.port;
  return { daemon, pop3Port };
}

describe('local logins', () => {
  test('failed logins on POP3 and SMTP slow each other down (one LocalAuth, per address)', async () => {
    const slept: number[] = [];
    let sleeping = 0;
    const auth = new LocalAuth([{ accountId: 'alice', username: 'alice', password: 'right' }], {
      baseDelayMs: 100,
      maxDelayMs: 1600,
      sleep: async (ms) => {
        slept.push(ms);
        sleeping++;
        await new Promise((r) => setTimeout(r, ms));
        sleeping--;
      },
    });
    const { pop3, smtp } = await listeners(auth);
    const c = await connected(pop3.port);
    const d = await dialog(smtp.port);
    await d.cmd('EHLO x');
    /** Each answer comes only once the delay LocalAuth asked for is over. */
    const answered = (what: string) => assert.equal(sleeping, 0, `${what}: answered before the delay was over`);
    await c.ask('USER alice');
    assert.match(await c.ask('PASS wrong1'), /^-ERR \[AUTH\]/);
    answered('attempt 1');
    assert.match((await d.cmd(`AUTH PLAIN ${plain('mallory', 'x')}`))[0]!, /^535/);
    answered('attempt 2');
    await c.ask('USER trudy');
    assert.match(await c.ask('PASS wrong2'), /^-ERR \[AUTH\]/);
    answered('attempt 3');
    assert.match((await d.cmd(`AUTH PLAIN ${plain('alice', 'wrong3')}`))[0]!, /^535/);
    answered('attempt 4');
    assert.deepEqual(slept, [100, 200, 400], 'the first failure at once, then delays grow across protocols and names');
    await c.ask('USER alice');
    assert.match(await c.ask('PASS right'), /^\+OK/, 'the right password still works');
    answered('the right password');
    assert.deepEqual(slept, [100, 200, 400, 800], 'the right password waits as long as a wrong one would');
    c.close();
    d.close();
  });

  test('unknown user and wrong password: the same answer and the same work, POP3 and SMTP', async () => {
    const hash = await hashPassword('right horse');
    const answers = { pop3: new Set<string>(), smtp: new Set<string>() };
    /**
     * Three rounds of a failed POP3 and a failed SMTP login as `user` on fresh listeners; for each
     * attempt, the key derivations, comparisons and delays LocalAuth ran (order aside).
     */
    const attempts = async (user: 'alice' | 'nobody'): Promise<string[][]> => {
      let steps: string[] = [];
      const auth = new LocalAuth([{ accountId: 'alice', username: 'alice', passwordHash: hash }], {
        onWork: (step) => steps.push(step),
        sleep: async (ms) => {
          steps.push(`sleep ${ms}`);
        },
      });
      const { pop3, smtp } = await listeners(auth);
      const c = await connected(pop3.port);
      const work: string[][] = [];
      for (let round = 0; round < 3; round++) {
        steps = [];
        await c.ask(`USER ${user}`);
        answers.pop3.add(await c.ask('PASS wrong horse'));
        work.push(steps.sort());
        const d = await dialog(smtp.port);
        await d.cmd('EHLO x');
        steps = [];
        answers.smtp.add((await d.cmd(`AUTH PLAIN ${plain(user, 'wrong horse')}`)).join('\n'));
        work.push(steps.sort());
        d.close();
      }
      c.close();
      return work;
    };
    const known = await attempts('alice');
    const unknown = await attempts('nobody');
    assert.deepEqual([...answers.pop3], ['-ERR [AUTH] invalid user name or password']);
    assert.equal(answers.smtp.size, 1, [...answers.smtp].join(' | '));
    assert.deepEqual(
      known.map((steps) => steps.filter((s) => !/^(sleep|delay) /.test(s))),
      Array(6).fill(['compare 32 bytes', 'scrypt N=16384 r=8 p=1 length=32']),
      'each wrong password: one scrypt with the hash parameters, one comparison',
    );
    assert.deepEqual(
      known.map((steps) => steps.filter((s) => s.startsWith('sleep'))),
      [0, 500, 1000, 2000, 4000, 8000].map((ms) => (ms ? [`sleep ${ms}`] : [])),
      'the delays grow per address across POP3 and SMTP',
    );
    assert.deepEqual(unknown, known, 'an unknown user: the same work and the same delays as a wrong password');
  });

  test('a full session at trace level logs no password, AUTH payload or base64 of either', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-secrets-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const local = 'Lp-s3cret-local-7781';
    const upPop = 'Up-s3cret-pop3-5521';
    const upSmtp = 'Up-s3cret-smtp-9034';
    const popUp: FakePop3 = await startFakePop3({
      user: 'alice',
      pass: upPop,
      messages: [Buffer.from(sampleMessage(1)), Buffer.from(sampleMessage(2))],
    });
    const smtpUp: FakeSmtp = await startFakeSmtp({ user: 'alice', pass: upSmtp });
    cleanup.push(
      () => popUp.close(),
      () => smtpUp.stop(),
    );
    const { daemon, pop3Port } = await traceDaemon(dir, {
      login: `{ password: "${local}" }`,
      pop3Port: popUp.port,
      pop3Password: upPop,
      more: [
        '      syncOnLogin: 5s',
        '    outgoing:',
        '      host: 127.0.0.1',
        `      port: ${smtpUp.port}`,
        '      tls: none',
        '      username: alice',
        `      password: "${upSmtp}"`,
      ],
    });

    const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
    const sent: string[] = [];
    // POP3: USER/PASS right and wrong, AUTH PLAIN with an initial response and as a continuation.
    const pop3Session = async (steps: string[]) => {
      const c = await connected(pop3Port);
      for (const s of steps) {
        sent.push(s);
        c.cmd(s);
        await c.line(10_000);
      }
      c.close();
    };
    await pop3Session(['USER alice', `PASS ${local}-wrong`, 'USER alice', `PASS ${local}`, 'STAT', 'RETR 1']);
    await pop3Session([`AUTH PLAIN ${b64(`\0alice\0${local}`)}`, 'QUIT']);
    await pop3Session(['AUTH PLAIN', b64(`alice\0alice\0${local}`), 'QUIT']);
    // SMTP: AUTH PLAIN both forms, AUTH LOGIN with and without an initial response, a failure, a message.
    const smtpSession = async (steps: string[], mail = false) => {
      const d = await dialog(daemon.smtpPort);
      await d.cmd('EHLO client.example');
      for (const s of steps) {
        sent.push(s);
        await d.cmd(s);
      }
      if (mail) {
        await d.cmd('MAIL FROM:<alice@example.test>');
        await d.cmd('RCPT TO:<bob@example.test>');
        await d.cmd('DATA');
        assert.match((await d.send('Subject: trace\r\nMessage-ID: <trace@x>\r\n\r\nhello\r\n.\r\n'))[0]!, /^250/);
      }
      await d.cmd('QUIT');
      d.close();
    };
    await smtpSession([`AUTH PLAIN ${b64(`\0alice\0${local}x`)}`]);
    await smtpSession([`AUTH PLAIN ${b64(`\0alice\0${local}`)}`], true);
    await smtpSession(['AUTH PLAIN', b64(`\0alice\0${local}`)]);
    await smtpSession(['AUTH LOGIN', b64('alice'), b64(local)]);
    await smtpSession([`AUTH LOGIN ${b64('alice')}`, b64(local)]);
    await waitFor(() => smtpUp.received.length === 1, 20_000, 'the message relayed upstream');
    assert.equal(await daemon.stop(), 0);

    const log = daemon.logs.map((l) => JSON.stringify(l)).join('\n');
    if (process.env.LP_DUMP_LOG) writeFileSync(process.env.LP_DUMP_LOG, log);
    assert.match(log, /C: USER alice/, 'the POP3 transcript is in the log (trace level is on)');
    assert.match(log, /PASS \[redacted\]/);
    assert.match(log, /AUTH PLAIN/);
    const secrets = [local, upPop, upSmtp];
    const payloads = [
      ...secrets.flatMap((s) => [s, b64(s), b64(`\0alice\0${s}`), b64(`alice\0alice\0${s}`)]),
      ...sent.filter((s) => /^[A-Za-z0-9+/=]{8,}$/.test(s) && s !== b64('alice')), // every SASL answer sent on its own line
      ...sent
        .filter((s) => /^AUTH \S+ \S+/.test(s))
        .map((s) => s.split(' ')[2]!)
        .filter((s) => s !== b64('alice')),
    ];
    for (const p of new Set(payloads)) {
      assert.ok(!log.includes(p), `the log holds ${JSON.stringify(p)}`);
      if (p.length > 12) assert.ok(!log.includes(p.slice(4, -4)), `the log holds part of ${JSON.stringify(p)}`);
    }
  });
});

describe('the daemon under guessing and login floods', () => {
  let tb: Testbed;
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

  /** The daemon at trace level with one account whose local login is `login`; its POP3 port and its logs. */
  async function daemonWith(login: string) {
    tb ??= await startTestbed({ postfix: false });
    await tb.seed('alice', 2);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-throttle-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const { daemon, pop3Port } = await traceDaemon(dir, { login, pop3Port: tb.pop3Port, pop3Password: 'alicepw' });
    /** LocalAuth's work so far (key derivations, comparisons, delays, refusals), from the trace log. */
    const work = () => daemon.logs.filter((l) => l.msg === 'local login work').map((l) => String(l.step));
    return { daemon, pop3Port, work };
  }

  /** Flood clients: each connects, sends one AUTH PLAIN with a wrong password and leaves at once. */
  function flood(port: number, clients: number, until: () => boolean): Promise<number> {
    let sent = 0;
    const client = async (w: number) => {
      for (let r = 0; !until(); r++) {
        const c = await connected(port).catch(() => undefined); // a full listener answers -ERR: try again
        if (!c) continue;
        c.socket.end(`AUTH PLAIN ${b64(`\0flood${w}\0guess${r}`)}\r\n`);
        sent++;
        await once(c.socket, 'close');
      }
    };
    return Promise.all(Array.from({ length: clients }, (_, w) => client(w))).then(() => sent);
  }

  after(async () => {
    await tb?.stop();
  });

  test('a guesser that leaves before its answers gains nothing: its failures count and the right password waits', async () => {
    const { daemon, pop3Port, work } = await daemonWith('{ password: "Right-pw-4411" }');
    const answered = () => daemon.logs.filter((l) => l.msg === 'login refused').length;
    for (let i = 1; i <= 3; i++) {
      const c: Pop3Conn = await connected(pop3Port);
      await c.ask('USER alice');
      c.socket.end(`PASS guess-${i}\r\n`); // gives up at once instead of waiting for the answer
      await waitFor(() => answered() === i, 30_000, `guess ${i} handled`);
    }
    assert.deepEqual(
      work().filter((s) => s.startsWith('delay')),
      ['delay 500', 'delay 1000'],
      'guesses 2 and 3 were delayed although their clients had left',
    );
    const before = work().length;
    const d = await dialog(daemon.smtpPort);
    await d.cmd('EHLO x');
    assert.match(
      (await d.cmd(`AUTH PLAIN ${plain('alice', 'Right-pw-4411')}`))[0]!,
      /^235/,
      'the right password works',
    );
    d.close();
    assert.deepEqual(
      work()
        .slice(before)
        .filter((s) => s.startsWith('delay')),
      ['delay 2000'],
      'the right password was answered only after the delay three counted failures call for, over SMTP too',
    );
    assert.equal(await daemon.stop(), 0);
  });

  test('a login flood with a passwordHash: bounded key derivations, then a normal login and STAT', async (t) => {
    const { daemon, pop3Port, work } = await daemonWith(`{ passwordHash: "${await hashPassword('Right-pw-9907')}" }`);
    const sent = await flood(pop3Port, 40, () => daemon.logs.filter((l) => l.msg === 'login refused').length >= 400);
    const refusals = daemon.logs.filter((l) => l.msg === 'login refused').map((l) => String(l.reason));
    const scrypts = () => work().filter((s) => s.startsWith('scrypt')).length;
    const floodScrypts = scrypts();
    assert.ok(
      refusals.some((r) => r === 'throttled' || r === 'busy'),
      'flood attempts are refused at once, unchecked',
    );
    t.diagnostic(`${floodScrypts} key derivations for ${sent} flood attempts`);
    assert.ok(floodScrypts <= 20, `${floodScrypts} key derivations for ${sent} flood attempts`);
    let session: Pop3Conn | undefined;
    await waitFor(
      async () => {
        const c = await connected(pop3Port);
        await c.ask('USER alice');
        c.cmd('PASS Right-pw-9907');
        const answer = await c.line(30_000);
        if (answer.startsWith('+OK')) session = c;
        else {
          assert.match(answer, /^-ERR \[SYS\/TEMP\] too many login attempts/, 'a refusal while throttled is temporary');
          c.close();
        }
        return session !== undefined;
      },
      60_000,
      'a legitimate login once the flood has stopped',
    );
    assert.match(await session!.ask('STAT'), /^\+OK [1-9]\d* \d+$/);
    assert.ok(scrypts() > floodScrypts, 'the legitimate login ran its own key derivation');
    session!.close();
    assert.equal(await daemon.stop(), 0);
  });

  test('SIGTERM during a login flood with a passwordHash: the daemon exits', async (t) => {
    const { daemon, pop3Port, work } = await daemonWith(`{ passwordHash: "${await hashPassword('Right-pw-5150')}" }`);
    let stop = false;
    const flooding = flood(pop3Port, 40, () => stop || daemon.child.exitCode !== null);
    await waitFor(() => daemon.logs.filter((l) => l.msg === 'login refused').length >= 200, 30_000, 'the flood');
    const code = await within(daemon.stop(), 60_000, 'the daemon exiting under a flood (hang guard)');
    stop = true;
    assert.equal(code, 0);
    const scrypts = work().filter((s) => s.startsWith('scrypt')).length;
    t.diagnostic(`${scrypts} key derivations for ${await flooding} flood attempts`);
    assert.ok(scrypts >= 1 && scrypts <= 20, `${scrypts} key derivations`);
  });
});
