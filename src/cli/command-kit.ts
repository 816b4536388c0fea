/**
 * What every command of main.ts shares: the global options, the exit codes and loading the config.
 * Kept free of the daemon's dependencies (no logger, no cache) and of the config schema until a command
 * loads the config: `--help` imports it.
 */
import type { Config } from '../config/schema.js';
import { ConfigError } from '../shared/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** A missing or invalid config: systemd's RestartPreventExitStatus=78 stops a restart loop. */
export const EXIT_CONFIG = 78;

export interface GlobalOpts {
  config?: string;
  pretty?: boolean;
}

/** Load the config or exit 78 with every problem listed. */
export async function configOrExit(opts: GlobalOpts): Promise<{ cfg: Config; path: string }> {
  const { configPath, loadConfig } = await import('../config/load.js'); // zod and yaml: not for `--help`
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
