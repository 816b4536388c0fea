/**
 * The POP3 fetcher against Gmail's window (docs/pitfalls.md#gmail-pop-window), with the fake's
 * Gmail mode: each session offers the next few messages not popped yet, and a message is popped
 * only by a clean QUIT after its RETR. Sessions that die after their last RETR (no QUIT), whose
 * QUIT gets -ERR or whose QUIT is answered by a reset must leave the cache correct: after pulls
 * converge, the cache holds every message of the mailbox exactly once and the server has nothing
 * left to offer, in keep mode and in delete mode.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import pino from 'pino';
import { Cache } from '../../src/cache/cache.js';
import { INBOX } from '../../src/cache/message-store.js';
import { Pop3Fetcher } from '../../src/upstream/pop3/fetcher.js';
import { type GmailMode, type GmailQuit, startFakePop3 } from '../fakes/fake-pop3.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const N = 23;
const WINDOW = 5;
const mailbox = Array.from({ length: N }, (_, i) =>
  Buffer.from(`Message-ID: <g${i + 1}@gmail.test>\r\nSubject: ${i + 1}\r\n\r\nbody ${i + 1}\r\n`),
);

/** Session ends by session id: a clean QUIT unless listed. */
function script(faults: Record<number, GmailQuit>): GmailMode['quit'] {
  return (s) => faults[s.id] ?? 'ok';
}

async function pullToTheEnd(mode: GmailMode['mode'], faults: Record<number, GmailQuit>) {
  const fake = await startFakePop3({
    user: 'alice',
    pass: 'pw',
    messages: mailbox,
    gmail: { window: WINDOW, mode, quit: script(faults) },
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'lp-gmail-'));
  const cache = await Cache.open({ dataDir, accounts: ['a'], log });
  cleanups.push(async () => {
    cache.close();
    await fake.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const store = cache.account('a');
  const fetcher = new Pop3Fetcher({
    endpoint: { host: '127.0.0.1', port: fake.port, tls: 'none', username: 'alice', password: 'pw', timeoutMs: 2000 },
    store,
    log,
    keepOnServer: mode === 'keep',
    maxMessageSize: 1024 * 1024,
  });
  // Pull until a pull succeeds and finds nothing new; a failed QUIT fails its pull.
  let pulls = 0;
  let failed = 0;
  for (; pulls < 20; ) {
    pulls++;
    try {
      const r = await fetcher.pull();
      if (r.newMessages === 0) break;
    } catch {
      failed++;
    }
  }
  const bodies = store.list(INBOX).map((m) => readFileSync(m.path).toString('latin1'));
  return { fake, bodies, pulls, failed };
}

function assertEveryMessageOnce(bodies: string[]): void {
  const want = mailbox.map((m) => m.toString('latin1')).sort();
  assert.equal(bodies.length, N, `${bodies.length} cached, ${N} in the mailbox`);
  assert.deepEqual([...bodies].sort(), want, 'every message exactly once');
}

const faults: Record<number, GmailQuit> = { 1: 'cut-after-last-retr', 3: 'err', 4: 'reset', 6: 'cut-after-last-retr' };

test('keep mode: sessions dying before or at QUIT neither duplicate nor skip, and the window moves on', async () => {
  const { fake, bodies, pulls, failed } = await pullToTheEnd('keep', faults);
  assertEveryMessageOnce(bodies);
  assert.equal(fake.popped.size, N, `popped upstream: ${fake.popped.size} of ${N} (the window is stuck otherwise)`);
  assert.equal(failed, 4, 'each faulty QUIT failed its pull');
  assert.ok(pulls <= 6, `converged in ${pulls} pulls`);
});

test('delete mode: the same faults; every message cached once and removed upstream', async () => {
  const { fake, bodies, pulls, failed } = await pullToTheEnd('delete', faults);
  assertEveryMessageOnce(bodies);
  assert.equal(fake.removed.size, N, `removed upstream: ${fake.removed.size} of ${N}`);
  assert.equal(failed, 4);
  assert.ok(pulls <= 6, `converged in ${pulls} pulls`);
});

test('keep mode without faults: a first pull of a large mailbox takes one session per window', async () => {
  const { fake, bodies, pulls } = await pullToTheEnd('keep', {});
  assertEveryMessageOnce(bodies);
  assert.equal(pulls, 2, 'one pull fetched everything, the next found nothing new');
  assert.equal(fake.connections, Math.ceil(N / WINDOW) + 2, 'a session per window, one empty, one for the second pull');
});
