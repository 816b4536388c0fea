/**
 * The `localpost` command line; its command names are a user contract. Exit codes: 0 success, 1 a runtime
 * failure, 78 (EX_CONFIG) a missing or invalid config, so systemd's RestartPreventExitStatus=78
 * stops a restart loop.
 */

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { Cache } from '../cache/cache.js';
import { exposedSecretsWarning, legacyTlsWarning } from '../config/exposure.js';
import { configPath, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ControlRequestError, ControlUnavailableError, control, controlRequest } from '../control/client.js';
import { cacheAccounts } from '../daemon/accounts.js';
import type { SignedInResponse } from '../daemon/control-api.js';
import type { Daemon as DaemonType } from '../daemon/daemon.js';
import { acquireLock, type InstanceLock, LockedError, lockHolder } from '../daemon/instance-lock.js';
import { listenErrorText, listenPortProblems } from '../daemon/listen-ports.js';
import { SyncService } from '../daemon/sync.js';
import { ConfigError, errorMessage } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { ensureDataDir } from '../shared/trust.js';
import { addSetupCommands } from './setup-commands.js';
import { currentStatus, formatStatus } from './status.js';
import { formatSyncSummary, progressPrinter, syncThroughDaemon } from './sync.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_CONFIG = 78;
/** Files and directories created by the commands (the daemon's above all) are the user's alone. */
const PRIVATE_UMASK = 0o077;

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

interface GlobalOpts {
  config?: string;
  pretty?: boolean;
}

/** Load the config or exit 78 with every problem listed. */
async function configOrExit(opts: GlobalOpts): Promise<{ cfg: Config; path: string }> {
  const path = configPath(opts.config);
  try {
    return { cfg: await loadConfig(path), path };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`localpost: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/** Logger for a command: the daemon logs to stdout; one-shot commands to stderr. */
function loggerFor(cfg: Config | undefined, opts: GlobalOpts, destination: 1 | 2, level?: string): Logger {
  const tty = destination === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  return createLogger({ level: level ?? cfg?.log.level ?? 'info', pretty: opts.pretty ?? Boolean(tty), destination });
}

async function cmdStart(opts: GlobalOpts): Promise<number> {
  const { cfg, path } = await configOrExit(opts);
  const log = loggerFor(cfg, opts, 1);
  const exposed = await exposedSecretsWarning(path, cfg);
  if (exposed) log.warn({ file: path }, exposed);
  const legacyTls = legacyTlsWarning(cfg);
  if (legacyTls) log.warn(legacyTls);
  await ensureDataDir(cfg.dataDir, log); // a refusal exits 78 before any file in it is opened
  // a listener port taken is a configuration problem, told in one line before anything starts
  // (with a daemon of this data directory running, the lock below says so instead)
  if ((await lockHolder(cfg.dataDir)) === undefined) {
    const problems = await listenPortProblems(cfg);
    for (const p of problems) process.stderr.write(`localpost: ${p}\n`);
    if (problems.length) return EXIT_CONFIG;
  }
  // the daemon's modules (listeners, SMTP delivery) load only for `start`, keeping one-shot
  // commands such as `sync` lean
  const { Daemon } = await import('../daemon/daemon.js');
  const { installSignals } = await import('../daemon/signals.js');
  const daemon: DaemonType = new Daemon(cfg, path, log);
  const starting = daemon.start();
  const stopped = installSignals(daemon, log, starting);
  try {
    await starting;
  } catch (err) {
    if (err instanceof LockedError) {
      process.stderr.write(`localpost: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    const listen = await listenErrorText(err, cfg); // a program quicker than the check above
    if (listen) {
      process.stderr.write(`localpost: ${listen}\n`);
      return EXIT_CONFIG;
    }
    log.fatal({ err: errorMessage(err) }, 'localpost could not start');
    return EXIT_FAILURE;
  }
  return stopped;
}

