/**
 * The set-up commands of the CLI: `init`, `service install|uninstall|status`, `client-setup`, `cert` and `hash-password`
 * (names users and scripts rely on), registered on the commander program by main.ts. Each action resolves with an
 * exit code: 0 done, 1 a wrong argument or a refused action, 78 an invalid existing config.
 */

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../shared/errors.js';
import { forPop3 } from './client-imap.js';
import { forAccount, loadSetupInfo, setupInfo } from './client-info.js';
import { CLIENT_NAMES, clientListText, clientSetupText } from './client-setup.js';
import type { InitIo } from './init.js';
import type { InitFlags } from './init-answers.js';
import { PROVIDERS } from './providers.js';

/** The heavier commands' modules, imported only when that command runs (as main.ts's `commands`). */
const modules = {
  config: () => import('../config/load.js'),
  init: () => import('./init.js'),
  serviceInstall: () => import('./service-install.js'),
  serviceManage: () => import('./service-manage.js'),
  cert: () => import('./cert.js'),
  hashPassword: () => Promise.all([import('../listeners/local-auth.js'), import('./init-steps.js')]),
};

/** The help text listing flags by purpose (appended to commander's). */
const INIT_HELP = `
Without flags on a terminal, init asks. With --non-interactive (or no terminal), flags answer
and defaults fill the rest; --email is required, and --provider generic also needs --host and
--smtp-host (or --no-smtp to only receive). The account id (--id) defaults to the provider's
name, or with generic to the name in the address's domain (posteo for me@posteo.de).

Examples:
  localpost init --provider gmail --email me@gmail.com --password-env GMAIL_PW
  localpost init --email me@fastmail.com --password-command "pass show mail/fastmail"
  localpost init --email me@outlook.com --client-id 00000000-aaaa-bbbb-cccc-000000000000
  localpost init --provider gmail --email me@gmail.com --auth oauth --client-id ID --client-secret SECRET
  localpost init --provider generic --email me@example.org --host mail.example.org \\
      --protocol pop3 --smtp-host mail.example.org --password-file ~/.mailpw --local-password s3cret

Providers: ${PROVIDERS.map((p) => p.name).join(', ')}.
The config path is --config, else $LOCALPOST_CONFIG, else ~/.config/localpost/config.yaml.
An existing file is never replaced. The upstream password is referenced (--password-env,
--password-command, --password-file; default: $LOCALPOST_<ID>_PASSWORD), never taken from a flag.
OAuth 2.0 (Microsoft always, Gmail with --auth oauth) needs --client-id (Google: --client-secret
too; Microsoft 365: --tenant, default the address's domain); then run \`localpost auth ID\` once.
`;

/** Wraps an action so its resolved number becomes the exit code (main.ts's `run`). */
export type RunAction = (fn: (...a: never[]) => Promise<number>) => (...args: unknown[]) => Promise<void>;

async function cmdClientSetup(
  client: string | undefined,
  account: string | undefined,
  configFlag: string | undefined,
  pop3 = false,
): Promise<number> {
  if (!client) {
    process.stdout.write(clientListText());
    return 0;
  }
  const name = client.toLowerCase();
  if (!CLIENT_NAMES.includes(name)) {
    process.stderr.write(`localpost client-setup: unknown client "${client}"; known: ${CLIENT_NAMES.join(', ')}\n`);
    return 1;
  }
  const { configPath, loadConfig } = await modules.config();
  const file = configPath(configFlag);
  let info = setupInfo();
  if (existsSync(file)) {
    try {
      info = await loadSetupInfo(await loadConfig(file));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`localpost: ${err.message}\n`);
      return 78;
    }
  }
  if (account !== undefined) {
    const one = info.configured ? forAccount(info, account) : undefined;
    if (!one) {
      const ids = info.configured ? `configured: ${info.accounts.map((a) => a.id).join(', ')}` : 'no config file yet';
      process.stderr.write(`localpost client-setup: no such account: ${account} (${ids})\n`);
      return 1;
    }
    info = one;
  }
  process.stdout.write(clientSetupText(name, pop3 ? forPop3(info) : info));
  return 0;
}

/** The first line of a stream (without its line end), for a password piped in. */
async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += String(chunk);
    if (text.includes('\n') || text.length > 4096) break;
  }
  const [line = ''] = text.split(/\r?\n/);
  return line;
}

/**
 * `hash-password`: prints a `login.passwordHash` (scrypt) for a local password, so a config
 * never has to hold the password itself. On a terminal it asks twice with the input hidden
 * (the prompts go to stderr, so `> file` captures only the hash); otherwise it reads the first
 * line of stdin.
 */
