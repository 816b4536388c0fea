/**
 * Runs a command on a real pseudo-terminal (Python's `pty.fork`), answering prompts like
 * `expect`: each step waits until the output so far contains `expect` (after the previous
 * match), then types `send` and a carriage return, as a person at a terminal would.
 * Resolves with everything the terminal showed and the exit code; rejects on a timeout with
 * the output so far, so a test failure shows where the dialogue stopped.
 */
import { execFile } from 'node:child_process';
import { PYTHON } from './python.js';

/** One prompt and its answer. */
export interface PtyStep {
  expect: string;
  send: string;
}

const DRIVER = String.raw`
import json, os, pty, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec['cwd'])
    os.execve(spec['argv'][0], spec['argv'], spec['env'])
out = b''
pos = 0
deadline = time.time() + spec['timeout']
steps = spec['steps']
def fail(why):
    sys.stdout.write(json.dumps({'error': why, 'output': out.decode('utf-8', 'replace')}))
    sys.exit(0)
def pump(wait):
    global out
    r, _, _ = select.select([fd], [], [], wait)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    out += data
    return True
for step in steps:
    want = step['expect'].encode()
    while out.find(want, pos) < 0:
        if time.time() > deadline:
            fail('timed out waiting for %r' % step['expect'])
        if not pump(0.2):
            fail('the program ended while waiting for %r' % step['expect'])
    pos = out.find(want, pos) + len(want)
    time.sleep(0.05)
    os.write(fd, step['send'].encode() + b'\r')
while time.time() < deadline and pump(0.2):
    pass
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.stdout.write(json.dumps({'code': code, 'output': out.decode('utf-8', 'replace')}))
`;

/** Runs `argv` on a pseudo-terminal through `steps`; the terminal's output and the exit code. */
export function runInPty(
  argv: string[],
  steps: PtyStep[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; output: string }> {
  const spec = {
    argv,
    steps,
    cwd: opts.cwd ?? process.cwd(),
    timeout: (opts.timeoutMs ?? 30_000) / 1000,
    env: Object.fromEntries(
      Object.entries({ ...process.env, TERM: 'xterm', ...opts.env }).filter(([, v]) => v !== undefined),
    ),
  };
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', DRIVER, JSON.stringify(spec)], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`pty driver failed: ${err.message}\n${stderr}`));
      const r = JSON.parse(stdout) as { code?: number; output: string; error?: string };
      if (r.error !== undefined) return reject(new Error(`${r.error}; the terminal showed:\n${r.output}`));
      resolve({ code: r.code!, output: r.output });
    });
  });
}
