/**
 * `npm run soak -- [--minutes N]` (default 10): the daemon under steady load.
 *
 * Four accounts on the testbed's Dovecot (delete mode, new upstream mail every second, a pull
 * every 3 seconds), four POP3 clients in a loop (login, STAT, LIST, UIDL, RETR, DELE, QUIT),
 * and four SMTP senders in a loop (2–40 KB messages, relayed to an SMTP sink in this process).
 * The daemon's RSS and descriptors are sampled every 5 s from /proc/<pid>; after a warm-up
 * (the first fifth, at least 30 s) RSS must grow by less than 10%, and the daemon's log must
 * hold no error. Prints the figures; exits 1 when a limit is broken.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeSmtp } from '../tests/fakes/fake-smtp.js';
import { authenticated as pop3Auth } from '../tests/support/pop3-server.js';
import { authenticated as smtpAuth, startDaemon } from '../tests/support/smtp.js';
import { startTestbed } from '../tests/support/testbed.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' } } });
const minutes = Number(values.minutes);
const USERS = ['alice', 'bob', 'carol', 'dave'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procStat(pid: number): { rssMb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { rssMb: kb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  const warmUntil = t0 + Math.max(30_000, (minutes * 60_000) / 5);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-soak-'));
  const tb = await startTestbed({ postfix: false, env: { EXTRA_USERS: 'carol:carolpw dave:davepw' } });
  const sink = await startFakeSmtp({ user: 'relay', pass: 'relaypw' });
  const counts = {
    pulledSeeded: 0,
    pop3Sessions: 0,
    retr: 0,
    dele: 0,
    inUse: 0,
    smtpSent: 0,
    smtpBytes: 0,
    clientErrors: 0,
  };
  const clientErrors: string[] = [];
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    const lines = [
      `dataDir: ${path.join(dir, 'data')}`,
      'log: { level: info }',
      'listen:',
      '  pop3: { port: 0, hosts: ["127.0.0.1"] }',
      '  imap: { port: 0, hosts: ["127.0.0.1"] }',
      '  smtp: { port: 0, hosts: ["127.0.0.1"] }',
      'outbox: { retry: { initial: 5s, max: 30s } }',
      'accounts:',
    ];
    for (const u of USERS) {
      lines.push(
        `  - id: ${u}`,
        `    email: ${u}@example.test`,
        '    login: { password: localpw }',
        '    incoming:',
        '      protocol: pop3',
        '      host: 127.0.0.1',
        `      port: ${tb.pop3Port}`,
        '      tls: none',
        `      username: ${u}`,
        `      password: ${u}pw`,
        '      keepOnServer: false',
        '      schedule: "*/3 * * * * *"',
        '      syncOnLogin: 0s',
        '    outgoing:',
        '      host: 127.0.0.1',
        `      port: ${sink.port}`,
        '      tls: none',
        '      username: relay',
        '      password: relaypw',
      );
    }
    const config = path.join(dir, 'config.yaml');
    writeFileSync(config, `${lines.join('\n')}\n`);
    daemon = await startDaemon(config);
    const pid = daemon.child.pid!;
    const ready = await daemon.waitLog(/^POP3 listener ready$/);
    const pop3Port = (ready.addresses as Array<{ port: number }>)[0]!.port;
    const smtpPort = daemon.smtpPort;
    process.stdout.write(`soak: ${minutes} min, daemon pid ${pid}, POP3 ${pop3Port}, SMTP ${smtpPort}\n`);

    const running = () => Date.now() < end;
    const failed = (what: string, err: unknown) => {
      counts.clientErrors++;
      if (clientErrors.length < 20) clientErrors.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
    };
    const feeder = async () => {
      while (running()) {
        for (const u of USERS) await tb.seed(u, 1, 1000 + Math.floor(Math.random() * 20_000), { archiveN: 0 });
        counts.pulledSeeded += USERS.length;
        await sleep(1000);
      }
    };
    const pop3Client = async (u: string) => {
      while (running()) {
        try {
          const c = await pop3Auth(pop3Port, u, 'localpw');
          counts.pop3Sessions++;
          await c.ask('STAT');
          c.cmd('LIST');
          await c.line();
          const list = await c.lines();
          c.cmd('UIDL');
          await c.line();
          await c.lines();
          for (const l of list.slice(0, 3)) {
            const n = l.split(' ')[0]!;
            if ((await c.ask(`RETR ${n}`)).startsWith('+OK')) {
              await c.body();
              counts.retr++;
            }
          }
          for (const l of list.slice(0, 2))
            if ((await c.ask(`DELE ${l.split(' ')[0]}`)).startsWith('+OK')) counts.dele++;
          const q = await c.ask('QUIT');
          if (!q.startsWith('+OK')) failed(`POP3 ${u} QUIT`, q);
          c.close();
        } catch (err) {
          if (/IN-USE/.test((err as Error).message)) counts.inUse++;
          else failed(`POP3 ${u}`, err);
        }
        await sleep(200);
      }
    };
    const sender = async (u: string) => {
      let n = 0;
      while (running()) {
        try {
          const d = await smtpAuth(smtpPort, u, 'localpw');
          for (let k = 0; k < 5 && running(); k++, n++) {
            const body = `From: ${u}@example.test\r\nTo: x@example.net\r\nSubject: soak ${u} ${n}\r\nMessage-ID: <soak-${u}-${n}-${Date.now()}@x>\r\n\r\n${'soak line\r\n'.repeat(200 + Math.floor(Math.random() * 4000))}`;
            await d.cmd(`MAIL FROM:<${u}@example.test>`);
            await d.cmd('RCPT TO:<x@example.net>');
            await d.cmd('DATA');
            const r = await d.send(`${body}.\r\n`);
            if (r[0]!.startsWith('250')) {
              counts.smtpSent++;
              counts.smtpBytes += body.length;
            } else failed(`SMTP ${u}`, r.join(' '));
            await sleep(300);
          }
          await d.cmd('QUIT');
          d.close();
        } catch (err) {
          failed(`SMTP ${u}`, err);
        }
      }
    };
    const samples: Array<{ t: number; rssMb: number; fds: number }> = [];
    const sampler = async () => {
      while (running()) {
        samples.push({ t: Date.now(), ...procStat(pid) });
        const s = samples.at(-1)!;
        if (samples.length % 6 === 1) {
          process.stdout.write(
            `  ${((s.t - t0) / 1000).toFixed(0)} s: RSS ${s.rssMb.toFixed(1)} MB, ${s.fds} fds, ` +
              `${counts.pop3Sessions} POP3 sessions, ${counts.smtpSent} sent, ${sink.received.length} relayed\n`,
          );
        }
        await sleep(5000);
      }
    };
    await Promise.all([feeder(), sampler(), ...USERS.map(pop3Client), ...USERS.map(sender)]);
    // Let the outbox drain, then stop.
    const drainEnd = Date.now() + 60_000;
    while (sink.received.length < counts.smtpSent && Date.now() < drainEnd) await sleep(500);
    const final = procStat(pid);
    const code = await daemon.stop();

    const warm = samples.filter((s) => s.t <= warmUntil);
    const after = samples.filter((s) => s.t > warmUntil);
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const base = avg(warm.slice(-3).map((s) => s.rssMb));
    const last = avg(after.slice(-3).map((s) => s.rssMb));
    const growth = base ? (last - base) / base : 0;
    const maxRss = Math.max(...samples.map((s) => s.rssMb));
    const errors = daemon.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    process.stdout.write(
      `soak: ${minutes} min; ${counts.pulledSeeded} messages fed upstream, ${counts.pop3Sessions} POP3 sessions ` +
        `(${counts.retr} RETR, ${counts.dele} DELE, ${counts.inUse} IN-USE), ${counts.smtpSent} submitted ` +
        `(${(counts.smtpBytes / 1e6).toFixed(1)} MB), ${sink.received.length} relayed; ` +
        `RSS ${base.toFixed(1)} MB after warm-up → ${last.toFixed(1)} MB at the end (${(growth * 100).toFixed(1)}%), max ${maxRss.toFixed(1)} MB; ` +
        `descriptors ${samples[0]?.fds ?? 0} → ${final.fds}; ${errors.length} error lines in the log; ${counts.clientErrors} client errors; exit ${code}\n`,
    );
    for (const e of errors.slice(0, 10)) process.stdout.write(`  ERROR ${JSON.stringify(e).slice(0, 300)}\n`);
    for (const e of clientErrors) process.stdout.write(`  CLIENT ${e}\n`);
    const undelivered = counts.smtpSent - sink.received.length;
    if (undelivered > 0) process.stdout.write(`  ${undelivered} submitted messages not relayed within a minute\n`);
    return growth < 0.1 && errors.length === 0 && counts.clientErrors === 0 && code === 0 && undelivered <= 0 ? 0 : 1;
  } finally {
    if (daemon && daemon.child.exitCode === null) await daemon.kill();
    await sink.stop();
    await tb.stop();
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`soak: done in ${((Date.now() - t0) / 60_000).toFixed(1)} min\n`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(2);
  },
);
