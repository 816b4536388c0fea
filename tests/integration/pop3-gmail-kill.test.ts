/**
 * kill -9 of the daemon while it pulls from a Gmail-like POP3 server (the fake's Gmail mode:
 * each session offers the next window of messages not popped yet; a message is popped only by
 * a clean QUIT after its RETR; docs/pitfalls.md#gmail-pop-window). The daemon is killed in the
 * middle of a RETR window, between a session's last RETR and its QUIT (the server holds the
 * QUIT unanswered), and after some clean sessions; after each kill it restarts and pulls on.
 * At the end the cache holds every message of the mailbox exactly once, nothing is left to
 * offer upstream, and nothing half-written remains; in keep mode and in delete mode.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type FakePop3, startFakePop3 } from '../fakes/fake-pop3.js';
import {
  type CollectedCli,
  inboxDir,
  makeConfig,
  readCached,
  spawnDaemon,
  type TempConfig,
  tmpFiles,
  waitFor,
} from '../support/localpost.js';

const N = 60;
const WINDOW = 10;
const mailbox = Array.from({ length: N }, (_, i) =>
  Buffer.from(`Message-ID: <k${i + 1}@gmail.test>\r\nSubject: ${i + 1}\r\n\r\n${'line\r\n'.repeat(50)}`),
);

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function kill(d: CollectedCli): Promise<void> {
  d.proc.kill('SIGKILL');
  await d.exited;
}

const retrs = (fake: FakePop3) => fake.log.filter((l) => l.startsWith('C: RETR')).length;

async function killRounds(mode: 'keep' | 'delete'): Promise<void> {
  let stallQuit = false;
  let quitHeld = false;
  const fake = await startFakePop3({
    user: 'alice',
    pass: 'pw',
    messages: mailbox,
    gmail: { window: WINDOW, mode },
    onCommand: (verb) => {
      if (verb === 'QUIT' && stallQuit) {
        quitHeld = true;
        return { stall: true }; // the session's RETRs are done; the server never sees it end
      }
      return verb === 'RETR' ? { delayMs: 10 } : undefined; // room for a kill mid-window
    },
  });
  const cfg: TempConfig = makeConfig([
    { protocol: 'pop3', port: fake.port, username: 'alice', password: 'pw', keepOnServer: mode === 'keep' },
  ]);
  const daemons: CollectedCli[] = [];
  cleanups.push(async () => {
    for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) await kill(d);
    await fake.close();
    cfg.cleanup();
  });
  const start = () => {
    const d = spawnDaemon(cfg.configFile);
    daemons.push(d);
    return d;
  };
  const gone = () => (mode === 'keep' ? fake.popped.size : fake.removed.size);

  // 1. in the middle of the first window's RETRs
  let d = start();
  await waitFor(() => retrs(fake) >= 4, 30_000, 'RETRs under way');
  await kill(d);
  // 2. after a session's last RETR, before the server saw its QUIT
  stallQuit = true;
  d = start();
  await waitFor(() => quitHeld, 30_000, 'a session waiting on its QUIT');
  await kill(d);
  stallQuit = false;
  const goneAtSecondKill = gone();
  // 3. after a few clean sessions, somewhere in a later one
  d = start();
  await waitFor(() => gone() >= goneAtSecondKill + 2 * WINDOW, 30_000, 'two more windows popped');
  await kill(d);
  assert.ok(gone() < N, `the last kill came too late (${gone()} of ${N} gone upstream)`);

  // restart and pull to the end
  d = start();
  await waitFor(() => gone() === N && readCached(inboxDir(cfg.dataDir)).length >= N, 60_000, 'everything pulled');
  d.proc.kill('SIGTERM');
  assert.equal(await d.exited, 0, d.out());

  const cached = readCached(inboxDir(cfg.dataDir)).map((b) => b.toString('latin1'));
  assert.equal(cached.length, N, `${cached.length} cached of ${N}`);
  assert.deepEqual(cached.sort(), mailbox.map((m) => m.toString('latin1')).sort(), 'every message exactly once');
  assert.deepEqual(tmpFiles(inboxDir(cfg.dataDir)), []);
}

test('keep mode: kill -9 mid-window, before QUIT and between sessions; every message cached once', async () => {
  await killRounds('keep');
});

test('delete mode: the same kills; every message cached once and removed upstream', async () => {
  await killRounds('delete');
});
