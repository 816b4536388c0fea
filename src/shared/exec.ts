/**
 * Running a helper program (keyring tools, secret commands, systemd-notify, the browser opener,
 * systemctl): one function, `runProgram`, for every child process localpost starts.
 *
 * Invariants:
 * - it never rejects: a program that cannot start, exits non-zero, is killed or times out is
 *   described in the result, for the caller to word its own message;
 * - no argument goes through a shell (a caller that wants one runs `/bin/sh -c` itself);
 * - a timeout kills with SIGKILL; with `group` the program runs in its own process group and the
 *   whole group is killed, so helpers it started do not outlive it;
 * - at most `maxBuffer` bytes of each of stdout and stderr are kept; the rest is read and dropped
 *   (`truncated`), so a chatty program can neither block on a full pipe nor fill memory.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** How to run a program. */
export interface RunOptions {
  /** Written to its stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Its environment; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Kill it (SIGKILL) after this long. */
  timeoutMs?: number;
  /** Bytes kept of each of stdout and stderr; default 1 MiB. */
  maxBuffer?: number;
  /** Run it in its own process group, so that a timeout kills its children too. */
  group?: boolean;
  /** `capture` (default): into the result; `inherit`: our own stdout and stderr; `ignore`: /dev/null. */
  output?: 'capture' | 'inherit' | 'ignore';
  /** Do not keep this process alive for it (a program left running in the background). */
  unref?: boolean;
}

/** How a program ended. */
export interface RunResult {
  /** Its exit status; null when it was killed by a signal or did not start. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** It was killed because it ran longer than `timeoutMs`. */
  timedOut: boolean;
  /** More output than `maxBuffer` was dropped. */
  truncated: boolean;
  /** It could not be started (ENOENT: not installed; EACCES: not executable). */
  error?: NodeJS.ErrnoException;
}

const DEFAULT_MAX_BUFFER = 1024 * 1024;

/** Runs `cmd` with `args` and resolves once it has ended and its output is read; see the module comment. */
export function runProgram(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  const output = o.output ?? 'capture';
  const out = output === 'capture' ? 'pipe' : output;
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      env: o.env ?? process.env,
      detached: o.group ?? false,
      stdio: [o.input === undefined ? 'ignore' : 'pipe', out, out],
    });
  } catch (err) {
    // spawn throws at once for arguments it refuses (a NUL byte, say)
    return Promise.resolve({ ...NOT_RUN, error: err as NodeJS.ErrnoException });
  }
  return new Promise((resolve) => {
    const max = o.maxBuffer ?? DEFAULT_MAX_BUFFER;
    let truncated = false;
    const collect = (stream: NodeJS.ReadableStream | null) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream?.on('data', (chunk: Buffer) => {
        const room = max - size;
        if (chunk.length > room) truncated = true;
        if (room > 0) chunks.push(room < chunk.length ? chunk.subarray(0, room) : chunk);
        size += Math.min(room, chunk.length);
      });
      return () => Buffer.concat(chunks).toString('utf8');
    };
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    let timedOut = false;
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            kill(child, o.group ?? false);
          }, o.timeoutMs);
    if (o.unref) {
      timer?.unref();
      child.unref();
    }
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // it may exit without reading
      child.stdin.end(o.input);
    }
    let error: NodeJS.ErrnoException | undefined;
    child.on('error', (err) => {
      error = err;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: error ? null : code, signal, stdout: stdout(), stderr: stderr(), timedOut, truncated, error });
    });
  });
}

const NOT_RUN: RunResult = { code: null, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false };

function kill(child: ChildProcess, group: boolean): void {
  if (group && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
      return;
    } catch {
      /* the group is gone already: kill the child alone */
    }
  }
  child.kill('SIGKILL');
}
