/**
 * The one logger. `createLogger` builds the pino root; components take
 * `log.child({ component })` and connections `log.child({ cid })`, always injected, never
 * imported as a singleton.
 *
 * Output: JSON lines (`level` as a label, ISO `time`, no pid/hostname: journald records those)
 * written synchronously to stdout, or human lines through pino-pretty when asked. pino-pretty
 * is a dev dependency, so it is loaded lazily and only then; without it the output stays JSON.
 *
 * Invariant: no password, token or AUTH payload is logged at any level. Objects are redacted by
 * key (`REDACT_PATHS`: the key itself, one and two levels deep, and the config's account
 * secrets); protocol transcript lines go through `redactString` before they are logged.
 */
import { createRequire } from 'node:module';
import { type DestinationStream, type LoggerOptions, pino } from 'pino';

/** The logger type passed around the daemon (pino's). */
export type Logger = pino.Logger;

/** Options for the root logger. */
export interface CreateLoggerOptions {
  /** trace | debug | info | warn | error | fatal | silent. */
  level: string;
  /** Human-readable lines via pino-pretty (falls back to JSON if it is not installed). */
  pretty?: boolean;
  /** A file descriptor (default 1, stdout), a file path, or a stream. */
  destination?: number | string | DestinationStream;
}

const SECRET_KEYS = [
  'password',
  'pass',
  'passwordHash',
  'accessToken',
  'token',
  'refreshToken',
  'secret',
  'authorization',
  'Authorization',
];

/** Every key path pino censors: secret keys at the top, one and two levels deep, and in configs. */
const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  ...['accounts[*]', '*.accounts[*]'].flatMap((a) => [
    `${a}.login.password`,
    `${a}.login.passwordHash`,
    `${a}.incoming.password`,
    `${a}.outgoing.password`,
  ]),
];

/** The replacement for a redacted value. */
const CENSOR = '[redacted]';

/** Creates the root logger; see the module comment for the output format and redaction. */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const base: LoggerOptions = {
    level: opts.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: CENSOR },
  };
  const dest = opts.destination ?? 1;
  if (opts.pretty) {
    const pretty = loadPretty();
    if (pretty) {
      const colorize = (dest === 1 && process.stdout.isTTY) || (dest === 2 && process.stderr.isTTY);
      return pino(base, pretty({ destination: dest, sync: true, translateTime: 'SYS:standard', colorize }));
    }
  }
  const json: LoggerOptions = { ...base, formatters: { level: (label) => ({ level: label }) } };
  if (typeof dest === 'object') return pino(json, dest);
  return pino(json, pino.destination({ dest, sync: true, mkdir: typeof dest === 'string' }));
}

type PrettyFactory = (opts: Record<string, unknown>) => DestinationStream;

/** pino-pretty's stream factory, or undefined when the package is not installed. */
function loadPretty(): PrettyFactory | undefined {
  try {
    const mod = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    return typeof mod === 'function' ? mod : mod.default;
  } catch {
    return undefined;
  }
}

const REPLY_CODE = /^\s*(?:S:\s*)?\d{3}[ -]/;
const MASKS: Array<[RegExp, string]> = [
  // POP3 PASS (RFC 1939 §7) and APOP's digest.
  [/(^|\s)(PASS)\s+\S.*$/i, `$1$2 ${CENSOR}`],
  [/(^|\s)(APOP\s+\S+)\s+\S+/i, `$1$2 ${CENSOR}`],
  // SMTP AUTH / POP3 AUTH / IMAP AUTHENTICATE with an initial response (RFC 4954, 5034, 3501).
  [/(^|\s)(AUTH(?:ENTICATE)?\s+[A-Za-z0-9_-]+)\s+\S.*$/i, `$1$2 ${CENSOR}`],
  // IMAP LOGIN user password (RFC 3501 §6.2.3).
  [/^(\s*(?:C:\s*)?\S+\s+LOGIN\s+(?:"(?:[^"\\]|\\.)*"|\S+))\s+\S.*$/i, `$1 ${CENSOR}`],
];

/**
 * Masks credentials in one protocol transcript line: `PASS x` → `PASS [redacted]`,
 * `AUTH PLAIN <b64>` → `AUTH PLAIN [redacted]`, `APOP user <digest>`, `a1 LOGIN user pass`.
 * Server replies (`250-AUTH PLAIN LOGIN`) are left alone. A line cannot tell that it is a bare
 * base64 continuation after `AUTH LOGIN` / `334` / `+`: the caller, which knows the SASL
 * exchange is in progress, must mask those lines itself (log `[redacted]` instead).
 */
export function redactString(line: string): string {
  if (REPLY_CODE.test(line)) return line;
  let out = line;
  for (const [re, replacement] of MASKS) out = out.replace(re, replacement);
  return out;
}

/** Logs an error that would otherwise vanish (a failed close, a rejected cleanup), then moves on. */
export function check(log: Logger, err: unknown, msg: string): void {
  if (err) log.error({ err }, msg);
}
