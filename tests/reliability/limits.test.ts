/**
 * Limits of the local listeners: line length, connections per listener, idle
 * timeouts, slow-loris deadlines, and descriptors after 10,000 connections opened and dropped.
 * The listeners run in this process, so `/proc/self/fd` counts their descriptors.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { waitFor, within } from '../support/localpost.js';
import { outboxFiles } from '../support/outbox.js';
import {
  connected,
  Pop3Conn,
  type Pop3Fixture,
  authenticated as pop3Auth,
  type StartPop3Options,
  sampleMessage,
  startPop3,
} from '../support/pop3-server.js';
import {
  type Dialog,
  dialog,
  plain,
  type SmtpFixture,
  authenticated as smtpAuth,
  startData,
  startSmtp,
} from '../support/smtp.js';

const open: Array<Pop3Fixture | SmtpFixture> = [];
after(async () => {
  for (const f of open) await f.close();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fds = () => readdirSync('/proc/self/fd').length;

async function pop3(server: StartPop3Options['server'] = {}): Promise<Pop3Fixture> {
  const fx = await startPop3({ messages: [1, 2, 3].map((i) => sampleMessage(i)), server });
  open.push(fx);
  return fx;
}

async function smtp(over: Parameters<typeof startSmtp>[0] = {}): Promise<SmtpFixture> {
  const fx = await startSmtp(over);
  open.push(fx);
  return fx;
}

/**
 * Writes one byte of `text` every `everyMs` until the server closes (giving up after 30 s, a hang);
 * resolves with what it answered and whether the server closed.
 */
async function trickle(
  port: number,
  text: string,
  everyMs: number,
  greeting: RegExp,
): Promise<{ received: string; closed: boolean }> {
  const s = net.connect({ host: '127.0.0.1', port });
  let received = '';
  let closed = false;
  s.on('data', (b: Buffer) => {
    received += b.toString('latin1');
  });
  s.on('error', () => undefined);
  s.on('close', () => {
    closed = true;
  });
  while (!greeting.test(received)) await sleep(10);
  const t0 = Date.now();
  for (let i = 0; !closed && Date.now() - t0 < 30_000; i++) {
    s.write(text[i % text.length]!);
    await sleep(everyMs);
  }
  s.destroy();
  return { received, closed };
}

describe('line length', () => {
  test('POP3: a line over 2048 octets gets -ERR and the session goes on', async () => {
    const fx = await pop3();
    const c = await connected(fx.port);
    assert.match(await c.ask(`USER ${'x'.repeat(5000)}`), /^-ERR line too long/);
    assert.match(await c.ask('CAPA'), /^\+OK/);
    c.close();
  });

  test('SMTP: maxCommandLength (16 KiB) holds; a longer line gets 421 and the connection closes', async () => {
    const fx = await smtp();
    const d = await dialog(fx.port);
    assert.match((await d.cmd(`NOOP ${'x'.repeat(16_000)}`))[0]!, /^250/);
    assert.match((await d.cmd(`NOOP ${'x'.repeat(17_000)}`))[0]!, /^421 .*too long/i);
    await sleep(50);
    assert.ok(d.socket.destroyed || d.socket.readableEnded, 'closed');
    d.close();
  });
});

