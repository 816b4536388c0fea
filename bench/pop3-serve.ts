/**
 * Serving benchmark: the same client (Python poplib) RETRs every message of an
 * N-message maildrop (default 10,000) from localpost's POP3 server and from Dovecot's POP3
 * holding the same messages, alternating, in the same run; then login + STAT + UIDL time.
 * Run: node --import tsx bench/pop3-serve.ts [N]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Cache } from '../src/cache/cache.js';
import { LocalAuth } from '../src/listeners/local-auth.js';
import { CacheBackend } from '../src/listeners/pop3/backend.js';
import { Pop3Server } from '../src/listeners/pop3/server.js';
import { makeConfig, runCli } from '../tests/support/localpost.js';
import { startTestbed } from '../tests/support/testbed.js';

const N = Number(process.argv[2] ?? 10_000);
const POPLIB = `
import poplib, sys, time
poplib._MAXLINE = 1 << 24
t0 = time.perf_counter()
p = poplib.POP3('127.0.0.1', int(sys.argv[1])); p.user(sys.argv[2]); p.pass_(sys.argv[3])
n = p.stat()[0]; p.uidl()
t1 = time.perf_counter()
total = 0
for i in range(1, n + 1):
    total += p.retr(i)[2]
p.quit()
print(n, total, round((t1 - t0) * 1000, 1), round((time.perf_counter() - t1) * 1000, 1))
`;

/** Runs the client in a child process (asynchronously: the server under test lives in this one). */
async function poplib(
  port: number,
  user: string,
  pass: string,
): Promise<{ n: number; octets: number; loginMs: number; retrMs: number }> {
  const { stdout } = await promisify(execFile)('python3', ['-c', POPLIB, String(port), user, pass], {
    encoding: 'utf8',
  });
  const [n, octets, loginMs, retrMs] = stdout.trim().split(' ').map(Number);
  return { n: n!, octets: octets!, loginMs: loginMs!, retrMs: retrMs! };
}

const tb = await startTestbed({ postfix: false });
try {
  await tb.seed('alice', N, undefined, { archiveN: 0 });
  const c = makeConfig([{ protocol: 'pop3', port: tb.pop3Port }]);
  const r = await runCli(['--config', c.configFile, 'sync']);
  if (r.code !== 0) throw new Error(r.stderr + r.stdout);
  const log = pino({ level: 'silent' });
  const cache = await Cache.open({ dataDir: c.dataDir, accounts: ['alice'], log });
  const server = new Pop3Server({
    hosts: ['127.0.0.1'],
    port: 0,
    log,
    workarounds: { outlookNoNuls: false, oeNsEoh: false },
    auth: new LocalAuth([{ accountId: 'alice', username: 'alice', password: 'localpw' }]),
    backend: new CacheBackend({ stores: cache, log, onLocalDelete: () => 'keep-upstream' }),
  });
  await server.start();
  const rows: string[] = [];
  const best = { dovecot: Infinity, localpost: Infinity };
  for (let round = 1; round <= 3; round++) {
    const d = await poplib(tb.pop3Port, 'alice', 'alicepw');
    const l = await poplib(server.port, 'alice', 'localpw');
    if (d.n !== l.n || d.octets !== l.octets) throw new Error(`different maildrops: ${JSON.stringify({ d, l })}`);
    best.dovecot = Math.min(best.dovecot, d.retrMs);
    best.localpost = Math.min(best.localpost, l.retrMs);
    rows.push(
      `round ${round}: RETR all ${l.n} (${(l.octets / 1e6).toFixed(1)} MB) dovecot ${d.retrMs} ms, localpost ${l.retrMs} ms; login+STAT+UIDL dovecot ${d.loginMs} ms, localpost ${l.loginMs} ms`,
    );
  }
  console.log(rows.join('\n'));
  console.log(`best RETR-all ratio localpost/dovecot: ${(best.localpost / best.dovecot).toFixed(2)} (goal ≤ 1.2)`);
  await server.stop();
  cache.close();
  c.cleanup();
} finally {
  await tb.stop();
}
