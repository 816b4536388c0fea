/**
 * Signals of the foreground daemon: SIGTERM/SIGINT stop it gracefully (a second one exits at
 * once), SIGHUP reloads the config. Resolves with the exit code once the daemon has stopped.
 * Installed before the daemon starts (`started` is its start), so a signal during start-up is
 * never met by the default action, which would kill the process without a clean stop; the stop
 * then waits for the start to settle.
 */
import type { Logger } from 'pino';
import type { Daemon } from './daemon.js';

/** Wire the signals; the promise settles with the process exit code. */
export function installSignals(
  daemon: Daemon,
  log: Logger,
  started: Promise<unknown> = Promise.resolve(),
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onStop = (sig: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal: sig }, 'second signal: exiting at once');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      started
        .catch(() => undefined)
        .then(() => daemon.stop())
        .then(
          () => resolve(0),
          (err) => {
            log.error({ err: (err as Error).message }, 'error while stopping');
            resolve(1);
          },
        )
        .finally(() => {
          process.off('SIGHUP', onHup);
        });
    };
    const onHup = () => {
      void started.then(() => (stopping ? undefined : daemon.reload())).catch(() => undefined);
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onHup);
  });
}
