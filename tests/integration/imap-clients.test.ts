/**
 * Real IMAP clients against the local IMAP server serving a real cache, filled by a real pull
 * from the testbed Dovecot (INBOX and Archive, with the corpus of odd messages):
 * - mbsync mirrors every folder (Patterns *): each message byte for byte the cached file (as
 *   served: CRLF line ends), the count per folder; a second run changes nothing; a flag set in
 *   its Maildir (`:2,S`) is pushed back (Sync All) and lands in the cache.
 * - curl's imap:// (LIST, a message by UID, UID SEARCH, APPEND by upload), the appended message
 *   still there, journaled, after the cache is closed and opened again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { corpus } from '../fixtures/corpus.js';
import { cacheFaults } from '../reliability/invariants.js';
import { type CacheServers, cachedByUid, crlf, serveCache } from '../support/imap-cache.js';
import { inboxDir, makeConfig, runCli, type TempConfig } from '../support/localpost.js';
import { startTestbed, type Testbed } from '../support/testbed.js';

const run = promisify(execFile);
let tb: Testbed;
let c: TempConfig;
let srv: CacheServers;
let work: string;

before(async () => {
  tb = await startTestbed({ postfix: false });
  await tb.seed('alice', 12, 1500, { archiveN: 3 });
  for (const m of corpus().slice(0, 12)) await tb.appendMessage('alice', m.raw);
  c = makeConfig([{ protocol: 'imap', port: tb.imapPort, folders: ['INBOX', 'Archive'] }]);
  const r = await runCli(['--config', c.configFile, 'sync']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  srv = await serveCache(c.dataDir, { protocol: 'imap' });
  work = mkdtempSync(path.join(os.tmpdir(), 'lp-imapc-'));
});
after(async () => {
  await srv?.close();
  await tb?.stop();
  c?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The cache directory of a local folder. */
const folderDir = (folder: string): string =>
  folder === 'INBOX' ? inboxDir(c.dataDir) : path.join(inboxDir(c.dataDir), `.${folder}`);

// ---------------------------------------------------------------------------------------------
// mbsync

function mbsyncConfig(sync: 'Pull' | 'All'): string {
  const dir = path.join(work, 'mbsync');
  mkdirSync(path.join(dir, 'mail'), { recursive: true });
  const cfg = path.join(dir, 'mbsyncrc');
  writeFileSync(
    cfg,
    [
      'IMAPAccount local',
      'Host 127.0.0.1',
      `Port ${srv.imap.port}`,
      'User alice',
      'Pass localpw',
      'SSLType None',
      'AuthMechs PLAIN LOGIN',
      '',
      'IMAPStore far',
      'Account local',
      '',
      'MaildirStore near',
      `Path ${dir}/mail/`,
      `Inbox ${dir}/mail/INBOX`,
      'SubFolders Verbatim',
      '',
      'Channel all',
      'Far :far:',
      'Near :near:',
      'Patterns *',
      `Sync ${sync}`,
      'Create Near',
      'Expunge None',
      'SyncState *',
      '',
    ].join('\n'),
  );
  return cfg;
}

