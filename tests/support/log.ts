/** A pino logger for tests whose JSON lines are collected, to be read back as objects or messages. */
import { Writable } from 'node:stream';
import { pino } from 'pino';

export interface CapturedLog {
  log: pino.Logger;
  /** Every line so far, parsed. */
  lines(): Array<Record<string, unknown>>;
  /** The `msg` of every line so far. */
  msgs(): string[];
}

/** A logger at `level` whose lines are collected. */
export function capturedLog(level: pino.LevelWithSilent = 'debug'): CapturedLog {
  const out: string[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(c.toString());
      cb();
    },
  });
  const lines = () =>
    out
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log: pino({ level }, sink), lines, msgs: () => lines().map((l) => l.msg as string) };
}
