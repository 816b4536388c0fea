/**
 * `localpost start`: the daemon in the foreground. Its modules (listeners, SMTP delivery) load here only,
 * so the one-shot commands stay lean (main.ts imports this module when `start` runs).
 */
import { exposedSecretsWarning, legacyTlsWarning } from '../config/exposure.js';
import { Daemon } from '../daemon/daemon.js';
import { LockedError, lockHolder } from '../daemon/instance-lock.js';
import { listenErrorText, listenPortProblems } from '../daemon/listen-ports.js';
import { installSignals } from '../daemon/signals.js';
import { errorMessage } from '../shared/errors.js';
import { ensureDataDir } from '../shared/trust.js';
import { configOrExit, EXIT_CONFIG, EXIT_FAILURE, type GlobalOpts } from './command-kit.js';
import { loggerFor } from './command-log.js';

export async function cmdStart(opts: GlobalOpts): Promise<number> {
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
  const daemon = new Daemon(cfg, path, log);
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
