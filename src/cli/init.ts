/**
 * `localpost init`: writes a starter config for one account, from a provider preset
 * (providers.ts) and either questions on a terminal or flags (`--non-interactive`, or whenever
 * stdin is not a terminal).
 *
 * Both modes run the same steps: a flag, when given, answers its question; otherwise the
 * terminal is asked (with the flag's default offered), or the default is taken, or the run
 * fails naming the missing flag. Microsoft presets sign in with OAuth 2.0, Gmail with an app
 * password or OAuth (`--auth`): the config then holds an `oauth2` block (client id, and Google's
 * client secret) and the user runs `localpost auth ID` once. The upstream password is best
 * referenced, not stored: `{ env }`, `{ command }` (a keyring helper) or `{ file }`; a password
 * typed at the prompt is stored in the file, which is mode 0600 anyway. The local password (what
 * the mail client types) is generated unless given, printed once, and stored only as a scrypt
 * hash.
 *
 * The rendered file is validated with the config schema before it is written, so every flag
 * value is checked by the same rules as `localpost check`; an existing file is never replaced.
 * The questions are in init-answers.ts (asked through init-steps.ts), the file's text and its
 * writing in init-config.ts; this module runs the command and says what to do next.
 */
import { configPath, parseConfigText } from '../config/load.js';
import { oauth2Of } from '../config/schema.js';
import { ConfigError } from '../shared/errors.js';
import { collectAnswers, type InitFlags, passwordName } from './init-answers.js';
import { ConfigExistsError, type InitAnswers, renderConfig, writeNewConfig } from './init-config.js';
import { InitError, terminalAsker } from './init-steps.js';

/** Streams and paths of one run (injected by tests). */
export interface InitIo {
  configFile: string;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

/** What to do next, printed after the file is written. */
function nextSteps(a: InitAnswers, file: string, localPassword: string, generated: boolean): string {
  const cfg = file === configPath() ? '' : ` --config ${file}`;
  const lines = [
    `Wrote ${file} (mode 0600): ${a.preset.title} over ${a.protocol.toUpperCase()} (${a.incoming.host}:${a.incoming.port})` +
      (a.outgoing ? `, sending through ${a.outgoing.host}:${a.outgoing.port}.` : ', receive only.'),
    '',
    'Your mail client logs in to localhost with',
    `  user name  ${a.localUsername}`,
    `  password   ${generated ? `${localPassword}   (generated: the file keeps only a hash, so note it now)` : '(the one you chose)'}`,
  ];
  const pw = a.password;
  if (typeof pw === 'object' && 'env' in pw) {
    lines.push(
      '',
      `localpost reads ${passwordName(a.preset, a.email)} from $${pw.env}:`,
      `  in a shell:       export ${pw.env}='...'`,
      `  for the service:  a line ${pw.env}=... in ~/.config/localpost/environment (\`service install --user\`)`,
      `                    or /etc/localpost/environment (system service); mode 0600`,
    );
  }
  const oauth2 = oauth2Of(pw);
  if (oauth2) {
    lines.push(
      '',
      `Sign in to ${a.preset.title} once (${
        oauth2.provider === 'google'
          ? 'it opens a browser on this machine'
          : 'it prints a code to enter at microsoft.com/devicelogin'
      }):`,
      `  localpost${cfg} auth ${a.id}`,
    );
  }
  lines.push(
    '',
    'Then:',
    `  localpost${cfg} check           try the login at ${a.incoming.host}`,
    `  localpost${cfg} client-setup    what to type into your mail client`,
    file.startsWith('/etc/')
      ? `  sudo localpost${cfg} service install   run it as a system service`
      : `  localpost${cfg} start           run it in this terminal, or \`localpost service install --user\``,
  );
  return `${lines.join('\n')}\n`;
}

/** Runs `localpost init`; resolves with the exit code. */
export async function runInit(flags: InitFlags, io: InitIo): Promise<number> {
  const interactive = flags.interactive !== false && Boolean(io.stdin.isTTY) && Boolean(io.stdout.isTTY);
  const ask = interactive ? terminalAsker(io) : undefined;
  try {
    if (ask) ask.say(`localpost init: writes ${io.configFile}. Enter accepts the [default].\n`);
    const { answers, localPassword, generated } = await collectAnswers(flags, ask);
    ask?.close();
    const text = renderConfig(answers);
    try {
      parseConfigText(text, io.configFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw new InitError(
        [`the config would be invalid: ${err.message}`, ...err.problems.map((p) => `  ${p}`)].join('\n'),
      );
    }
    await writeNewConfig(io.configFile, text);
    io.stdout.write(nextSteps(answers, io.configFile, localPassword, generated));
    return 0;
  } catch (err) {
    if (err instanceof InitError || err instanceof ConfigExistsError) {
      io.stderr.write(`localpost init: ${err.message}\n`);
      return 1;
    }
    if ((err as Error).name === 'AbortError') {
      io.stderr.write('\nlocalpost init: cancelled; nothing was written\n');
      return 1;
    }
    throw err;
  } finally {
    ask?.close();
  }
}
