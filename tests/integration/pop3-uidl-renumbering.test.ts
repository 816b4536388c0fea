/**
 * A POP3 provider that renumbers every UIDL (docs/pitfalls.md#pop3-uidl-renumbering), played by
 * the real Dovecot: its `pop3_uidl_format` is changed and the master reloaded (SIGHUP), so every
 * UIDL it lists changes while the messages stay. localpost must download only the genuinely new
 * messages, keep messages deleted locally deleted, serve the same local UIDLs as before, and say
 * so in `status`; a kill -9 in the middle of the adoption must leave neither duplicates nor
 * resurrected messages. The tests share one Dovecot and run one after the other (they change
 * its configuration; `after` restores it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import {
  inboxDir,
  makeConfig,
  readCached,
  readCachedByKey,
  runCli,
  spawnCli,
  spawnDaemon,
  statusJson,
  waitFor,
} from '../support/localpost.js';
import { PYTHON } from '../support/python.js';
import { freePort } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let originalConf = '';
let renumbered = false;
const cleanups: Array<() => void | Promise<void>> = [];

before(async () => {
  tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'ken:kenpw' } });
  originalConf = readFileSync(confFile(), 'utf8');
});
afterEach(async () => {
  if (renumbered) await setUidlFormat(undefined);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  if (renumbered) await setUidlFormat(undefined);
  await tb?.stop();
});

function confFile(): string {
  return path.join(tb.dir, 'etc/dovecot.conf');
}

/** Dovecot's UIDL format (undefined: the testbed's default) takes effect for new sessions after a reload. */
async function setUidlFormat(format: string | undefined): Promise<void> {
  writeFileSync(confFile(), format ? `${originalConf}pop3_uidl_format = ${format}\n` : originalConf);
  renumbered = format !== undefined;
  const pid = Number(readFileSync(path.join(tb.dir, 'run/master.pid'), 'utf8').trim());
  process.kill(pid, 'SIGHUP');
  // the reload is done once a new session lists UIDLs in the new form
  const want = format ? /^\d+ UID\d+-/ : /^\d+ [0-9a-f]{16}$/i;
  await waitFor(async () => (await poplib(tb.pop3Port, 'alice', 'alicepw')).uidls.every((u) => want.test(u)), 30_000);
}

const POPLIB = `
import poplib, sys, json
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3(host, port, timeout=60)
p.user(user); p.pass_(pw)
uidls = [l.decode('latin1') for l in p.uidl()[1]]
for n in sys.argv[5:]: p.dele(int(n))
p.quit()
print(json.dumps(uidls))
`;

/** `UIDL` with poplib (lines `n uidl`), then DELE `dele` and QUIT. */
function poplib(port: number, user: string, pass: string, dele: number[] = []): Promise<{ uidls: string[] }> {
  return new Promise((resolve, reject) =>
    execFile(PYTHON, ['-c', POPLIB, '127.0.0.1', String(port), user, pass, ...dele.map(String)], (err, out, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ uidls: JSON.parse(out) as string[] }),
    ),
  );
}

/** A message without a Message-ID (its identity is the digest of its bytes). */
function noMessageId(i: number): Buffer {
  return Buffer.from(`From: a@example.org\r\nSubject: no id ${i}\r\n\r\nbody ${i}\r\n`);
}

function messageIds(dir: string): string[] {
  return readCached(dir).map((b) => /^(?:Message-ID: (.*)|Subject: (no id .*))$/im.exec(b.toString('latin1'))![0]);
}

