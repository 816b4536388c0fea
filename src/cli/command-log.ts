/** The logger of a command (pino, so only the commands that log import this module). */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createLogger } from '../shared/log.js';
import type { GlobalOpts } from './command-kit.js';

/** Logger for a command: the daemon logs to stdout; one-shot commands to stderr. */
export function loggerFor(cfg: Config | undefined, opts: GlobalOpts, destination: 1 | 2, level?: string): Logger {
  const tty = destination === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  return createLogger({ level: level ?? cfg?.log.level ?? 'info', pretty: opts.pretty ?? Boolean(tty), destination });
}
