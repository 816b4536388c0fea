/**
 * Switching a mail client that kept mail on the provider to localpost (docs/clients.md): the
 * client first reads the real Dovecot in keep mode and remembers its UIDLs; localpost then
 * pulls the same account with `uidls: upstream` and the client, pointed at localpost's POP3
 * listener, downloads nothing again: poplib sees the same UIDL set, fetchmail (with its UIDL
 * file) retrieves no message, and only mail that arrived since. An account with `uidls: local`
 * serves UIDLs the client has never seen: what localpost did before this mode existed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fetchmailHome } from '../support/fetchmail.js';
import { type AccountSpec, makeConfig, runCli, spawnDaemon, waitFor } from '../support/localpost.js';
import { poplibFetchAll, poplibUidls } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-switch-'));
const cleanups: Array<() => void | Promise<void>> = [];
before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'uma:umapw vic:vicpw wes:wespw' } });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await tb?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** `localpost start` with these accounts and the POP3 listener on a free port; resolves after the first pulls. */
async function startDaemon(specs: AccountSpec[]): Promise<{ port: number; configFile: string }> {
  const port = await freePort();
  const c = makeConfig(
    specs,
    `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
  );
  const d = spawnDaemon(c.configFile);
  cleanups.push(async () => {
    if (d.proc.exitCode === null) {
      d.proc.kill('SIGTERM');
      await new Promise((r) => d.proc.once('close', r));
    }
    c.cleanup();
  });
  await waitFor(() => d.out().includes('POP3 listener ready'), 60_000, `POP3 listener to start:\n${d.out()}`);
  for (const s of specs)
    await waitFor(
      () => new RegExp(`"account":"${s.id}"[^\\n]*pull done|pull done[^\\n]*"account":"${s.id}"`).test(d.out()),
      60_000,
      `first pull of ${s.id}:\n${d.out()}`,
    );
  return { port, configFile: c.configFile };
}

const account = (id: string, uidls: 'local' | 'upstream'): AccountSpec => ({
  id,
  protocol: 'pop3',
  port: tb.pop3Port,
  username: id,
  password: `${id}pw`,
  uidls,
});

describe('switching a client from the provider to localpost', () => {
  test('poplib: the UIDLs localpost serves are the ones the client kept from the provider', async () => {
    await tb.seed('uma', 12);
    await tb.seed('vic', 4);
    // the client reads the provider directly, leaving the mail there, and remembers the UIDLs
    assert.equal((await poplibFetchAll(tb.pop3Port, 'uma', 'umapw')).length, 12);
    const known = await poplibUidls(tb.pop3Port, 'uma', 'umapw');
    const knownVic = await poplibUidls(tb.pop3Port, 'vic', 'vicpw');
    assert.equal(known.length, 12);
    const d = await startDaemon([account('uma', 'upstream'), account('vic', 'local')]);
    const served = await poplibUidls(d.port, 'uma', 'localpw');
    assert.deepEqual(served, known, 'nothing new for the client');
    const servedVic = await poplibUidls(d.port, 'vic', 'localpw');
    assert.equal(servedVic.length, 4);
    assert.deepEqual(
      servedVic.filter((u) => knownVic.includes(u)),
      [],
      'local UIDLs: every message looks new to the client',
    );
  });

  test('fetchmail (keep, UIDL file): pointed at localpost it retrieves nothing again, then only new mail', async () => {
    await tb.seed('wes', 6);
    const home = fetchmailHome(tmp);
    const delivered = () => home.delivered().length;
    // One poll entry whose server is switched, as a user edits the account in a client: fetchmail
    // keeps its UIDL list per poll name, so the entry keeps its name and changes port and password.
    const fetchmail = (port: number, user: string, pass: string) =>
      home.run([
        `poll mail.example.test via 127.0.0.1 with proto POP3 port ${port} and options uidl no dns auth password`,
        `  user "${user}" there with password "${pass}" is "root" here`,
        `  options keep sslproto '' mda "${home.deliver}"`,
      ]);

    const direct = await fetchmail(tb.pop3Port, 'wes', 'wespw');
    assert.equal(direct.code, 0, direct.out);
    assert.equal(delivered(), 6, direct.out);

    const d = await startDaemon([account('wes', 'upstream')]);
    const switched = await fetchmail(d.port, 'wes', 'localpw');
    assert.equal(switched.code, 1, `PS_NOMAIL: nothing new for fetchmail:\n${switched.out}`);
    assert.match(switched.out, /6 messages \(6 seen\)/);
    assert.equal(delivered(), 6, 'no message downloaded twice');

    // mail arriving later comes through localpost once
    await tb.appendMessage('wes', Buffer.from('Subject: after the switch\r\n\r\nhello\r\n'));
    const sync = await runCli(['--config', d.configFile, 'sync', 'wes']);
    assert.equal(sync.code, 0, sync.stderr + sync.stdout);
    const after = await fetchmail(d.port, 'wes', 'localpw');
    assert.equal(after.code, 0, after.out);
    assert.match(after.out, /7 messages \(6 seen\)/);
    assert.equal(delivered(), 7);
  });
});
