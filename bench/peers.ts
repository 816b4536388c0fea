/**
 * The benchmark's contestants, each run as a child process against the same testbed upstream:
 * fetchmail (POP3, keep mode), mbsync/isync (IMAP INBOX → Maildir) and the localpost CLI
 * (`localpost sync`, over POP3 or IMAP). Each run gets a fresh temp dir, so nothing is already
 * "seen"; the result carries wall time, peak RSS and the number of message files produced.
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -f %M`: the child's ru_maxrss, which for
 * fetchmail also covers the MDA children it waited for). Without GNU time, the child's
 * `/proc/<pid>/status` VmHWM (a high-water mark) is sampled every 20 ms until it exits.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What one measured run produced. */
export interface RunResult {
  tool: string;
  protocol: 'pop3' | 'imap';
  ok: boolean;
  /** Why it failed, when `ok` is false. */
  error?: string;
  wallSeconds: number;
  peakRssKb: number | null;
  files: number;
  /** Total bytes of the files produced. */
  bytes: number;
  /** The exact command line, for the report. */
  command: string;
}

/** Where the upstream listens and whom to log in as. */
export interface Upstream {
  pop3Port: number;
  imapPort: number;
  user: string;
  pass: string;
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

interface Measured {
  code: number;
  wallSeconds: number;
  peakRssKb: number | null;
  stdout: string;
  stderr: string;
}

/** Run `cmd args` to completion, measuring wall time and peak RSS. */
export function measure(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; workDir: string },
): Promise<Measured> {
  return new Promise((res, rej) => {
    const rssFile = join(opts.workDir, 'time.out');
    const [file, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args];
    const t0 = process.hrtime.bigint();
    const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-20000);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20000);
    });
    let sampled: number | null = null;
    const timer = GNU_TIME
      ? null
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) sampled = Math.max(sampled ?? 0, Number(m[1]));
          } catch {
            /* exited */
          }
        }, 20);
    child.once('error', rej);
    child.once('close', (code) => {
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (timer) clearInterval(timer);
      let peakRssKb = sampled;
      if (GNU_TIME) {
        // GNU time writes "Command exited with non-zero status N" before the figure on failure
        const lines = existsSync(rssFile) ? readFileSync(rssFile, 'utf8').trim().split('\n') : [];
        const v = Number(lines.at(-1));
        peakRssKb = Number.isFinite(v) && v > 0 ? v : null;
      }
      res({ code: code ?? 1, wallSeconds, peakRssKb, stdout, stderr });
    });
  });
}

/** Count regular files (and their bytes) below `dir`, in directories named `cur` or `new`. */
export function countMessageFiles(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string, inMsgDir: boolean): void => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, e.name === 'cur' || e.name === 'new');
      else if (e.isFile() && inMsgDir) {
        files++;
        bytes += statSync(p).size;
      }
    }
  };
  walk(dir, false);
  return { files, bytes };
}

function fail(tool: string, protocol: 'pop3' | 'imap', command: string, error: string, m?: Measured): RunResult {
  return {
    tool,
    protocol,
    ok: false,
    error,
    wallSeconds: m?.wallSeconds ?? 0,
    peakRssKb: m?.peakRssKb ?? null,
    files: 0,
    bytes: 0,
    command,
  };
}

/**
 * fetchmail over POP3 in keep mode, plaintext (`sslproto ''`: no STLS), a fresh `.fetchids`,
 * delivering each message through a minimal MDA: fetchmail popen()s `/bin/sh -c` (dash) with
 * `f=OUT/new/$$; while [ -e $f ]; do f=$f.x; done; exec cat > $f` — builtins only, then
 * exec'd cat: one fork and two execs per message, and a unique name even if PIDs wrap.
 */