async function cmdHashPassword(io: Omit<InitIo, 'configFile'>): Promise<number> {
  const [{ hashPassword }, { terminalAsker }] = await modules.hashPassword();
  let password: string;
  if (io.stdin.isTTY) {
    const ask = terminalAsker({ stdin: io.stdin, stdout: io.stderr });
    try {
      password = await ask.hidden('Local password (what the mail client will type)');
      if (password && (await ask.hidden('The same again')) !== password) {
        io.stderr.write('localpost hash-password: the two passwords differ; nothing printed\n');
        return 1;
      }
    } finally {
      ask.close();
    }
  } else {
    password = await firstLine(io.stdin);
  }
  if (!password) {
    io.stderr.write('localpost hash-password: an empty password; nothing printed\n');
    return 1;
  }
  io.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

/** Adds `init`, `service install|uninstall|status`, `client-setup`, `cert` and `hash-password` to the program. */
export function addSetupCommands(program: Command, run: RunAction): void {
  const globalConfig = () => (program.opts() as { config?: string }).config;

  program
    .command('init')
    .description('write a starter config (questions on a terminal, or flags) with provider presets')
    .option(
      '--provider <name>',
      'gmail, outlook, microsoft365, yahoo, icloud, fastmail, gmx, zoho or generic (default: from the address); generic also needs --host and --smtp-host (or --no-smtp)',
    )
    .option('--email <address>', "the account's email address")
    .option('--protocol <protocol>', "pull with imap or pop3 (default: the preset's, imap)")
    .option('--host <host>', 'incoming server (required with --provider generic)')
    .option('--port <port>', 'incoming port (default from protocol and --tls)')
    .option('--tls <mode>', 'incoming security: implicit, starttls or none')
    .option('--username <name>', 'login at the provider (default: the address)')
    .option('--gmail-recent', 'Gmail POP3: log in as recent:ADDRESS (the last 30 days, whatever was downloaded)')
    .option('--smtp-host <host>', 'outgoing server (required with --provider generic, unless --no-smtp)')
    .option('--smtp-port <port>', 'outgoing port (default from --smtp-tls: 465 or 587)')
    .option('--smtp-tls <mode>', 'outgoing security: implicit, starttls or none')
    .option('--no-smtp', 'receive only: no outgoing server')
    .option('--password-env <VAR>', 'read the provider password from this environment variable')
    .option('--password-command <cmd>', 'read it from the first line this command prints (pass, secret-tool ...)')
    .option('--password-file <path>', 'read it from this file')
    .option('--auth <method>', 'Gmail: app-password (default) or oauth; Outlook.com and Microsoft 365: oauth only')
    .option('--client-id <id>', 'OAuth 2.0: the client (application) id you registered (see the README)')
    .option('--client-secret <secret>', 'OAuth 2.0, Google: the client secret of that client id (stored in the config)')
    .option(
      '--tenant <tenant>',
      "OAuth 2.0, Microsoft: directory (tenant) id or domain (default: consumers for Outlook.com, the address's domain for 365)",
    )
    .option(
      '--id <id>',
      "account id, names its folder (default: the provider's name; with generic, the name in the address's domain)",
    )
    .option('--local-user <name>', 'user name your mail client types (default: the id)')
    .option('--local-password <password>', 'password your mail client types (default: generated and printed)')
    .option('--data-dir <dir>', 'where cached mail lives (default ~/.local/share/localpost)')
    .option('--non-interactive', 'never ask, even on a terminal')
    .addHelpText('after', INIT_HELP)
    .action(
      run(async (flags: InitFlags & { nonInteractive?: boolean }) => {
        const [{ runInit }, { configPath }] = await Promise.all([modules.init(), modules.config()]);
        return runInit(
          { ...flags, interactive: !flags.nonInteractive },
          {
            configFile: configPath(globalConfig()),
            stdin: process.stdin,
            stdout: process.stdout,
            stderr: process.stderr,
          },
        );
      }),
    );

  const service = program.command('service').description('run localpost as a service (systemd or launchd)');
  service
    .command('install')
    .description('write and enable a systemd unit (Linux) or a launchd agent (macOS) for this installation')
    .option('--user', 'Linux: a `systemctl --user` service instead of a system service')
    .option('--dry-run', 'print the files and commands; change nothing')
    .action(
      run(async (flags: { user?: boolean; dryRun?: boolean }) =>
        (await modules.serviceInstall()).runServiceInstall({ ...flags, config: globalConfig() }),
      ),
    );
  service
    .command('uninstall')
    .description('stop, disable and remove the service (config and mail stay); nothing to do when none is installed')
    .option('--user', 'Linux: the `systemctl --user` service instead of the system service')
    .option('--dry-run', 'print the files and commands; change nothing')
    .action(
      run(async (flags: { user?: boolean; dryRun?: boolean }) =>
        (await modules.serviceManage()).runServiceUninstall(flags),
      ),
    );
  service
    .command('status')
    .description('is the service installed, enabled, running, and which command does it run (exit 3: none installed)')
    .option('--user', 'Linux: only the `systemctl --user` service (default: the system and the user service)')
    .option('--dry-run', 'read the unit files only; print the systemctl/launchctl commands instead of running them')
    .action(
      run(async (flags: { user?: boolean; dryRun?: boolean }) =>
        (await modules.serviceManage()).runServiceStatus(flags),
      ),
    );

  program
    .command('client-setup')
    .argument('[client]', CLIENT_NAMES.join(' | '))
    .option('--account <id>', 'the account to set up, when the config has several')
    .option('--pop3', 'POP3 settings, for a client that would otherwise get IMAP')
    .description(
      'print what to type into a mail client, or the whole config file of fetchmail, msmtp or mutt (without CLIENT: the list)',
    )
    .action(
      run(async (client: string | undefined, o: { account?: string; pop3?: boolean }) =>
        cmdClientSetup(client, o.account, globalConfig(), o.pop3),
      ),
    );

  program
    .command('cert')
    .option('--renew', 'replace the certificate that exists')
    .description(
      'make a private certificate for localhost in the data directory, for POP3 STLS and SMTP STARTTLS (listen.*.tls: auto)',
    )
    .action(
      run(async (o: { renew?: boolean }) => {
        const [{ runCert }, { configPath, loadConfig }] = await Promise.all([modules.cert(), modules.config()]);
        const cfg = await loadConfig(configPath(globalConfig()));
        return runCert(cfg, o, { stdout: process.stdout, stderr: process.stderr });
      }),
    );

  program
    .command('hash-password')
    .description('print a login.passwordHash for a local password (asked on a terminal, else the first line of stdin)')
    .action(run(async () => cmdHashPassword({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })));
}
