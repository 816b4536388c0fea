/**
 * The `localpost` command line; its command names are a user contract. Exit codes: 0 success, 1 a runtime
 * failure, 78 (EX_CONFIG) a missing or invalid config, so systemd's RestartPreventExitStatus=78
 * stops a restart loop.
 */

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError, errorMessage } from '../shared/errors.js';
import { configOrExit, EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, type GlobalOpts } from './command-kit.js';
import { addSetupCommands } from './setup-commands.js';

/** Files and directories created by the commands (the daemon's above all) are the user's alone. */
const PRIVATE_UMASK = 0o077;

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * Each command's module, imported only when that command runs: `--help`, `--version` and `status`
 * never load the daemon's dependencies (listeners, imapflow, nodemailer, the cache; docs/benchmarks.md).
 */
const commands = {
  start: () => import('./start-command.js'),
  sync: () => import('./sync-command.js'),
  auth: () => import('./auth-command.js'),
  check: () => import('./check.js'),
  status: () => import('./status.js'),
  outbox: () => import('./outbox.js'),
  journal: () => import('./journal.js'),
  demo: () => import('./demo.js'),
};

async function cmdCheck(opts: GlobalOpts): Promise<number> {
  const { cfg, path } = await configOrExit(opts);
  const { runCheck } = await commands.check();
  return runCheck(cfg, path, process.stdout);
}

async function cmdStatus(o: { json?: boolean }, opts: GlobalOpts): Promise<number> {
  const { cfg } = await configOrExit(opts);
  const { currentStatus, formatStatus } = await commands.status();
  const report = await currentStatus(cfg);
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
  return EXIT_OK;
}

/** `outbox` and `journal`: the list needs no logger; the changes log warnings to stderr. */
async function cmdQueue(which: 'outbox' | 'journal', action: string, id: string | undefined, opts: GlobalOpts) {
  const { cfg } = await configOrExit(opts);
  const logger = async () =>
    (await import('./command-log.js')).loggerFor(cfg, opts, 2, cfg.log.level === 'info' ? 'warn' : cfg.log.level);
  if (which === 'journal') return (await commands.journal()).journalCommand(cfg, logger, action, id);
  return (await commands.outbox()).outboxCommand(cfg, logger, action, id);
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
    .action(run(async () => (await commands.start()).cmdStart(program.opts())));
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
        (await commands.auth()).cmdAuth(account, o, program.opts()),
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
    .action(run(async (action: string, id: string | undefined) => cmdQueue('outbox', action, id, program.opts())));
  program
    .command('journal')
    .argument('[action]', 'list | retry | drop', 'list')
    .argument('[id]', 'entry number (retry, drop)')
    .description(
      'show local IMAP changes not yet carried upstream, queue a failed one again (retry), or never carry one (drop)',
    )
    .action(run(async (action: string, id: string | undefined) => cmdQueue('journal', action, id, program.opts())));
  program
    .command('sync')
    .argument('[account...]', 'accounts to pull (default: all)')
    .description(
      'pull now, through the running daemon or in-process; a progress bar on a terminal, one summary line otherwise',
    )
    .action(run(async (accounts: string[]) => (await commands.sync()).cmdSync(accounts ?? [], program.opts())));
  program
    .command('demo')
    .option('--pop3-port <port>', 'local POP3 port (default 1110, or a free one when taken)')
    .option('--smtp-port <port>', 'local SMTP port (default 1025, or a free one when taken)')
    .description('try localpost without an account: a throwaway upstream with sample mail, in a temporary directory')
    .action(
      run(async (o: { pop3Port?: string; smtpPort?: string }) => {
        const { runDemo } = await commands.demo();
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
