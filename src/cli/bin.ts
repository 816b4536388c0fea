/**
 * Process entry point: `bin/localpost` runs the compiled copy of this file.
 *
 * Under launchd (the plist sets LOCALPOST_LAUNCHD=1) a configuration error exits 0 instead of
 * 78: KeepAlive { SuccessfulExit = false } restarts after every other status, and launchd has no
 * RestartPreventExitStatus=, so 78 would restart every ThrottleInterval until someone fixes the file.
 */
import { main } from './main.js';
import { EX_CONFIG, LAUNCHD_ENV } from './service-units.js';

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

await main();
