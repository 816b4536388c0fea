/**
 * Corrupt state on disk (invariants 6 and 8 of docs/architecture.md), through the real daemon:
 * `localpost start` on a damaged data directory recovers as specified and keeps running (never
 * a crash loop), `status` answers, and a POP3 login sees every message under its old UIDL.
 *
 * - state.db truncated, or overwritten with garbage (and a garbage -wal beside it): moved
 *   aside as `state.db.broken-*`, every row rebuilt from the Maildir;
 * - a Maildir file with a foreign name: adopted under a new UID; a file of ours whose size
 *   disagrees with its `S=`: quarantined as `*.broken` (and fetched again while the upstream
 *   keeps it); with the index intact, such a file is refused at RETR rather than served;
 * - half-written outbox entries (an `.eml` without `.json`, unparseable or shapeless JSON,
 *   metadata without a message, junk in `outbox/tmp/`): removed or renamed `*.broken`.
 * After each start, a second start changes nothing more (recovery is idempotent).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inboxDir, maildirFiles, makeConfig, runCli } from '../support/localpost.js';
import { authenticated } from '../support/pop3-server.js';
import { type DaemonProcess, startDaemon } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

let tb: Testbed;
let c: ReturnType<typeof makeConfig>;
const daemons: DaemonProcess[] = [];
before(async () => {
  tb = await startTestbed({ postfix: false });
  await tb.seed('alice', 5, 2000);
  c = makeConfig([{ protocol: 'pop3', port: tb.pop3Port }]);
  const r = await runCli(['--config', c.configFile, 'sync']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  for (const d of daemons) if (d.child.exitCode === null) await d.kill();
  await tb?.stop();
  c?.cleanup();
});

/** UIDL → Message-ID of the cached INBOX, as a POP3 client sees it through the daemon. */
async function served(): Promise<{ uidls: Map<string, string>; daemon: DaemonProcess }> {
  const daemon = await startDaemon(c.configFile);
  daemons.push(daemon);
  const ready = await daemon.waitLog(/^POP3 listener ready$/);
  const port = (ready.addresses as Array<{ port: number }>)[0]!.port;
  const conn = await authenticated(port, 'alice', 'localpw');
  conn.cmd('UIDL');
  assert.match(await conn.line(), /^\+OK/);
  const uidls = new Map<string, string>();
  for (const l of await conn.lines()) {
    const [n, uidl] = l.split(' ');
    conn.cmd(`TOP ${n} 0`);
    if ((await conn.line()).startsWith('-ERR')) {
      uidls.set(uidl!, '(not served)');
      continue;
    }
    const head = (await conn.lines()).join('\n');
    uidls.set(uidl!, /^Message-ID: *(.*)$/im.exec(head)?.[1]?.trim() ?? `(none in ${n})`);
  }
  assert.match(await conn.ask('QUIT'), /^\+OK/);
  conn.close();
  return { uidls, daemon };
}

