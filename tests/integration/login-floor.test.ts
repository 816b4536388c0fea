/**
 * Local POP3 logins do not each become an upstream login: against the real Dovecot, a burst of
 * 20 local logins right after the daemon's first pull makes no more upstream logins (joined or
 * within `syncOnLoginFloor`), `localpost status` shows the count, and once the floor (1 s for the
 * second account) has passed a login pulls again and serves a message that arrived upstream. An
 * IMAP account whose IDLE connection is up is not pulled by local logins at all.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeConfig, runCli, spawnDaemon, statusJson, waitFor } from '../support/localpost.js';
import { authenticated } from '../support/pop3-server.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
const cleanups: Array<() => unknown> = [];
before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'lena:lenapw mona:monapw nina:ninapw' } });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tb?.stop();
});

/** Successful upstream logins of `user` that Dovecot logged (its login process: one line each). */
function dovecotLogins(user: string): number {
  const log = readFileSync(path.join(tb.dir, 'log/dovecot.log'), 'utf8');
  const login = new RegExp(`-login: (Info: )?Login: user=<${user}[@>]`);
  return log.split('\n').filter((l) => login.test(l)).length;
}

/** One local login: the number of messages it is served (STAT), then QUIT. */
async function localStat(port: number, user: string): Promise<number> {
  const c = await authenticated(port, user, 'localpw');
  const stat = await c.ask('STAT');
  await c.ask('QUIT');
  c.close();
  const m = /^\+OK (\d+) /.exec(stat);
  assert.ok(m, stat);
  return Number(m[1]);
}

describe('pull on login with a floor', () => {
  test('a burst of local logins makes 1 or 2 upstream logins; status counts them; after the floor a login pulls again', async () => {
    await tb.seed('lena', 2);
    await tb.seed('mona', 2);
    await tb.seed('nina', 2);
    const port = await freePort();
    const c = makeConfig(
      [
        { id: 'lena', protocol: 'pop3', port: tb.pop3Port, username: 'lena', password: 'lenapw' },
        { id: 'mona', protocol: 'pop3', port: tb.pop3Port, username: 'mona', password: 'monapw' },
        { id: 'nina', protocol: 'imap', port: tb.imapPort, username: 'nina', password: 'ninapw', idle: true },
      ],
      `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"], workarounds: [] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
    );
    cleanups.push(() => c.cleanup());
    // lena keeps the default floor (30 s); mona's is 1 s; nina's 0 s, but her IDLE makes logins skip the pull
    writeFileSync(
      c.configFile,
      readFileSync(c.configFile, 'utf8')
        .replace('password: "monapw"\n', 'password: "monapw"\n      syncOnLoginFloor: 1s\n')
        .replace('password: "ninapw"\n', 'password: "ninapw"\n      syncOnLoginFloor: 0s\n'),
    );
    const { proc, out } = spawnDaemon(c.configFile);
    cleanups.push(async () => {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('close', r));
      }
    });
    await waitFor(() => out().includes('POP3 listener ready'), 60_000, `POP3 listener:\n${out()}`);

    for (let i = 0; i < 20; i++) assert.equal(await localStat(port, 'lena'), 2);
    const upstream = dovecotLogins('lena');
    assert.ok(upstream >= 1 && upstream <= 2, `Dovecot saw ${upstream} logins of lena for 20 local logins`);

    const st = await statusJson(c.configFile);
    const lena = st.accounts.find((a) => a.id === 'lena');
    assert.equal(lena?.upstreamLogins, upstream, 'status counts the upstream logins Dovecot saw');
    const text = await runCli(['--config', c.configFile, 'status']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`lena: ${upstream} upstream logins? since the daemon started`));

    // nina (IMAP): while IDLE is connected, local logins pull nothing, floor 0 s or not
    await waitFor(
      async () => {
        const n = (await statusJson(c.configFile)).accounts.find((a) => a.id === 'nina');
        return n?.idle === 'connected' && n.upstreamLogins === 1 && n.lastPull !== undefined;
      },
      60_000,
      `nina's first pull and IDLE:\n${out().slice(-3000)}`,
    );
    for (let i = 0; i < 5; i++) assert.equal(await localStat(port, 'nina'), 2);
    const nina = (await statusJson(c.configFile)).accounts.find((a) => a.id === 'nina');
    assert.equal(nina?.upstreamLogins, 1, 'only the pull at start-up logged in (IMAP)');

    // mona: mail that arrives upstream is served by a login once the 1 s floor has passed
    await waitFor(
      () => out().includes('"account":"mona"') && /"account":"mona".*pull done/.test(out()),
      60_000,
      'mona pulled',
    );
    await tb.appendMessage('mona', Buffer.from('Subject: late arrival\r\n\r\nhello\r\n'));
    await waitFor(
      async () => (await localStat(port, 'mona')) === 3,
      30_000,
      'a login after the floor serves the new message',
    );
  });
});
