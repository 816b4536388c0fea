/**
 * Resolves the credentials written in the config (`Secret`) into strings, when they are needed
 * rather than at parse time, so that `{command}` helpers (pass, secret-tool, gpg) run only for
 * the accounts actually used.
 *
 * Sources: a literal string; `{ env: NAME }`; `{ file: PATH }` (one trailing newline trimmed; a
 * file readable by group or others is used, with a warning); `{ command: "..." }` (run through
 * `/bin/sh -c` with a timeout, in its own process group; the first line of stdout is the secret).
 *
 * `{ oauth2: ... }` resolves to an OAuth access token of the account, refreshed when it is
 * about to expire (oauth/tokens.ts); it needs `ctx.oauth` (the data directory's token manager).
 *
 * Invariant: an error names the account and the key and never contains the secret's value (for
 * a command, nothing from its stdout is quoted; its stderr may be).
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../shared/errors.js';
import type { AccessToken, NoticeTarget, OAuthTokens } from '../upstream/oauth/tokens.js';
import type { OAuth2Settings, PlainSecret, Secret } from './schema.js';

/** Where a secret comes from, for messages; and how to resolve it. */
export interface SecretContext {
  /** The account id, named in errors. */
  account: string;
  /** The key within the account, e.g. `incoming.password`, named in errors. */
  key: string;
  /** Environment for `{env}` and `{command}`; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Timeout for `{command}` in milliseconds; default 10 000. */
  timeoutMs?: number;
  /** Receives non-fatal warnings (a secret file readable by others). */
  warn?: (message: string) => void;
  /** For `{oauth2}`: the token manager, and where a sign-in-again message goes. */
  oauth?: { tokens: OAuthTokens; notice?: NoticeTarget; force?: boolean };
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 1024 * 1024;

/** Resolves a configured secret to its value; throws ConfigError naming account and key. */
export async function resolveSecret(secret: Secret, ctx: SecretContext): Promise<string> {
  if (typeof secret === 'string') return secret;
  if ('oauth2' in secret) return (await resolveOAuth2(secret.oauth2, ctx)).accessToken;
  return resolvePlain(secret, ctx);
}

/** An access token for `{oauth2}` settings (see the module comment). */
export async function resolveOAuth2(o: OAuth2Settings, ctx: SecretContext): Promise<AccessToken> {
  if (!ctx.oauth)
    throw new ConfigError(`account "${ctx.account}" ${ctx.key}: OAuth is not available here (no data directory)`);
  const clientSecret =
    o.clientSecret === undefined
      ? undefined
      : await resolvePlain(o.clientSecret, { ...ctx, key: `${ctx.key}.oauth2.clientSecret` });
  return ctx.oauth.tokens.accessToken(
    ctx.account,
    { clientId: o.clientId, clientSecret, tokenUrl: o.tokenUrl, scopes: o.scopes },
    { force: ctx.oauth.force, notice: ctx.oauth.notice },
  );
}

/** Resolves a password-like secret (not OAuth). */
export async function resolvePlain(secret: PlainSecret, ctx: SecretContext): Promise<string> {
  const where = `account "${ctx.account}" ${ctx.key}`;
  const fail = (why: string): never => {
    throw new ConfigError(`${where}: ${why}`);
  };
  const env = ctx.env ?? process.env;
  if (typeof secret === 'string') return secret;

  if ('env' in secret) {
    const value = env[secret.env];
    if (value === undefined) return fail(`environment variable ${secret.env} is not set`);
    if (value === '') return fail(`environment variable ${secret.env} is empty`);
    return value;
  }

  if ('file' in secret) {
    let text: string;
    try {
      const st = await stat(secret.file);
      if ((st.mode & 0o077) !== 0) {
        const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
        ctx.warn?.(`${where}: ${secret.file} is readable by group or others (mode ${mode}); chmod 600 it`);
      }
      text = await readFile(secret.file, 'utf8');
    } catch (err) {
      return fail(`cannot read ${secret.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '') return fail(`${secret.file} is empty`);
    return value;
  }

  const { stdout, problem } = await runCommand(secret.command, env, ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (problem) return fail(problem);
  const value = stdout.split(/\r?\n/, 1)[0] ?? '';
  if (value === '') return fail('the command printed nothing on its first line');
  return value;
}

/**
 * Runs `cmd` via `/bin/sh -c` in its own process group, so a timeout also kills the helpers it
 * started; `problem` describes a failure without quoting stdout.
 */
function runCommand(
  cmd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ stdout: string; problem?: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', cmd], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_OUTPUT) into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid === undefined)
          child.kill('SIGKILL'); // not started: no process group
        else process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    const finish = (problem?: string) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (!problem) return resolve({ stdout });
      const hint = timedOut ? undefined : stderrHint(Buffer.concat(err).toString('utf8'), stdout);
      resolve({ stdout: '', problem: hint ? `${problem}: ${hint}` : problem });
    };
    child.on('error', (e: NodeJS.ErrnoException) => finish(`the command could not run (${e.code ?? 'error'})`));
    child.on('close', (code, signal) => {
      if (timedOut) finish(`the command timed out after ${timeoutMs} ms`);
      else if (code === 0) finish();
      else if (code !== null) finish(`the command exited with status ${code}`);
      else finish(`the command was killed by ${signal}`);
    });
  });
}

/** The last non-empty stderr line, shortened, and dropped if it repeats any stdout line. */
function stderrHint(stderr: string, stdout: string): string | undefined {
  const line = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .pop();
  if (!line) return undefined;
  const outLines = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length >= 3);
  if (outLines.some((l) => line.includes(l))) return undefined;
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
