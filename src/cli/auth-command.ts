/**
 * `localpost auth <account>`: the OAuth sign-in (auth.ts), then telling a running daemon to use it now.
 */

import { ControlRequestError, ControlUnavailableError, control, controlRequest } from '../control/client.js';
import type { SignedInResponse } from '../daemon/control-api.js';
import { lockHolder } from '../daemon/instance-lock.js';
import { errorMessage } from '../shared/errors.js';
import { ensureDataDir } from '../shared/trust.js';
import { authorize } from './auth.js';
import { configOrExit, EXIT_CONFIG, EXIT_OK, type GlobalOpts } from './command-kit.js';
import { loggerFor } from './command-log.js';
import { progressPrinter } from './sync.js';

export async function cmdAuth(
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