/** Runs mbsync; returns its network trace (`-Dn`: every command it sent, `>>>` lines). */
async function mbsync(sync: 'Pull' | 'All'): Promise<string> {
  const cfg = mbsyncConfig(sync);
  const r = await run('/usr/bin/mbsync', ['-Dn', '-c', cfg, 'all'], {
    env: { ...process.env, HOME: path.join(work, 'mbsync') },
    encoding: 'utf8',
  }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`mbsync failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  });
  return r.stdout + r.stderr;
}

/**
 * mbsync's Maildir folder: its message files by the far side's UID. The `,U=` of a file name is
 * the Maildir's own UID; the far/near pairs are in the folder's sync state (`SyncState *`):
 * header lines, a blank line, then one `<far uid> <near uid> <flags>` line per message.
 */
function mirroredByUid(folder: string): Map<number, { file: string; bytes: Buffer }> {
  const dir = path.join(work, 'mbsync', 'mail', folder);
  const nearToFar = new Map<number, number>();
  const state = readFileSync(path.join(dir, '.mbsyncstate'), 'latin1').split('\n');
  for (const line of state.slice(state.indexOf('') + 1)) {
    const m = /^(\d+) (\d+)\b/.exec(line);
    if (m) nearToFar.set(Number(m[2]), Number(m[1]));
  }
  const out = new Map<number, { file: string; bytes: Buffer }>();
  for (const sub of ['cur', 'new']) {
    for (const n of readdirSync(path.join(dir, sub))) {
      const u = /,U=(\d+)/.exec(n);
      const far = u ? nearToFar.get(Number(u[1])) : undefined;
      assert.ok(far, `mbsync file without a far UID: ${folder}/${sub}/${n}`);
      const file = path.join(dir, sub, n);
      out.set(far, { file, bytes: readFileSync(file) });
    }
  }
  return out;
}

/** The mirrored file without the `X-TUID:` line mbsync writes into the header. */
function withoutTuid(b: Buffer): Buffer {
  return Buffer.from(b.toString('latin1').replace(/^X-TUID: [^\n]*\n/m, ''), 'latin1');
}

/** No CR at all, as mbsync stores messages. */
function lf(b: Buffer): Buffer {
  return Buffer.from(b.toString('latin1').replace(/\r/g, ''), 'latin1');
}

describe('mbsync against the local IMAP server', () => {
  test('mirrors every folder byte for byte; a second run is a no-op; a flag set in its Maildir lands in the cache', async () => {
    const folders = srv
      .store()
      .folders()
      .filter((f) => f.selectable);
    assert.deepEqual(
      folders.map((f) => f.name),
      ['INBOX', 'Archive'],
    );
    await mbsync('Pull');
    assert.deepEqual(readdirSync(path.join(work, 'mbsync', 'mail')).sort(), ['Archive', 'INBOX']);
    for (const f of folders) {
      const cached = cachedByUid(folderDir(f.name));
      const mirrored = mirroredByUid(f.name);
      assert.equal(cached.size, f.messages, `${f.name}: cache files vs the store's count`);
      assert.equal(mirrored.size, cached.size, `${f.name}: as many messages mirrored as cached`);
      for (const [uid, bytes] of cached) {
        const got = mirrored.get(uid);
        assert.ok(got, `${f.name} UID ${uid} mirrored`);
        // mbsync stores without any CR (a lone CR too) and adds its X-TUID header line (its sync
        // token); curl below checks the exact wire bytes
        assert.ok(withoutTuid(got.bytes).equals(lf(bytes)), `${f.name} UID ${uid}: bytes differ`);
      }
    }
    // second run: nothing new either way
    const before = srv.store().folders();
    const files = (f: string) => [...mirroredByUid(f).values()].map((m) => m.file).sort();
    const mirrored = folders.map((f) => files(f.name));
    const out = await mbsync('Pull');
    assert.deepEqual(srv.store().folders(), before, 'the server side did not change');
    assert.deepEqual(
      folders.map((f) => files(f.name)),
      mirrored,
      'the Maildir did not change',
    );
    const sent = out.split('\n').filter((l) => /^>>> /.test(l));
    assert.ok(
      sent.some((l) => /SELECT|EXAMINE/i.test(l)),
      out.slice(0, 2000),
    );
    assert.deepEqual(
      sent.filter((l) => /BODY\.PEEK\[\]|BODY\[\]|RFC822[^.]|STORE|APPEND|EXPUNGE/i.test(l)),
      [],
      'no message fetched, no change sent',
    );

    // a flag changed in mbsync's Maildir goes back through Sync All
    const inbox = srv.store().select('INBOX');
    const target = inbox.messages.find((m) => !m.flags.includes('\\Seen'));
    assert.ok(target, 'an unseen message');
    const entry = mirroredByUid('INBOX').get(target.uid);
    assert.ok(entry);
    const base = path.basename(entry.file).replace(/:2,.*$/, '');
    renameSync(entry.file, path.join(work, 'mbsync', 'mail', 'INBOX', 'cur', `${base}:2,S`));
    await mbsync('All');
    const after = srv
      .store()
      .select('INBOX')
      .messages.find((m) => m.uid === target.uid);
    assert.deepEqual(after?.flags, ['\\Seen']);
    const others = srv
      .store()
      .select('INBOX')
      .messages.filter((m) => m.uid !== target.uid && m.flags.includes('\\Seen'));
    assert.deepEqual(
      others.map((m) => m.uid),
      inbox.messages.filter((m) => m.uid !== target.uid && m.flags.includes('\\Seen')).map((m) => m.uid),
      'no other flag changed',
    );
    // one journaled change for the upstream (`keys`, when given, are the messages' upstream keys)
    const journal = srv.cache.journal.pending('alice').map((e) => ({ ...e.change, keys: undefined }));
    assert.deepEqual(journal, [
      { kind: 'flags', folder: 'INBOX', uids: [target.uid], op: 'add', flags: ['\\Seen'], keys: undefined },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// curl

async function curl(url: string, ...args: string[]): Promise<Buffer> {
  const r = await run('curl', ['-sS', '--max-time', '20', '-u', 'alice:localpw', ...args, url], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  }).catch((err: { stderr?: Buffer; message: string }) => {
    throw new Error(`curl ${url} ${args.join(' ')}: ${err.message} ${err.stderr?.toString() ?? ''}`);
  });
  return r.stdout;
}

describe('curl imap:// against the local IMAP server', () => {
  const url = (p = ''): string => `imap://127.0.0.1:${srv.imap.port}/${p}`;

  test('LIST shows every folder', async () => {
    const out = (await curl(url())).toString();
    const names = [...out.matchAll(/^\* LIST \([^)]*\) "\/" "?([^"\r\n]+)"?\r?$/gm)].map((m) => m[1]);
    assert.deepEqual(names, ['INBOX', 'Archive'], out);
  });

  test('each message by UID is byte-equal to the cached file; UID SEARCH ALL lists every UID', async () => {
    const cached = cachedByUid(folderDir('INBOX'));
    for (const uid of cached.keys()) {
      const got = await curl(url(`INBOX;UID=${uid}`));
      assert.ok(got.equals(crlf(cached.get(uid)!)), `UID ${uid}`);
    }
    const search = (await curl(url('INBOX'), '-X', 'UID SEARCH ALL')).toString();
    assert.equal(
      search.trim(),
      `* SEARCH ${[...cached.keys()].sort((a, b) => a - b).join(' ')}`,
      'every cached UID, in order',
    );
    const archive = cachedByUid(folderDir('Archive'));
    const first = [...archive.keys()][0]!;
    assert.ok((await curl(url(`Archive;UID=${first}`))).equals(crlf(archive.get(first)!)));
  });

  test('an APPEND by upload lands in the cache, durably and journaled', async () => {
    const msg = Buffer.from(
      'From: curl@example.test\r\nTo: alice@example.test\r\nSubject: uploaded by curl\r\n' +
        'Message-ID: <curl-append@example.test>\r\n\r\nappended\r\n',
    );
    const file = path.join(work, 'upload.eml');
    writeFileSync(file, msg);
    const before = srv.store().folder('INBOX')!;
    await curl(url('INBOX'), '-T', file);
    const now = srv.store().select('INBOX');
    assert.equal(now.info.messages, before.messages + 1);
    const added = now.messages.at(-1)!;
    assert.ok(added.uid >= before.uidNext);
    assert.ok((await srv.store().read('INBOX', added.uid)).equals(msg));
    assert.ok((await curl(url(`INBOX;UID=${added.uid}`))).equals(msg));
    // closed and opened again: still there, and the append waits in the journal for the upstream
    await srv.close();
    srv = await serveCache(c.dataDir, { protocol: 'imap' });
    assert.ok(cachedByUid(folderDir('INBOX')).get(added.uid)?.equals(msg), 'the file is in the Maildir');
    assert.ok((await srv.store().read('INBOX', added.uid)).equals(msg));
    assert.ok(
      srv.cache.journal.pending('alice').some((e) => e.change.kind === 'append' && e.change.uid === added.uid),
      'journaled for the upstream',
    );
    assert.deepEqual(cacheFaults(c.dataDir), []);
  });
});