export async function runFetchmail(up: Upstream, work: string): Promise<RunResult> {
  const out = join(work, 'fetchmail-out');
  const home = join(work, 'fetchmail-home');
  mkdirSync(join(out, 'new'), { recursive: true });
  mkdirSync(home, { recursive: true });
  // no quotes inside (the rc string is double-quoted); OUT has no spaces (mkdtemp under /tmp)
  const mda = `f=${out}/new/$$; while [ -e $f ]; do f=$f.x; done; exec cat > $f`;
  const rc = join(home, 'fetchmailrc');
  writeFileSync(
    rc,
    [
      'set no syslog',
      `poll 127.0.0.1 protocol pop3 port ${up.pop3Port}`,
      `  user "${up.user}" there with password "${up.pass}" is "root" here`,
      `  keep sslproto '' mda "${mda}"`,
      '',
    ].join('\n'),
  );
  chmodSync(rc, 0o600);
  const args = [
    '-f',
    rc,
    '-i',
    join(home, '.fetchids'),
    '--nodetach',
    '--silent',
    '--pidfile',
    join(home, 'fetchmail.pid'),
  ];
  const command = `fetchmail ${args.join(' ')}  # rc: keep sslproto '' mda '${mda}'`;
  const m = await measure('fetchmail', args, {
    env: { ...process.env, FETCHMAILHOME: home, HOME: home },
    workDir: home,
  });
  // fetchmail exits 0 when mail was fetched, 1 when there was none
  if (m.code !== 0)
    return fail(
      'fetchmail',
      'pop3',
      command,
      `exit ${m.code}: ${m.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      m,
    );
  const c = countMessageFiles(out);
  return {
    tool: 'fetchmail',
    protocol: 'pop3',
    ok: true,
    wallSeconds: m.wallSeconds,
    peakRssKb: m.peakRssKb,
    files: c.files,
    bytes: c.bytes,
    command,
  };
}

/** mbsync (isync) pulling `folders` over plaintext IMAP (AUTHENTICATE PLAIN) into a fresh Maildir, default fsync. */
export async function runMbsync(up: Upstream, work: string, folders: string[] = ['INBOX']): Promise<RunResult> {
  const dir = join(work, 'mbsync');
  const mail = join(dir, 'mail');
  mkdirSync(mail, { recursive: true });
  const cfg = join(dir, 'mbsyncrc');
  writeFileSync(
    cfg,
    [
      'IMAPAccount bench',
      'Host 127.0.0.1',
      `Port ${up.imapPort}`,
      `User ${up.user}`,
      `Pass ${up.pass}`,
      'SSLType None',
      'AuthMechs PLAIN LOGIN',
      '',
      'IMAPStore remote',
      'Account bench',
      '',
      'MaildirStore local',
      `Path ${mail}/`,
      `Inbox ${mail}/INBOX`,
      '',
      'Channel pull',
      'Far :remote:',
      'Near :local:',
      `Patterns ${folders.join(' ')}`,
      'Sync Pull',
      'Create Near',
      'Expunge None',
      'SyncState *',
      '',
    ].join('\n'),
  );
  const args = ['-c', cfg, '-q', 'pull'];
  const command = `mbsync ${args.join(' ')}  # Sync Pull, Patterns ${folders.join(' ')}, SSLType None`;
  const m = await measure('mbsync', args, { env: { ...process.env, HOME: dir }, workDir: dir });
  if (m.code !== 0)
    return fail('mbsync', 'imap', command, `exit ${m.code}: ${m.stderr.trim().split('\n').slice(-3).join(' | ')}`, m);
  const c = countMessageFiles(mail);
  return {
    tool: 'mbsync',
    protocol: 'imap',
    ok: true,
    wallSeconds: m.wallSeconds,
    peakRssKb: m.peakRssKb,
    files: c.files,
    bytes: c.bytes,
    command,
  };
}

/**
 * `node bin/localpost --config CFG sync` with one account over POP3 or IMAP (a config as a user
 * writes it); its data dir is `work/localpost-<protocol>/data`, account `bench`.
 */
export async function runLocalpost(
  repo: string,
  protocol: 'pop3' | 'imap',
  up: Upstream,
  work: string,
  folders: string[] = ['INBOX'],
): Promise<RunResult> {
  const tool = `localpost-${protocol}`;
  const dir = join(work, tool);
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  const bin = join(repo, 'bin/localpost');
  const cfg = join(dir, 'config.yaml');
  const port = protocol === 'pop3' ? up.pop3Port : up.imapPort;
  writeFileSync(
    cfg,
    [
      `dataDir: ${data}`,
      'log:',
      '  level: warn',
      'accounts:',
      '  - id: bench',
      `    email: ${up.user}@example.test`,
      '    login: { username: bench, password: x }',
      '    incoming:',
      `      protocol: ${protocol}`,
      '      host: 127.0.0.1',
      `      port: ${port}`,
      '      tls: none',
      `      username: ${up.user}`,
      `      password: ${up.pass}`,
      '      keepOnServer: true',
      `      folders: [${folders.join(', ')}]`,
      '      idle: false',
      '',
    ].join('\n'),
  );
  const args = [bin, '--config', cfg, 'sync'];
  const command = `node ${args.join(' ')}`;
  if (!existsSync(bin)) return fail(tool, protocol, command, `${bin} does not exist yet`);
  const m = await measure(process.execPath, args, { workDir: dir });
  if (m.code !== 0) {
    const tail = (m.stderr || m.stdout).trim().split('\n').slice(-3).join(' | ');
    return fail(tool, protocol, command, `exit ${m.code}: ${tail}`, m);
  }
  const c = countMessageFiles(data);
  return {
    tool,
    protocol,
    ok: true,
    wallSeconds: m.wallSeconds,
    peakRssKb: m.peakRssKb,
    files: c.files,
    bytes: c.bytes,
    command,
  };
}

/**
 * The floor of a POP3 pull: one Python poplib session (login, STAT, UIDL) RETRing every message
 * and writing nothing, timed as a whole process like the other contestants.
 */
export async function runPoplibFloor(up: Upstream, work: string, python: string, script: string): Promise<RunResult> {
  const dir = join(work, 'poplib-floor');
  mkdirSync(dir, { recursive: true });
  const args = ['-c', script, String(up.pop3Port), up.user, up.pass, '1'];
  const command = `${python} -c <poplib: login, STAT, UIDL, RETR 1..n, QUIT; no writes>`;
  const m = await measure(python, args, { workDir: dir });
  if (m.code !== 0) return fail('poplib-floor', 'pop3', command, `exit ${m.code}: ${m.stderr.trim().slice(-300)}`, m);
  const n = Number(m.stdout.trim().split(' ')[0]);
  return {
    tool: 'poplib-floor',
    protocol: 'pop3',
    ok: true,
    wallSeconds: m.wallSeconds,
    peakRssKb: m.peakRssKb,
    files: n,
    bytes: 0,
    command,
  };
}