describe('a POP3 provider that renumbers every UIDL', () => {
  test('only new mail is downloaded; local deletions and local UIDLs stay; status says so', async () => {
    await tb.seed('alice', 60, undefined, { archiveN: 0 });
    for (const i of [1, 2]) await tb.appendMessage('alice', noMessageId(i));
    const port = await freePort();
    const c = makeConfig(
      [{ protocol: 'pop3', port: tb.pop3Port }],
      `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"], workarounds: [] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
    );
    writeFileSync(
      c.configFile,
      readFileSync(c.configFile, 'utf8').replace(/(\n {6}idle: .*\n)/, '$1      syncOnLogin: 0s\n'),
    );
    const d = spawnDaemon(c.configFile);
    cleanups.push(async () => {
      if (d.proc.exitCode === null) {
        d.proc.kill('SIGTERM');
        await d.exited;
      }
      c.cleanup();
    });
    await waitFor(() => d.out().includes('pull done'), 60_000, `first pull:\n${d.out()}`);
    assert.equal(readCached(inboxDir(c.dataDir)).length, 62);
    // the user deletes two messages in the mail client
    const before = await poplib(port, 'alice', 'localpw', [3, 10]);
    assert.equal(before.uidls.length, 62);
    const deleted = [before.uidls[2], before.uidls[9]].map((l) => l!.split(' ')[1]);
    await tb.seed('alice', 3, undefined, { archiveN: 0 }); // genuinely new
    await setUidlFormat('UID%u-%v');

    const r = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /alice ok, 3 new/, 'only the new messages were downloaded');
    assert.equal(readCached(inboxDir(c.dataDir)).length, 63);
    const ids = messageIds(inboxDir(c.dataDir));
    assert.equal(new Set(ids).size, 63, 'no duplicates');
    const afterward = await poplib(port, 'alice', 'localpw');
    const served = afterward.uidls.map((l) => l.split(' ')[1]);
    const kept = before.uidls.map((l) => l.split(' ')[1]).filter((u) => !deleted.includes(u));
    assert.deepEqual(served.slice(0, 60), kept, 'the local UIDLs of the messages kept are unchanged');
    assert.equal(served.length, 63);
    assert.ok(!served.some((u) => deleted.includes(u!)), 'deleted messages stay deleted');
    assert.match(d.out(), /provider renumbered its POP3 UIDLs: 62 messages matched by content/);

    const s = await statusJson(c.configFile);
    const change = s.accounts[0]?.keyChange;
    assert.ok(change?.finishedAt, JSON.stringify(change));
    assert.deepEqual([change.kind, change.matched, change.fresh], ['uidl', 62, 3]);
    const text = await runCli(['--config', c.configFile, 'status']);
    assert.match(text.stdout, /alice: provider renumbered its UIDLs on \d{4}-\d\d-\d\d: 62 matched, 3 new/);

    // nothing more at the next pull
    const again = await runCli(['--config', c.configFile, 'sync']);
    assert.match(again.stdout, /alice ok, 0 new/);
  });

  test('kill -9 during the adoption: resumed at the next pull, no duplicates, nothing resurrected', async (t) => {
    await tb.seed('ken', 300, 1500, { archiveN: 0 });
    const c = makeConfig([{ id: 'ken', protocol: 'pop3', port: tb.pop3Port, username: 'ken', password: 'kenpw' }]);
    cleanups.push(c.cleanup);
    const r1 = await runCli(['--config', c.configFile, 'sync']);
    assert.match(r1.stdout, /ken ok, 300 new/, r1.stderr);
    // 20 messages deleted locally (moved to Trash, tombstoned), as a POP3 DELE does
    const cache = await Cache.open({ dataDir: c.dataDir, accounts: ['ken'], log: pino({ level: 'silent' }) });
    const store = cache.account('ken');
    const gone = store.list(INBOX).filter((_, i) => i % 15 === 0);
    const goneIds = new Set(gone.map((m) => /^Message-ID: (.*)$/m.exec(readFileSync(m.path, 'latin1'))?.[1]));
    assert.equal(
      await store.trash(
        gone.map((m) => m.uid),
        { deleteUpstream: false },
      ),
      20,
    );
    cache.close();
    await setUidlFormat('UID%u-%v');

    // killed at a later moment of the adoption each round, until it was cut short twice or a pull got through
    const inbox = inboxDir(c.dataDir, 'ken');
    const oldKeys = new Set(readCachedByKey(inbox).keys());
    const adopted = () => [...readCachedByKey(inbox).keys()].filter((k) => !oldKeys.has(k)).length;
    let kills = 0;
    let cutShort = 0;
    for (let round = 0; round < 10; round++) {
      const child = spawnCli(['--config', c.configFile, 'sync']);
      let err = '';
      let timer: NodeJS.Timeout | undefined;
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        if (!timer && err.includes('adopting the new UIDLs'))
          timer = setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 40) * round);
      });
      const signal = await new Promise((res) => child.once('close', (_code, sig) => res(sig)));
      clearTimeout(timer);
      if (signal !== 'SIGKILL') break;
      kills++;
      const s = await statusJson(c.configFile);
      const n = adopted();
      if (s.accounts[0]?.keyChange?.finishedAt === undefined && n > 0 && n < 280) cutShort++;
      assert.equal(readCached(inbox).length, 280, 'never a duplicate, whatever the moment');
      if (cutShort >= 2) break; // resumed once already: the last pull below finishes it
    }
    t.diagnostic(`killed ${kills} times, ${cutShort} in the middle of the adoption`);
    // where the kills land depends on the disk (here 2 of 3–4 cut the adoption short); the outcome must hold anyway
    assert.ok(kills >= 1, 'killed once the adoption had started');

    const r2 = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /ken ok, 0 new/);
    const ids = messageIds(inboxDir(c.dataDir, 'ken'));
    assert.equal(ids.length, 280);
    assert.equal(new Set(ids).size, 280, 'no duplicates');
    assert.ok(!ids.some((l) => goneIds.has(l.replace(/^Message-ID: /i, ''))), 'nothing resurrected');
    const s = await statusJson(c.configFile);
    const change = s.accounts[0]?.keyChange;
    assert.ok(change?.finishedAt);
    assert.equal(change.fresh, 0);
    assert.equal(readCached(inboxDir(c.dataDir, 'ken')).length, 280);
  });
});
