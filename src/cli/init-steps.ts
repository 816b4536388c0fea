/**
 * How `localpost init` asks: a question (`Step`) is answered by its flag when given, else on the
 * terminal (with the default offered), else by its default, else the run fails naming the
 * missing flag. A wrong answer on the terminal is asked again; a wrong flag is an InitError.
 */
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';

/** A wrong or missing flag; the run exits 1 with this message. */
export class InitError extends Error {}

/** Asks questions; absent in non-interactive runs. */
export interface Asker {
  text(prompt: string, def?: string): Promise<string>;
  hidden(prompt: string): Promise<string>;
  say(text: string): void;
  close(): void;
}

/** A question answered by a flag, the terminal or a default. `parse` returns the value or an error message. */
interface Step<T> {
  flag: string;
  given: string | undefined;
  prompt: string;
  def?: string;
  /** A default offered on the terminal only (a guess the user should confirm). */
  suggest?: string;
  parse: (s: string) => T | { error: string };
}

export const isError = (v: unknown): v is { error: string } => typeof v === 'object' && v !== null && 'error' in v;

export async function step<T>(ask: Asker | undefined, s: Step<T>): Promise<T> {
  if (s.given !== undefined) {
    const v = s.parse(s.given.trim());
    if (isError(v)) throw new InitError(`${s.flag}: ${v.error}`);
    return v;
  }
  if (!ask) {
    if (s.def === undefined)
      throw new InitError(`${s.flag} is required without a terminal (or see \`localpost init --help\`)`);
    const v = s.parse(s.def);
    if (isError(v)) throw new InitError(`${s.flag}: ${v.error}`);
    return v;
  }
  for (;;) {
    const v = s.parse(await ask.text(s.prompt, s.def ?? s.suggest));
    if (!isError(v)) return v;
    ask.say(`  ${v.error}`);
  }
}

export const oneOf =
  <T extends string>(values: readonly T[]) =>
  (s: string): T | { error: string } =>
    (values as readonly string[]).includes(s.toLowerCase())
      ? (s.toLowerCase() as T)
      : { error: `expected one of ${values.join(', ')}` };
export const portNumber = (s: string): number | { error: string } =>
  /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : { error: 'expected a port number, 1 to 65535' };
export const nonEmpty = (s: string): string | { error: string } => (s ? s : { error: 'must not be empty' });

/** Questions on a terminal through node:readline/promises; input is hidden while `hidden()` reads. */
export function terminalAsker(io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream }): Asker {
  const ac = new AbortController();
  let muted = false;
  const out = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) io.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: io.stdin, output: out, terminal: true });
  rl.on('SIGINT', () => rl.close());
  rl.on('close', () => ac.abort());
  return {
    text: async (prompt, def) =>
      (await rl.question(`${prompt}${def ? ` [${def}]` : ''}: `, { signal: ac.signal })).trim() || def || '',
    hidden: async (prompt) => {
      io.stdout.write(`${prompt}: `);
      muted = true;
      try {
        return await rl.question('', { signal: ac.signal });
      } finally {
        muted = false;
        io.stdout.write('\n');
      }
    },
    say: (text) => {
      io.stdout.write(`${text}\n`);
    },
    close: () => rl.close(),
  };
}
