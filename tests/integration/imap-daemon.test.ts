/**
 * End to end through `localpost start` with the local IMAP listener: the daemon pulls an IMAP
 * account from the real Dovecot; imaplib logs in to localpost (LOGIN, SELECT INBOX, FETCH) and
 * reads the same bytes as from Dovecot; `status --json` names the IMAP listener's bound port; a
 * flag set through localpost reaches Dovecot through the journal (and the journal is empty after).
 * With the upstream cut off (a relay closed), a change waits: `status` and `journal` show it, and
 * the next `sync` once the upstream is back carries it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { makeConfig, runCli, spawnDaemon, statusJson, waitFor } from '../support/localpost.js';
import { imaplibFetchAll, imaplibState, runPython } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'ivy:ivypw' } });
});
after(async () => {
  await tb?.stop();
});

/** LOGIN, SELECT INBOX, UID STORE +FLAGS (\Flagged) on the first message; prints the SELECT's EXISTS. */
const FLAG_SCRIPT = String.raw`
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
typ, data = m.select('INBOX')
assert typ == 'OK', data
typ, uids = m.uid('SEARCH', None, 'ALL')
first = uids[0].split()[0]
typ, r = m.uid('STORE', first, '+FLAGS', '(\\Flagged)')
assert typ == 'OK', r
m.logout()
print(int(data[0]))
`;

/** A TCP relay to `port` on 127.0.0.1 that can be cut (every connection destroyed) and opened again. */
async function relay(port: number) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listenPort = await freePort();
  const open = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((c) => {
        const up = net.connect(port, '127.0.0.1');
        for (const s of [c, up]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        c.pipe(up).pipe(c);
      });
      server.listen(listenPort, '127.0.0.1', () => resolve());
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server?.close(() => resolve());
    });
  await open();
  return { port: listenPort, open, cut };
}

describe('localpost start serves the cache over IMAP', () => {
  test('imaplib LOGIN + SELECT INBOX + FETCH reads what Dovecot has; a flag goes upstream', async () => {
    await tb.seed('ivy', 6);
    const port = await freePort();
    const c = makeConfig(
      [{ id: 'ivy', protocol: 'imap', port: tb.imapPort, username: 'ivy', password: 'ivypw' }],
      `listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: ${port}, hosts: ["127.0.0.1"] }\n`,
    );
    const d = spawnDaemon(c.configFile);
    try {
      await waitFor(() => d.out().includes('IMAP listener ready'), 60_000, `IMAP listener:\n${d.out()}`);
      await waitFor(() => d.out().includes('pull done'), 60_000, `first pull:\n${d.out()}`);
      const upstream = await imaplibFetchAll(tb.imapPort, 'ivy', 'ivypw');
      const local = await imaplibFetchAll(port, 'ivy', 'localpw');
      assert.equal(local.length, 6);
      assert.deepEqual(
        local.map((m) => m.body.toString('latin1')),
        upstream.map((m) => m.body.toString('latin1')),
      );

      const status = await statusJson(c.configFile);
      assert.deepEqual(status.listeners.imap, [`127.0.0.1:${port}`]);
      assert.deepEqual(status.accounts[0]?.journal, { pending: 0, failed: 0 });
      const human = await runCli(['--config', c.configFile, 'status']);
      assert.match(human.stdout, new RegExp(`^ {2}imap {2}127\\.0\\.0\\.1:${port}$`, 'm'));

      assert.equal((await runPython(FLAG_SCRIPT, ['127.0.0.1', String(port), 'ivy', 'localpw'])).trim(), '6');
      // the prompt replay carries the flag to Dovecot; then nothing waits in the journal
      await waitFor(
        async () =>
          (await imaplibState(tb.imapPort, 'ivy', 'ivypw')).INBOX?.messages.some((m) =>
            m.flags.includes('\\Flagged'),
          ) ?? false,
        60_000,
        `\\Flagged upstream:\n${d.out().slice(-3000)}`,
      );
      const journal = await runCli(['--config', c.configFile, 'journal']);
      assert.equal(journal.code, 0, journal.stderr);
      assert.match(journal.stdout, /journal is empty/);
    } finally {
      d.proc.kill('SIGTERM');
      const code = await d.exited;
      c.cleanup();
      assert.equal(code, 0, d.out().slice(-3000));
    }
  });

  test('offline: a change waits in the journal, status and journal show it, sync carries it when back', async () => {
    await tb.seed('ivy', 3, undefined, { reset: true });
    const up = await relay(tb.imapPort);
    const port = await freePort();
    const c = makeConfig(
      [{ id: 'ivy', protocol: 'imap', port: up.port, username: 'ivy', password: 'ivypw' }],
      `listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: ${port}, hosts: ["127.0.0.1"] }\n`,
    );
    const d = spawnDaemon(c.configFile);
    try {
      await waitFor(() => d.out().includes('pull done'), 60_000, `first pull:\n${d.out()}`);
      await up.cut();
      assert.equal((await runPython(FLAG_SCRIPT, ['127.0.0.1', String(port), 'ivy', 'localpw'])).trim(), '3');
      const status = await statusJson(c.configFile);
      assert.equal(status.accounts[0]?.journal?.pending, 1, JSON.stringify(status.accounts[0]));
      const human = await runCli(['--config', c.configFile, 'status']);
      assert.match(human.stdout, /ivy: 1 IMAP change waiting to go upstream \(localpost journal\)/);
      const list = await runCli(['--config', c.configFile, 'journal', 'list']);
      assert.match(list.stdout, /^\d+ {2}ivy {2}\S+ {2}flags \+\(\\Flagged\) INBOX, 1 message/m);
      await up.open();
      const sync = await runCli(['--config', c.configFile, 'sync']);
      assert.equal(sync.code, 0, sync.stdout + sync.stderr);
      const upstream = await imaplibState(tb.imapPort, 'ivy', 'ivypw');
      assert.equal(upstream.INBOX?.messages.filter((m) => m.flags.includes('\\Flagged')).length, 1);
      assert.match((await runCli(['--config', c.configFile, 'journal'])).stdout, /journal is empty/);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
      await up.cut();
      c.cleanup();
    }
  });
});
