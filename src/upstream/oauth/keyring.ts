/**
 * The key that encrypts stored OAuth tokens (AES-256-GCM, see token-store.ts), kept outside the
 * token files: in the OS keyring where one is usable (Linux: libsecret's `secret-tool`; macOS:
 * the login keychain through `security`), else in `<dataDir>/oauth/key` (mode 0600).
 *
 * Invariants:
 * - the key never appears on a command line (secret-tool reads it from stdin; `security` gets it
 *   only on `add-generic-password -w`, as macOS offers no other way: see the README, "Signing in with OAuth 2.0");
 * - every helper runs through runProgram with a short timeout, so a locked or absent keyring
 *   delays a sign-in by seconds at most and then falls back to the key file;
 * - a key that cannot be read *now* (keyring locked, D-Bus away) is a TemporaryError: the token
 *   is kept and the next attempt tries again. Only a key that is gone for good is reported as
 *   needing a new sign-in.
 * `LOCALPOST_KEYRING=none` skips the keyring (services without a desktop session, tests).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdirDurable, writeFileDurable } from '../../shared/durable-fs.js';
import { AuthError, TemporaryError } from '../../shared/errors.js';
import { runProgram } from '../../shared/exec.js';

/** Creates `<dataDir>/oauth` (0700) durably. */
export async function mkdirOAuth(dataDir: string): Promise<void> {
  await mkdirDurable(path.join(dataDir, 'oauth'));
}

/** Where a key lives. */
export type KeySource = 'secret-tool' | 'security' | 'file';

const TIMEOUT_MS = 5_000;
const SERVICE = 'localpost';

/** The key file of a data directory. */
function keyFilePath(dataDir: string): string {
  return path.join(dataDir, 'oauth', 'key');
}

/** Runs a keyring helper; `why` says why it failed without quoting its arguments (one may be the key). */
async function run(cmd: string, args: string[], input?: string): Promise<{ ok: boolean; stdout: string; why: string }> {
  const r = await runProgram(cmd, args, { input: input ?? '', timeoutMs: TIMEOUT_MS, maxBuffer: 64 * 1024 });
  const ok = r.code === 0 && !r.truncated;
  let why = '';
  if (r.timedOut) why = `timed out after ${TIMEOUT_MS} ms`;
  else if (!ok)
    why =
      r.stderr.trim().split('\n').pop() ||
      r.error?.code ||
      (r.truncated ? 'too much output' : r.code !== null ? String(r.code) : `killed by ${r.signal}`);
  return { ok, stdout: r.stdout, why };
}

function decodeKey(text: string): Buffer | undefined {
  const key = Buffer.from(text.trim(), 'base64');
  return key.length === 32 ? key : undefined;
}

/** Which keyring this machine offers, if any (`LOCALPOST_KEYRING=none` turns it off). */
async function keyringSource(env: NodeJS.ProcessEnv = process.env): Promise<Exclude<KeySource, 'file'> | undefined> {
  if (env.LOCALPOST_KEYRING === 'none') return undefined;
  if (process.platform === 'darwin') return 'security';
  if (process.platform === 'linux') {
    const dirs = (env.PATH ?? '').split(':').filter(Boolean);
    for (const d of dirs) {
      try {
        await access(path.join(d, 'secret-tool'), constants.X_OK);
        return 'secret-tool';
      } catch {
        /* not here */
      }
    }
  }
  return undefined;
}

/** Reads the key from a keyring; undefined when the keyring has none. */
async function keyringLoad(
  source: Exclude<KeySource, 'file'>,
  dataDir: string,
): Promise<{ key?: Buffer; why?: string }> {
  const r =
    source === 'secret-tool'
      ? await run('secret-tool', ['lookup', 'application', SERVICE, 'datadir', dataDir])
      : await run('security', ['find-generic-password', '-s', SERVICE, '-a', dataDir, '-w']);
  if (!r.ok) return { why: r.why };
  return { key: decodeKey(r.stdout) };
}

async function keyringSave(source: Exclude<KeySource, 'file'>, dataDir: string, key: Buffer): Promise<boolean> {
  const text = key.toString('base64');
  const r =
    source === 'secret-tool'
      ? await run(
          'secret-tool',
          ['store', '--label', `localpost OAuth key (${dataDir})`, 'application', SERVICE, 'datadir', dataDir],
          text,
        )
      : await run('security', ['add-generic-password', '-U', '-s', SERVICE, '-a', dataDir, '-w', text]);
  if (!r.ok) return false;
  const back = await keyringLoad(source, dataDir);
  return Boolean(back.key?.equals(key));
}

/** Loads and creates encryption keys for one data directory; keys are cached in memory. */
export class KeyProvider {
  private readonly cache = new Map<KeySource, Buffer>();

  constructor(
    private readonly dataDir: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The key recorded for a token file. Throws TemporaryError (try later) or AuthError (key lost). */
  async load(source: KeySource): Promise<Buffer> {
    const cached = this.cache.get(source);
    if (cached) return cached;
    let key: Buffer | undefined;
    if (source === 'file') {
      try {
        key = decodeKey(await readFile(keyFilePath(this.dataDir), 'utf8'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT')
          throw new TemporaryError(`cannot read ${keyFilePath(this.dataDir)} (${code ?? 'error'})`, { cause: err });
      }
    } else {
      const r = await keyringLoad(source, this.dataDir);
      if (r.why) throw new TemporaryError(`cannot read the token key from the keyring (${source}: ${r.why})`);
      key = r.key;
    }
    if (!key)
      throw new AuthError(
        `the key that encrypts the saved sign-in is missing (${source === 'file' ? keyFilePath(this.dataDir) : source})`,
        { code: 'EOAUTH_SIGNIN' },
      );
    this.cache.set(source, key);
    return key;
  }

  /** A key for new tokens: the keyring's (created there if needed), else the key file's. */
  async obtain(): Promise<{ key: Buffer; source: KeySource }> {
    const ring = await keyringSource(this.env);
    if (ring) {
      try {
        return { key: await this.load(ring), source: ring };
      } catch {
        /* none yet, or unusable */
      }
      const key = randomBytes(32);
      if (await keyringSave(ring, this.dataDir, key)) {
        this.cache.set(ring, key);
        return { key, source: ring };
      }
    }
    try {
      return { key: await this.load('file'), source: 'file' };
    } catch (err) {
      if (err instanceof TemporaryError && !(err instanceof AuthError)) throw err;
    }
    const key = randomBytes(32);
    await mkdirOAuth(this.dataDir);
    await writeFileDurable(keyFilePath(this.dataDir), `${key.toString('base64')}\n`, 0o600);
    this.cache.set('file', key);
    return { key, source: 'file' };
  }
}