describe('connections per listener (src/listeners/connection-slots.ts)', () => {
  const five = ['u1', 'u2', 'u3', 'u4', 'u5'];
  const fiveUsers = five.map((u) => ({ accountId: u, username: u, password: 'pw' }));

  test('POP3: full of logged-in sessions, a newcomer gets -ERR [SYS/TEMP] and is closed; a slot frees up', async () => {
    const fx = await startPop3({ accounts: ['alice', ...five], users: fiveUsers, server: { maxConnections: 5 } });
    open.push(fx);
    const held = await Promise.all(five.map((u) => pop3Auth(fx.port, u, 'pw')));
    const extra = await Pop3Conn.open(fx.port);
    assert.match(await extra.line(), /^-ERR \[SYS\/TEMP\] too many connections/);
    await extra.waitClosed();
    assert.match(await held.pop()!.ask('QUIT'), /^\+OK/);
    await waitFor(() => fx.server.sessionCount === 4, 10_000, 'the session is gone');
    const again = await connected(fx.port);
    assert.match(await again.ask('QUIT'), /^\+OK/);
    for (const c of held) c.close();
  });

  test('POP3: full of idle connections not logged in, the oldest is closed for the newcomer, which logs in', async () => {
    const fx = await pop3({ maxConnections: 5 });
    const held: Pop3Conn[] = [];
    for (let i = 0; i < 5; i++) held.push(await connected(fx.port));
    const newcomer = await connected(fx.port);
    assert.match(await held[0]!.line(), /^-ERR \[SYS\/TEMP\] too many connections, closing this idle one/);
    await held[0]!.waitClosed();
    assert.match(await newcomer.ask('USER alice'), /^\+OK/);
    assert.match(await newcomer.ask('PASS localpw'), /^\+OK/);
    assert.match(await newcomer.ask('STAT'), /^\+OK 3 /);
    assert.match(await held[1]!.ask('NOOP'), /^-ERR/, 'the second oldest is still open (NOOP before login)');
    for (const c of [...held, newcomer]) c.close();
  });

  test('SMTP: full of logged-in sessions, a newcomer gets 421', async () => {
    const fx = await smtp({ maxClients: 5, hosts: ['127.0.0.1'] });
    const held = await Promise.all([1, 2, 3, 4, 5].map(() => smtpAuth(fx.port, 'alice', 'alicepw-local')));
    const extra = await dialog(fx.port);
    assert.match(extra.greeting[0]!, /^421 .*Too many/i);
    held.pop()!.close();
    await waitFor(() => fx.listener.connectionCount === 4, 10_000, 'the connection is gone');
    const again = await dialog(fx.port);
    assert.match(again.greeting[0]!, /^220/);
    for (const d of [...held, extra, again]) d.close();
  });

  test('SMTP: full of idle connections not logged in, the oldest gets 421 and the newcomer logs in', async () => {
    const fx = await smtp({ maxClients: 5, hosts: ['127.0.0.1'] });
    const held: Dialog[] = [];
    for (let i = 0; i < 5; i++) held.push(await dialog(fx.port));
    const newcomer = await dialog(fx.port);
    assert.match(newcomer.greeting[0]!, /^220/);
    await waitFor(() => held[0]!.socket.destroyed, 10_000, 'the oldest closed');
    assert.match(held[0]!.transcript(), /421 .*too many connections, closing this idle one/);
    await newcomer.cmd('EHLO x');
    assert.match((await newcomer.cmd(`AUTH PLAIN ${plain('alice', 'alicepw-local')}`))[0]!, /^235/);
    assert.match((await held[1]!.cmd('NOOP'))[0]!, /^250/, 'the second oldest is still open');
    for (const d of [...held, newcomer]) d.close();
  });
});

describe('idle timeouts', () => {
  test('POP3: an idle session is logged out without applying deletions', async () => {
    const fx = await pop3({ idleTimeoutMs: 300 });
    const c = await pop3Auth(fx.port);
    assert.match(await c.ask('DELE 1'), /^\+OK/);
    assert.match(await c.line(2000), /^-ERR autologout/);
    await c.waitClosed();
    const again = await pop3Auth(fx.port);
    assert.match(await again.ask('STAT'), /^\+OK 3 /, 'DELE without QUIT deleted nothing');
    again.close();
  });

  test('SMTP: an idle session gets 421', async () => {
    const fx = await smtp({ socketTimeoutMs: 300, hosts: ['127.0.0.1'] });
    const d = await dialog(fx.port);
    // far below the default socketTimeout (5 minutes): only the configured one closes it in time
    await within(new Promise<void>((r) => d.socket.once('close', () => r())), 60_000, 'the idle session closed');
    assert.match(d.transcript(), /421 .*[Tt]imeout/);
  });
});