async function cmdSync(accounts: string[], opts: GlobalOpts): Promise<number> {
  const { cfg } = await configOrExit(opts);
  const unknown = accounts.filter((a) => !cfg.accounts.some((c) => c.id === a));
  if (unknown.length) {
    process.stderr.write(
      `localpost: no such account: ${unknown.join(', ')} (configured: ${cfg.accounts.map((a) => a.id).join(', ')})\n`,
    );
    return EXIT_FAILURE;
  }
  const log = loggerFor(cfg, opts, 2, cfg.log.level === 'info' ? 'warn' : cfg.log.level);
  await ensureDataDir(cfg.dataDir, log);
  let lock: InstanceLock;
  try {
    lock = await acquireLock(cfg.dataDir);
  } catch (err) {
    if (err instanceof LockedError) return syncThroughDaemon(cfg.dataDir, accounts, err.pid);
    throw err;
  }
  const progress = progressPrinter(Boolean(process.stderr.isTTY));
  const cache = await Cache.open({
    dataDir: cfg.dataDir,
    accounts: cacheAccounts(cfg.accounts),
    log: log.child({ component: 'cache' }),
  });
  const ids = accounts.length ? accounts : cfg.accounts.map((a) => a.id);
  const service = new SyncService({ accounts: cfg.accounts, cache, log, onProgress: (a, p) => progress.update(a, p) });
  const onSignal = () => {
    void service.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = Date.now();
  try {
    const records = await service.syncAll(ids);
    progress.end();
    const outcomes = records.map((r) => ({
      ...r,
      deletedUpstream: r.result === 'ok' ? service.state(r.account)?.lastResult?.deletedUpstream : undefined,
    }));
    process.stdout.write(`${formatSyncSummary(outcomes, Date.now() - t0)}\n`);
    return records.every((r) => r.result === 'ok') ? EXIT_OK : EXIT_FAILURE;
  } finally {
    cache.close();
    await lock.release();
  }
}

async function cmdCheck(opts: GlobalOpts): Promise<number> {
  const { cfg, path } = await configOrExit(opts);
  const { runCheck } = await import('./check.js');
  return runCheck(cfg, path, process.stdout);
}

async function cmdAuth(
  account: string,
  o: { browser?: boolean; device?: boolean; open?: boolean },
  opts: GlobalOpts,
): Promise<number> {
  const { cfg, path } = await configOrExit(opts);
  const acc = cfg.accounts.find((a) => a.id === account);
  if (!acc) {
    // as for an account without OAuth (authorize's ConfigError): the config does not allow it
    process.stderr.write(
      `localpost: no such account: ${account} (configured: ${cfg.accounts.map((a) => a.id).join(', ')}) in ${path}\n`,
    );
    return EXIT_CONFIG;
  }
  const { authorize } = await import('./auth.js');
  await ensureDataDir(cfg.dataDir, loggerFor(cfg, opts, 2));
  const r = await authorize(acc, {
    dataDir: cfg.dataDir,
    method: o.browser ? 'browser' : o.device ? 'device' : undefined,
    openBrowser: o.open,
    print: (line) => process.stdout.write(`${line}\n`),
  });
  const saved = `signed in: account ${account}; tokens saved in ${r.file} (key: ${r.keySource === 'file' ? 'key file beside it' : `keyring, ${r.keySource}`}).`;
  const pid = await lockHolder(cfg.dataDir);
  if (!pid) {
    process.stdout.write(`${saved} A running daemon uses them at its next pull.\n`);
    return EXIT_OK;
  }
  process.stdout.write(`${saved}\n`);
  process.stdout.write(`${await tellDaemonSignedIn(cfg.dataDir, account, pid)}\n`);
  return EXIT_OK; // the sign-in is saved whatever the daemon answered
}

/**
 * After `auth`: tell the running daemon (pid `pid`) that `account` signed in, so IDLE starts
 * and the account is pulled now rather than at the next tick (`POST /accounts/:id/signed-in`).
 * Waits for that pull (with a progress bar on a terminal, as `sync` does); returns the line
 * to print. Never throws: the daemon not answering only means it uses the sign-in later.
 */
async function tellDaemonSignedIn(dataDir: string, account: string, pid: number): Promise<string> {
  const progress = progressPrinter(Boolean(process.stderr.isTTY));
  const poll = process.stderr.isTTY
    ? setInterval(() => {
        control.status(dataDir).then(
          (st) => {
            const a = st.accounts.find((x) => x.id === account);
            if (a?.pull) progress.update(account, a.pull);
          },
          () => undefined,
        );
      }, 250)
    : undefined;
  try {
    const res = await controlRequest<SignedInResponse>(
      dataDir,
      'POST',
      `/accounts/${encodeURIComponent(account)}/signed-in`,
      { timeoutMs: 0 },
    );
    const r = res.record;
    const idle = res.idle === 'connected' ? '; IDLE watches its INBOX' : res.idle ? `; IDLE: ${res.idle}` : '';
    if (r.result === 'ok')
      return `the running daemon pulled ${r.newMessages} new message${r.newMessages === 1 ? '' : 's'} for ${account}${idle}`;
    return `the running daemon could not pull ${account} (${r.result}${r.error ? `: ${r.error}` : ''})${idle}`;
  } catch (err) {
    if (err instanceof ControlUnavailableError)
      return `a daemon (pid ${pid}) is running but its control socket does not answer: it uses the sign-in at its next pull`;
    if (err instanceof ControlRequestError)
      return `the running daemon (pid ${pid}) did not pull ${account}: ${err.message}; it uses the sign-in at its next pull`;
    return `could not reach the running daemon (pid ${pid}): ${errorMessage(err)}; it uses the sign-in at its next pull`;
  } finally {
    clearInterval(poll);
    progress.end();
  }
}

async function cmdStatus(o: { json?: boolean }, opts: GlobalOpts): Promise<number> {
  const { cfg } = await configOrExit(opts);
  const report = await currentStatus(cfg);
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
  return EXIT_OK;
}

async function cmdOutbox(action: string, id: string | undefined, opts: GlobalOpts): Promise<number> {
  const { cfg } = await configOrExit(opts);
  const { outboxCommand } = await import('./outbox.js');
  return outboxCommand(cfg, loggerFor(cfg, opts, 2, cfg.log.level === 'info' ? 'warn' : cfg.log.level), action, id);
}

/** Build the commander program. */
function buildProgram(): Command {
  const program = new Command();
  program
    .name('localpost')
    .description('Local mail proxy: caches remote POP3/IMAP mail and serves it to any mail client on localhost')
    .version(pkg.version)
    .option('-c, --config <file>', 'config file (default $LOCALPOST_CONFIG or ~/.config/localpost/config.yaml)')
    .option('--pretty', 'human-readable log lines');
  // Everything the commands create is private to the user (docs/security.md); `service`
  // writes unit files and directories for systemd, which set their own modes.
  program.hook('preAction', (_, action) => {
    let top = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (top.name() !== 'service') process.umask(PRIVATE_UMASK);
  });
  const run =
    (fn: (...a: never[]) => Promise<number>) =>
    async (...args: unknown[]) => {
      const code = await (fn as (...a: unknown[]) => Promise<number>)(...args);
      process.exitCode = code;
    };
  program
    .command('start')
    .description('run the daemon in the foreground')
    .action(run(async () => cmdStart(program.opts())));
  program
    .command('check')
    .description('validate the config and try every upstream login')
    .action(run(async () => cmdCheck(program.opts())));
  program
    .command('auth')
    .argument('<account>', 'the account to sign in')
    .option('--browser', 'sign in through a browser on this machine (loopback redirect with PKCE)')
    .option('--device', 'sign in with a code typed on any device (device flow; the default except for Google)')
    .option('--no-open', 'print the browser address without opening it')
    .description('sign an OAuth account (Gmail, Microsoft 365) in once and save its refresh token, encrypted')
    .action(
      run(async (account: string, o: { browser?: boolean; device?: boolean; open?: boolean }) =>
        cmdAuth(account, o, program.opts()),
      ),
    );
  program
    .command('status')
    .option('--json', 'machine-readable output')
    .description('accounts (last pull, messages, bytes), the outbox (queued, next attempt, last error), listeners')
    .action(run(async (o: { json?: boolean }) => cmdStatus(o, program.opts())));
  program
    .command('outbox')
    .argument('[action]', 'list | retry | drop | flush', 'list')
    .argument('[id]', 'entry id (retry, drop)')
    .description(
      'show the outbox, queue a failed entry again (retry), delete one (drop), or send everything now (flush)',
    )
    .action(run(async (action: string, id: string | undefined) => cmdOutbox(action, id, program.opts())));
  program
    .command('sync')
    .argument('[account...]', 'accounts to pull (default: all)')
    .description(
      'pull now, through the running daemon or in-process; a progress bar on a terminal, one summary line otherwise',
    )
    .action(run(async (accounts: string[]) => cmdSync(accounts ?? [], program.opts())));
  program
    .command('demo')
    .option('--pop3-port <port>', 'local POP3 port (default 1110, or a free one when taken)')
    .option('--smtp-port <port>', 'local SMTP port (default 1025, or a free one when taken)')
    .description('try localpost without an account: a throwaway upstream with sample mail, in a temporary directory')
    .action(
      run(async (o: { pop3Port?: string; smtpPort?: string }) => {
        const { runDemo } = await import('./demo.js');
        return runDemo({ pop3Port: o.pop3Port, smtpPort: o.smtpPort, pretty: program.opts<GlobalOpts>().pretty });
      }),
    );
  addSetupCommands(program, run);
  return program;
}

/** Entry point of bin/localpost. */
export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.stderr.write(`localpost: ${errorMessage(err)}\n`);
    process.exitCode = err instanceof ConfigError ? EXIT_CONFIG : EXIT_FAILURE;
  }
}
