/**
 * Ad-hoc probe (not a bench section): the wire cost of the IMAP mirror (src/upstream/imap/mirror.ts)
 * when a pull of an N-message folder follows 10 expunges made upstream by another device, against
 * Dovecot as it is (QRESYNC: VANISHED) and Dovecot offering no QRESYNC (`UID SEARCH ALL`).
 * Counts commands and bytes through a tap (deterministic, no timing), prints one JSON line each.
 *   node --import tsx bench/mirror-probe.ts [N]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startImapTap } from '../tests/support/imap-tap.js';
import { imapAccount, NO_QRESYNC } from '../tests/support/journal-testbed.js';
import { PYTHON } from '../tests/support/python.js';
import { startTestbed } from '../tests/support/testbed.js';

const n = Number(process.argv[2] ?? 10_000);
const EXPUNGED = 10;
const log = pino({ level: 'silent' });

for (const [name, env] of [
  ['qresync', {}],
  ['no-qresync', { IMAP_CAPABILITY: NO_QRESYNC }],
] as const) {
  const tb = await startTestbed({ postfix: false, env });
  const dataDir = mkdtempSync(join(tmpdir(), 'lp-mirror-probe-'));
  const tap = await startImapTap(tb.imapPort);
  try {
    await tb.seed('alice', n, 500, { archiveN: 0 });
    const endpoint = {
      host: '127.0.0.1',
      port: tb.imapPort,
      tls: 'none',
      username: 'alice',
      password: 'alicepw',
    } as const;
    const a = await imapAccount(dataDir, endpoint, log);
    await a.pull();
    // another device expunges 10 messages spread over the folder
    const uids = Array.from({ length: EXPUNGED }, (_, i) => 1 + Math.floor(((i + 0.5) * n) / EXPUNGED));
    const script =
      `import imaplib\nm = imaplib.IMAP4('127.0.0.1', ${tb.imapPort})\nm.login('alice', 'alicepw')\n` +
      `m.select('INBOX')\nm.uid('STORE', '${uids.join(',')}', '+FLAGS', '(\\\\Deleted)')\nm.expunge()\nm.logout()\n`;
    execFileSync(PYTHON, ['-c', script]);
    tap.reset();
    const r = await a.pull(tap.port);
    a.cache.close();
    const mirror = tap.commands.filter((c) => /^UID (SEARCH ALL|FETCH)/.test(c));
    console.log(
      JSON.stringify({
        upstream: name,
        messages: n,
        expunged: r.upstreamExpunges,
        commands: tap.commands.length,
        mirrorCommands: mirror.map((c) => c.slice(0, 60)),
        bytesSent: tap.bytesSent,
        bytesReceived: tap.bytesReceived,
      }),
    );
  } finally {
    await tap.close();
    await tb.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
