/**
 * Signals of the foreground daemon: SIGTERM/SIGINT stop it gracefully (a second one exits at
 * once), SIGHUP reloads the config. Resolves with the exit code once the daemon has stopped.
 */
import type { Logger } from 'pino';
import type { Daemon } from './daemon.js';

/** Wire the signals; the promise settles with the process exit code. */
export function installSignals(daemon: Daemon, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onStop = (sig: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal: sig }, 'second signal: exiting at once');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      daemon
        .stop()
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
      void daemon.reload();
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onHup);
  });
}
