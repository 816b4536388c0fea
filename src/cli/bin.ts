/**
 * Process entry point: `bin/localpost` runs the compiled copy of this file.
 *
 * libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) runs every file
 * operation; a pull keeps up to 16 messages finishing at once (upstream/batch.ts), each blocked
 * in an fsync for most of that time, so 4 threads would serialise them. The size is read at the
 * pool's first use, so it is set here, before anything is imported (main.js is imported
 * dynamically below), and only when the user did not choose one.
 *
 * Under launchd (the plist sets LOCALPOST_LAUNCHD=1) a configuration error exits 0 instead of
 * 78: KeepAlive { SuccessfulExit = false } restarts after every other status, and launchd has no
 * RestartPreventExitStatus=, so 78 would restart every ThrottleInterval until someone fixes the file.
 */
import { THREADPOOL_SIZE } from '../upstream/batch.js';

process.env.UV_THREADPOOL_SIZE ??= process.env.LP_POOL ?? String(THREADPOOL_SIZE);

const { EX_CONFIG, LAUNCHD_ENV } = await import('./service-units.js');
if (process.env[LAUNCHD_ENV] === '1') {
  process.on('exit', (code) => {
    if (code !== EX_CONFIG) return;
    process.stderr.write(
      'localpost: configuration error (exit status 78); exiting 0 so that launchd does not restart it. ' +
        'Fix the config, then run `launchctl kickstart gui/$(id -u)/com.localpost`.\n',
    );
    process.exitCode = 0;
  });
}

const { main } = await import('./main.js');
await main();
