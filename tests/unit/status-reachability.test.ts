/**
 * `status` shows an account's incoming and outgoing reachability apart: a daemon whose incoming
 * server answers and whose outgoing server refuses connections reports `online` and
 * `outgoing: "offline"` (a field added to the JSON), and the text form shows both. The incoming
 * upstream is an in-process fake; the outgoing one is a closed loopback port.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import type { StatusReport } from '../../src/control/protocol.js';
import { outgoingReachability } from '../../src/daemon/control-api.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';
import { LOOPBACK_LISTEN, runCli, spawnDaemon, statusJson, tempConfig, waitFor } from '../support/localpost.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('outgoing reachability: the probes first, then the last delivery attempt', () => {
  assert.equal(outgoingReachability('offline', undefined), 'offline');
  assert.equal(outgoingReachability('online', { failures: 2, blockedUntil: 1, problem: 'connection' }), 'online');
  assert.equal(outgoingReachability('unknown', { failures: 1, blockedUntil: 1, problem: 'connection' }), 'offline');
  assert.equal(outgoingReachability(undefined, { failures: 1, blockedUntil: 1, problem: 'auth' }), 'unknown');
  assert.equal(outgoingReachability(undefined, undefined), 'unknown');
});

test('the text form has a column for each server; receive-only accounts show -', () => {
  const report: StatusReport = {
    version: 1,
    source: 'daemon',
    dataDir: '/d',
    daemon: { running: true, pid: 1 },
    accounts: [
      { id: 'home', email: 'h@x', sends: true, messages: 1, bytes: 10, online: 'online', outgoing: 'offline' },
      { id: 'list', email: 'l@x', sends: false, messages: 0, bytes: 0, online: 'unknown' },
    ],
    outbox: { accounts: [], entries: [] },
    listeners: { pop3: [], pop3Tls: [], imap: [], imapTls: [], smtp: [] },
  };
  const lines = formatStatus(report).split('\n');
  assert.match(lines.find((l) => l.includes('ACCOUNT')) ?? '', /ACCOUNT +INCOMING +OUTGOING +MESSAGES/);
  assert.match(lines.find((l) => /^ +home /.test(l)) ?? '', /home +online +offline +1 /);
  assert.match(lines.find((l) => /^ +list /.test(l)) ?? '', /list +unknown +- +0 /);
});

test('a running daemon: incoming online, outgoing offline while its server refuses connections', async () => {
  const pop3 = await startFakePop3();
  cleanups.push(() => pop3.close());
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const smtpPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const t = tempConfig(
    'lp-status-',
    (dataDir) => `dataDir: ${dataDir}
${LOOPBACK_LISTEN}accounts:
  - id: a
    email: a@example.test
    login: { password: x }
    incoming: { protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: none, username: alice, password: secret, schedule: "0 0 1 1 *" }
    outgoing: { host: 127.0.0.1, port: ${smtpPort}, tls: none, username: alice, password: secret }
`,
  );
  cleanups.push(() => t.cleanup());
  const daemon = spawnDaemon(t.configFile);
  cleanups.push(async () => {
    daemon.proc.kill('SIGTERM');
    await daemon.exited;
  });
  await waitFor(() => /localpost started/.test(daemon.out()), 20_000, 'the daemon to start');
  let report: StatusReport | undefined;
  await waitFor(
    async () => {
      report = await statusJson(t.configFile);
      const a = report.accounts[0];
      return a?.online === 'online' && a.outgoing === 'offline';
    },
    20_000,
    'status to show the incoming server online and the outgoing one offline',
  );
  assert.equal(report?.source, 'daemon');
  const text = await runCli(['--config', t.configFile, 'status']);
  assert.match(text.stdout, /^ +a +online +offline /m);
});
