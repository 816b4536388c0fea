/**
 * `localpost demo`: localpost working in one command, with no account (README "Try it now").
 *
 * It makes a temporary directory, starts a throwaway upstream there (demo-upstream.ts: our POP3
 * server with sample mail, smtp-server delivering back into the same mailbox), writes a config
 * pointing one account `demo` at it, and runs the real daemon on that config — the same code as
 * `localpost start`, control socket included, so `localpost --config <printed path> status`
 * works beside it. The local listeners use the usual ports (POP3 1110, SMTP 1025) when they are
 * free, else free ones; `--pop3-port` / `--smtp-port` choose (0: any free port); the config file
 * then names the ports bound, for `client-setup`. Then it prints
 * what to type into a mail client and runs until SIGINT/SIGTERM, when it stops the daemon and the
 * upstream and removes the directory. Exit code: 0 after a clean stop, 1 if it could not start.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Daemon } from '../daemon/daemon.js';
import { installSignals } from '../daemon/signals.js';
import { errorMessage } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { DEMO_EMAIL, DEMO_USER, type DemoUpstream, startDemoUpstream } from './demo-upstream.js';

/** Options of `runDemo` (the command's flags). */
export interface DemoOptions {
  pop3Port?: string;
  smtpPort?: string;
  pretty?: boolean;
}

/** True when nothing listens on 127.0.0.1:port yet. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The port to configure: the flag's, else `preferred` when free, else 0 (any free port). */
async function choosePort(flag: string | undefined, preferred: number): Promise<number> {
  if (flag !== undefined) {
    const n = Number(flag);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port number: ${flag}`);
    return n;
  }
  return (await portFree(preferred)) ? preferred : 0;
}

/** The demo's config file. */
function demoConfig(dir: string, up: DemoUpstream, pop3Port: number, smtpPort: number): string {
  return `${[
    '# localpost demo: a throwaway config, removed when the demo stops.',
    `dataDir: ${JSON.stringify(path.join(dir, 'data'))}`,
    'log: { level: warn }',
    'listen:',
    `  pop3: { port: ${pop3Port}, hosts: ["127.0.0.1", "::1"] }`,
    `  smtp: { port: ${smtpPort}, hosts: ["127.0.0.1", "::1"] }`,
    '  imap: { enabled: false } # the demo shows POP3 and SMTP; its upstream is a POP3 server',
    'outbox: { retry: { initial: 10s, max: 1m } }',
    'accounts:',
    `  - id: ${DEMO_USER}`,
    `    email: ${DEMO_EMAIL}`,
    `    login: { username: ${DEMO_USER}, password: ${DEMO_USER} }`,
    `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${up.pop3Port}, tls: none, username: ${DEMO_USER}, password: ${DEMO_USER},`,
    '                schedule: "* * * * *", syncOnLogin: 5s }',
    `    outgoing: { host: 127.0.0.1, port: ${up.smtpPort}, tls: none, username: ${DEMO_USER}, password: ${DEMO_USER} }`,
  ].join('\n')}\n`;
}

/** What to type into a mail client. */
function instructions(dir: string, configFile: string, pop3: number, smtp: number, samples: number): string {
  return `${[
    `localpost demo is running (everything in ${dir}, removed when it stops).`,
    '',
    'Point a mail client at it (no SSL/TLS, no SPA/"secure password authentication"):',
    `  incoming mail (POP3)   server localhost   port ${pop3}   user ${DEMO_USER}   password ${DEMO_USER}`,
    `  outgoing mail (SMTP)   server localhost   port ${smtp}   user ${DEMO_USER}   password ${DEMO_USER}   (authentication on)`,
    `  your address           ${DEMO_EMAIL}`,
    '',
    `${samples} sample messages are waiting. Mail you send is delivered back into the demo mailbox and`,
    'arrives at the next pull (every minute, or when your client logs in).',
    '',
    'Or from a shell:',
    `  python3 -c "import poplib; p = poplib.POP3('localhost', ${pop3}); p.user('${DEMO_USER}'); p.pass_('${DEMO_USER}'); print(p.stat())"`,
    `  ./bin/localpost --config ${configFile} status`,
    '',
    "Settings for a mail client, with this demo's ports (fetchmail, msmtp, mutt: the whole config file,",
    `in which the password to fill in is ${DEMO_USER}):`,
    `  ./bin/localpost --config ${configFile} client-setup fetchmail   (or msmtp, mutt, thunderbird, outlook-express ...)`,
    '',
    'Press Ctrl-C to stop.',
  ].join('\n')}\n`;
}

/** Run the demo until a signal; resolves with the exit code. */
export async function runDemo(o: DemoOptions = {}): Promise<number> {
  const log = createLogger({ level: 'warn', pretty: o.pretty ?? Boolean(process.stderr.isTTY), destination: 2 });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'localpost-demo-'));
  let upstream: DemoUpstream | undefined;
  let daemon: Daemon | undefined;
  try {
    const [pop3Port, smtpPort] = [await choosePort(o.pop3Port, 1110), await choosePort(o.smtpPort, 1025)];
    upstream = await startDemoUpstream(path.join(dir, 'upstream'), log.child({ component: 'demo-upstream' }));
    const configFile = path.join(dir, 'config.yaml');
    await writeFile(configFile, demoConfig(dir, upstream, pop3Port, smtpPort), { mode: 0o600 });
    const { Daemon } = await import('../daemon/daemon.js');
    daemon = new Daemon(await loadConfig(configFile), configFile, log);
    await daemon.start();
    const pop3 = daemon.pop3Server()?.port ?? pop3Port;
    const smtp = daemon.outgoing.smtp?.port ?? smtpPort;
    // the ports actually bound, so that `client-setup` on this config prints them
    if (pop3 !== pop3Port || smtp !== smtpPort)
      await writeFile(configFile, demoConfig(dir, upstream, pop3, smtp), { mode: 0o600 });
    process.stdout.write(instructions(dir, configFile, pop3, smtp, upstream.samples));
  } catch (err) {
    process.stderr.write(`localpost demo: could not start: ${errorMessage(err)}\n`);
    await daemon?.stop().catch(() => undefined);
    await upstream?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    return 1;
  }
  const code = await installSignals(daemon, log);
  await upstream
    .stop()
    .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'demo upstream did not stop cleanly'));
  await rm(dir, { recursive: true, force: true });
  process.stdout.write(`localpost demo stopped; removed ${dir}\n`);
  return code;
}
