/**
 * smtp-server and nodemailer log through a bunyan-style logger: `logger.info(entry, 'printf
 * %s', arg)`. pino would drop the printf arguments (the protocol line itself) and duplicate
 * the `component` key, so this adapter formats the message, drops the library's own
 * `component`, and maps levels so that protocol transcripts appear only at `trace` (opt-in:
 * they are verbose).
 *
 * Invariant: no AUTH payload and no message content reaches the log. Both libraries already replace the argument of
 * `AUTH` and every continuation line of an AUTH exchange by `/* secured *\/`; every line is
 * also passed through `redactString` as a second guard.
 */
import { format } from 'node:util';
import type { Logger } from 'pino';
import { redactString } from './log.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
type LogFn = (entry?: unknown, message?: unknown, ...args: unknown[]) => void;

/** The levels the mail libraries call, each mapped onto ours. */
export interface BunyanLogger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
}

/** Their level → ours: their debug (the transcript) is our trace, their info our debug. */
const LEVELS: Record<keyof BunyanLogger, Level> = {
  trace: 'trace',
  debug: 'trace',
  info: 'debug',
  warn: 'warn',
  error: 'warn',
  fatal: 'error',
};

/** A logger to pass as smtp-server's or nodemailer's `logger` option. */
export function bunyanLogger(log: Logger): BunyanLogger {
  const make =
    (level: Level): LogFn =>
    (entry, message, ...args) => {
      if (!log.isLevelEnabled(level)) return;
      let fields: Record<string, unknown> = {};
      let text: string;
      if (entry && typeof entry === 'object' && !(entry instanceof Error)) {
        const { component: _component, ...rest } = entry as Record<string, unknown>;
        fields = rest;
        text = format(message ?? '', ...args);
      } else {
        text = format(entry ?? '', ...(message === undefined ? [] : [message]), ...args);
      }
      // nodemailer's debug transcript also holds the message itself: never log mail content.
      if (fields.tnx === 'message' && !text.startsWith('<')) return;
      if (fields.err instanceof Error) fields.err = fields.err.message;
      log[level](fields, redactString(text));
    };
  const out = {} as BunyanLogger;
  for (const [theirs, ours] of Object.entries(LEVELS) as Array<[keyof BunyanLogger, Level]>) out[theirs] = make(ours);
  return out;
}