async function statusMessages(): Promise<number> {
  const r = await runCli(['--config', c.configFile, 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { accounts: Array<{ id: string; messages: number }> }).accounts.find(
    (a) => a.id === 'alice',
  )!.messages;
}

/** Start, check, stop; then start again and check that recovery had nothing more to do. */
async function recoverTwice(
  expect: Map<string, string>,
  check?: (logs: DaemonProcess['logs']) => void,
): Promise<Map<string, string>> {
  const first = await served();
  for (const [uidl, id] of expect) assert.equal(first.uidls.get(uidl), id, `UIDL ${uidl} still serves ${id}`);
  assert.equal(await statusMessages(), first.uidls.size, 'status agrees with the maildrop');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(first.daemon.child.exitCode, null, 'the daemon keeps running');
  check?.(first.daemon.logs);
  assert.equal(await first.daemon.stop(), 0);
  const second = await served();
  assert.deepEqual(second.uidls, first.uidls, 'a second start serves the same maildrop');
  assert.ok(
    !second.daemon.logs.some((l) => /recovered|moved aside|quarantined|adopted|broken/i.test(String(l.msg))),
    'nothing left to recover',
  );
  assert.equal(await second.daemon.stop(), 0);
  return first.uidls;
}

const brokenDbs = () =>
  readdirSync(c.dataDir).filter((n) => n.startsWith('state.db.broken-') && !/-(wal|shm)$/.test(n));

describe('corrupt state: the daemon recovers and keeps running', () => {
  let baseline: Map<string, string>;

  test('baseline: five messages served', async () => {
    const first = await served();
    baseline = first.uidls;
    assert.equal(baseline.size, 5);
    assert.equal(await first.daemon.stop(), 0);
  });

  test('a truncated state.db is moved aside and rebuilt from the Maildir', async () => {
    const db = path.join(c.dataDir, 'state.db');
    truncateSync(db, Math.floor(statSync(db).size / 2));
    await recoverTwice(baseline, (logs) => assert.ok(logs.some((l) => /state\.db is unreadable/.test(String(l.msg)))));
    assert.equal(brokenDbs().length, 1);
  });

  test('a garbage state.db (and a garbage -wal) is moved aside and rebuilt', async () => {
    const db = path.join(c.dataDir, 'state.db');
    writeFileSync(db, Buffer.alloc(64 * 1024, 'garbage! '));
    writeFileSync(`${db}-wal`, Buffer.alloc(8192, 0xa5));
    await recoverTwice(baseline);
    assert.equal(brokenDbs().length, 2);
  });

  test('with the index lost: a foreign Maildir file is adopted, a file of ours with a wrong size is quarantined', async () => {
    const inbox = inboxDir(c.dataDir);
    writeFileSync(path.join(c.dataDir, 'state.db'), 'not a database');
    writeFileSync(
      path.join(inbox, 'cur', '1700000000.M1P1.otherhost:2,S'),
      'From: x@example.test\r\nMessage-ID: <foreign@x>\r\nSubject: foreign\r\n\r\nadopt me\r\n',
    );
    const victim = maildirFiles(inbox)[0]!;
    const id = /^Message-ID: *(.*)$/im.exec(readFileSync(victim, 'latin1'))![1]!.trim();
    truncateSync(victim, 10); // S= now disagrees
    const expect = new Map([...baseline].filter(([, m]) => m !== id));
    const uidls = await recoverTwice(expect);
    assert.ok([...uidls.values()].includes('<foreign@x>'), 'the foreign message is served');
    // the damaged copy is out of the index, so the pull on start fetched the upstream copy again
    const again = [...uidls].filter(([, m]) => m === id).map(([u]) => u);
    assert.equal(again.length, 1, 'the damaged message is served once, freshly fetched');
    assert.ok(!baseline.has(again[0]!), 'under a new UIDL');
    const q = path.join(c.dataDir, 'accounts', 'alice', 'quarantine');
    assert.deepEqual(readdirSync(q).filter((n) => n.endsWith('.broken')).length, 1);
    baseline = uidls;
  });

  test('with the index intact: a damaged message file is refused at RETR, never served under a size it does not have', async () => {
    const victim = maildirFiles(inboxDir(c.dataDir)).at(-1)!;
    truncateSync(victim, 7);
    const first = await served();
    assert.equal([...first.uidls.values()].filter((m) => m === '(not served)').length, 1);
    assert.equal(first.uidls.size, baseline.size, 'the others are all served');
    assert.ok(
      first.daemon.logs.some((l) => /wrong size: not served/.test(String(l.msg))),
      'and it is logged',
    );
    assert.equal(await first.daemon.stop(), 0);
  });

  test('half-written outbox entries are cleaned up or moved aside as *.broken', async () => {
    const ob = path.join(c.dataDir, 'outbox');
    const ids = ['mabc123-0000000a', 'mabc123-0000000b', 'mabc123-0000000c', 'mabc123-0000000d'];
    writeFileSync(path.join(ob, `${ids[0]}.eml`), 'Subject: never acknowledged\r\n\r\nx\r\n'); // .eml without .json
    writeFileSync(path.join(ob, `${ids[1]}.eml`), 'Subject: torn json\r\n\r\nx\r\n');
    writeFileSync(path.join(ob, `${ids[1]}.json`), '{"v":1,"id":"mabc123-0000000b","acc');
    writeFileSync(path.join(ob, `${ids[2]}.json`), JSON.stringify({ v: 1, id: ids[2], hello: 'world' }));
    writeFileSync(path.join(ob, `${ids[2]}.eml`), 'x');
    writeFileSync(path.join(ob, 'tmp', `${ids[3]}.eml`), 'half');
    await recoverTwice(new Map());
    const left = readdirSync(ob).sort();
    assert.ok(!left.includes(`${ids[0]}.eml`), 'the unacknowledged message is gone');
    for (const id of [ids[1], ids[2]]) {
      assert.ok(
        left.includes(`${id}.json.broken`) && left.includes(`${id}.eml.broken`),
        `${id} moved aside: ${left.join(' ')}`,
      );
    }
    assert.deepEqual(readdirSync(path.join(ob, 'tmp')), []);
    const list = await runCli(['--config', c.configFile, 'outbox']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(existsSync(path.join(c.dataDir, 'state.db')));
  });
});
