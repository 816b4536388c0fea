/**
 * Disk full, on a size-limited tmpfs data directory (needs root; skipped otherwise):
 *
 * - a pull in delete mode (`keepOnServer: false`) that runs out of space stops with an error,
 *   deletes upstream only what is durable locally, leaves nothing half-written, and completes
 *   once space returns (the tmpfs remounted bigger);
 * - the SMTP listener answers 451 (never 250, never a dropped connection) while the outbox
 *   cannot be written, keeps nothing half-written, and accepts mail again once a filler file is
 *   deleted; every message it acknowledged is queued.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeConfig, runCli } from '../support/localpost.js';
import { outboxFiles } from '../support/outbox.js';
import { authenticated, type DaemonProcess, daemonConfig, freePort, startDaemon, startData } from '../support/smtp.js';
import { startTestbed, type Testbed } from '../support/testbed.js';
import { cacheFaults, duplicates, localIds, maildirIds, outboxFaults } from './invariants.js';

const mounts: string[] = [];
let tb: Testbed | undefined;
const daemons: DaemonProcess[] = [];

/** A tmpfs of `size` at a new directory, or undefined when mounting is not allowed here. */
function tmpfs(size: string): string | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

const remount = (dir: string, size: string) => execFileSync('mount', ['-o', `remount,size=${size}`, dir]);

let canMount = false;
before(() => {
  const probe = tmpfs('1m');
  canMount = probe !== undefined;
});
after(async () => {
  for (const d of daemons) if (d.child.exitCode === null) await d.kill();
  await tb?.stop();
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      /* best effort */
    }
    rmSync(m, { recursive: true, force: true });
  }
});

describe('disk full', () => {
  test('a pull that runs out of space deletes nothing upstream that is not durable, and completes once space returns', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (needs root)');
    tb = await startTestbed({ postfix: false });
    await tb.seed('alice', 60, 40_000, { archiveN: 0 });
    const seeded = maildirIds(tb.maildir('alice'));
    assert.equal(seeded.length, 60);
    const mnt = tmpfs('1m')!;
    const c = makeConfig([{ protocol: 'pop3', port: tb.pop3Port, keepOnServer: false }]);
    const dataDir = path.join(mnt, 'data');
    writeFileSync(
      c.configFile,
      readFileSync(c.configFile, 'utf8').replace(`dataDir: ${c.dataDir}`, `dataDir: ${dataDir}`),
    );

    // The daemon pulls at start and runs out of space; it must stay up.
    const daemon = await startDaemon(c.configFile);
    daemons.push(daemon);
    const failed = await daemon.waitLog(/^pull failed$/);
    assert.match(String(failed.err), /ENOSPC|no space left|disk is full/i);
    const local = localIds(dataDir, 'alice', false);
    const upstream = maildirIds(tb.maildir('alice'));
    assert.ok(local.length > 0 && local.length < 60, `stopped part-way: ${local.length} cached`);
    assert.deepEqual([...duplicates(local), ...duplicates(upstream)], [], 'nothing twice');
    assert.deepEqual(
      [...new Set([...local, ...upstream])].sort(),
      [...seeded].sort(),
      'nothing lost: every message is local or still upstream',
    );
    assert.ok(upstream.length >= 60 - local.length, 'nothing deleted upstream that is not cached');
    assert.deepEqual(
      cacheFaults(dataDir, 'alice', { tmpMayHoldFiles: true, rowsMayLag: true }),
      [],
      'nothing half-written',
    );
    assert.equal(daemon.child.exitCode, null, 'the daemon keeps running');

    // Space returns: the next pull, in the same daemon, finishes the job.
    remount(mnt, '32m');
    const ok = await runCli(['--config', c.configFile, 'sync']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(localIds(dataDir, 'alice', false).sort(), [...seeded].sort(), 'every message cached once');
    assert.equal(tb.countUpstream('alice'), 0, 'and only then deleted upstream');
    assert.equal(await daemon.stop(), 0);
    assert.deepEqual(cacheFaults(dataDir), []);
    c.cleanup();
  });

  test('SMTP answers 451 while the outbox cannot be written, keeps nothing half-written, and accepts again when space returns', async (t) => {
    if (!canMount) return t.skip('cannot mount a tmpfs here (needs root)');
    const mnt = tmpfs('3m')!;
    const work = path.join(mnt, 'w');
    mkdirSync(work);
    const config = daemonConfig(work, [
      {
        id: 'alice',
        incoming: { protocol: 'pop3', port: await freePort(), username: 'alice', password: 'alicepw' },
        outgoing: { port: await freePort(), username: 'alice', password: 'alicepw' }, // nothing listens: mail stays queued
      },
    ]);
    const daemon = await startDaemon(config);
    daemons.push(daemon);
    const dataDir = path.join(work, 'data');
    // Leave about 600 KB free, then send 100 KB messages until the disk is full.
    const filler = path.join(mnt, 'filler');
    const freeKb = Number(execFileSync('df', ['-k', '--output=avail', mnt]).toString().trim().split('\n')[1]);
    writeFileSync(filler, Buffer.alloc(Math.max(0, freeKb - 600) * 1024, 1));
    const body = (n: number) =>
      `Subject: full ${n}\r\nMessage-ID: <full-${n}@x>\r\n\r\n${'0123456789abcdef'.repeat(6400)}\r\n.\r\n`;
    const acked: number[] = [];
    const refused: string[] = [];
    for (let n = 0; n < 30 && refused.length < 3; n++) {
      const d = await authenticated(daemon.smtpPort, 'alice', 'localpw');
      await startData(d, 'alice@example.test', 'bob@example.test');
      const r = (await d.send(body(n)))[0]!;
      d.close();
      if (r.startsWith('250')) acked.push(n);
      else refused.push(r);
    }
    assert.ok(acked.length > 0, 'some mail fitted');
    assert.ok(refused.length >= 3, 'the disk filled up');
    for (const r of refused) assert.match(r, /^451 /, 'a full disk is a temporary local failure');
    assert.deepEqual(outboxFaults(dataDir), [], 'nothing half-written');
    assert.equal(
      (await outboxFiles(dataDir)).filter((f) => f.endsWith('.eml')).length,
      acked.length,
      'every acknowledged message is queued',
    );
    assert.equal(daemon.child.exitCode, null, 'the daemon keeps running');

    rmSync(filler);
    const d = await authenticated(daemon.smtpPort, 'alice', 'localpw');
    await startData(d, 'alice@example.test', 'bob@example.test');
    assert.match((await d.send(body(99)))[0]!, /^250 /, 'accepted again once space returned');
    d.close();
    assert.deepEqual(outboxFaults(dataDir), []);
    assert.equal(await daemon.stop(), 0);
  });
});