describe('slow-loris: a client sending a byte every few moments cannot hold a slot', () => {
  const deadlines = { loginTimeoutMs: 1200, commandTimeoutMs: 500 };

  test('POP3: an endless command line is cut at the command deadline', async () => {
    const fx = await pop3(deadlines);
    const r = await trickle(fx.port, 'CAPABILITIES', 100, /^\+OK.*\r\n/);
    assert.match(r.received, /-ERR \[SYS\/TEMP\] command line not completed in time/);
    assert.ok(r.closed, 'the server closed the connection');
  });

  test('POP3: complete lines without a login are cut at the login deadline', async () => {
    const fx = await pop3(deadlines);
    const r = await trickle(fx.port, 'NOOP\r\n', 30, /^\+OK.*\r\n/);
    assert.match(r.received, /-ERR \[SYS\/TEMP\] not logged in within the time allowed/);
    assert.doesNotMatch(r.received, /command line not completed/, 'whole lines never meet the command deadline');
    assert.ok(r.closed, 'the server closed the connection');
  });

  test('POP3: a logged-in client sending whole commands is not cut; a trickled line after login is', async () => {
    const fx = await pop3(deadlines);
    const c = await pop3Auth(fx.port);
    for (let i = 0; i < 20; i++) {
      assert.match(await c.ask('NOOP'), /^\+OK/);
      await sleep(100); // 2 s in all: past both deadlines
    }
    for (const ch of 'STA') {
      c.send(ch);
      await sleep(150);
    }
    assert.match(await c.line(2000), /^-ERR \[SYS\/TEMP\] command line not completed/);
    await c.waitClosed();
  });

  test('SMTP: trickled command line, no login, and trickled DATA are each cut with 421; nothing is queued', async () => {
    const fx = await smtp({ hosts: ['127.0.0.1'], deadlines: { login: 1200, command: 500, data: 800 } });
    const line = await trickle(fx.port, 'EHLO slow.example.test', 100, /^220 .*\r\n/);
    assert.match(line.received, /421 .*command line not completed in time/);
    assert.ok(line.closed, 'the server closed the connection');
    const login = await trickle(fx.port, 'NOOP\r\n', 30, /^220 .*\r\n/);
    assert.match(login.received, /421 .*not authenticated within the time allowed/);

    const d = await smtpAuth(fx.port, 'alice', 'alicepw-local');
    await startData(d);
    const t0 = Date.now();
    for (let i = 0; !d.socket.destroyed && Date.now() - t0 < 30_000; i++) {
      d.write(`line ${i}\r\n`);
      await sleep(100);
    }
    assert.match(d.transcript(), /421 .*message data not completed in time/);
    assert.deepEqual(await outboxFiles(fx.fx.dataDir), [], 'the trickled message was not queued');
  });
});

describe('descriptors', () => {
  /** Opens `n` connections (`parallel` at a time), each dropped in one of several ways. */
  async function churn(
    port: number,
    n: number,
    parallel: number,
    script: (i: number, s: net.Socket) => Promise<void>,
  ): Promise<void> {
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => undefined);
        await new Promise<void>((r) => {
          s.once('connect', () => r());
          s.once('error', () => r());
        });
        await script(i, s).catch(() => undefined);
        s.destroy();
      }
    };
    await Promise.all(Array.from({ length: parallel }, one));
  }

  const firstData = (s: net.Socket) =>
    new Promise<void>((r) => {
      s.once('data', () => r());
      s.once('close', () => r());
    });

  test('10,000 POP3 connections opened and dropped leave no descriptor behind, and logins still work', async () => {
    const fx = await pop3();
    await pop3Auth(fx.port).then((c) => c.close()); // warm up lazily opened files
    await sleep(100);
    const before = fds();
    // 80 at a time: above maxConnections (50), so refusals are part of the churn
    await churn(fx.port, 10_000, 80, async (i, s) => {
      switch (i % 5) {
        case 0:
          return; // dropped at once
        case 1:
          await firstData(s);
          return; // after the greeting
        case 2:
          s.write('USER al');
          await sleep(1);
          return; // mid-command
        case 3:
          await firstData(s);
          s.write('USER alice\r\nPASS localpw\r\nDELE 1\r\n');
          await sleep(5);
          return; // logged in, no QUIT
        default:
          s.end();
          await sleep(1); // half-closed
      }
    });
    const end = Date.now() + 30_000; // a cap: a leak never drains
    while ((fx.server.sessionCount > 0 || fds() > before) && Date.now() < end) await sleep(50);
    assert.equal(fx.server.sessionCount, 0, 'every session closed');
    assert.ok(fds() <= before, `descriptors: ${before} before, ${fds()} after`);
    const c = await pop3Auth(fx.port);
    assert.match(await c.ask('STAT'), /^\+OK 3 /, 'no maildrop lock left behind, no deletion applied');
    c.close();
  });

  test('10,000 SMTP connections opened and dropped leave no descriptor behind', async () => {
    const fx = await smtp({ hosts: ['127.0.0.1'] });
    await smtpAuth(fx.port, 'alice', 'alicepw-local').then((d) => d.close());
    await sleep(100);
    const before = fds();
    await churn(fx.port, 10_000, 100, async (i, s) => {
      switch (i % 4) {
        case 0:
          return;
        case 1:
          await firstData(s);
          return;
        case 2:
          await firstData(s);
          s.write('EHLO x\r\nMAIL FR');
          await sleep(1);
          return;
        default:
          s.end();
          await sleep(1);
      }
    });
    const end = Date.now() + 30_000; // a cap: a leak never drains
    while ((fx.listener.connectionCount > 0 || fds() > before) && Date.now() < end) await sleep(50);
    assert.equal(fx.listener.connectionCount, 0, 'every connection closed');
    assert.ok(fds() <= before, `descriptors: ${before} before, ${fds()} after`);
    const d = await smtpAuth(fx.port, 'alice', 'alicepw-local');
    d.close();
  });
});
