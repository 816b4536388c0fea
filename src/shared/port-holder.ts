/**
 * Which process listens on a local TCP port, best effort, for messages such as "listen.pop3.port:
 * 127.0.0.1:1110 is in use by pid 812 (dovecot)". On Linux from /proc (`/proc/net/tcp{,6}` maps
 * the port to a socket inode and its owner's uid, `/proc/PID/fd` maps the inode to a process);
 * elsewhere, or when /proc tells nothing, from `ss -ltnpH` or `lsof`. Never throws: an answer it
 * cannot find is undefined, and a process of another user shows as its uid only.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { runProgram } from './exec.js';

/** What is known of the process holding a port. */
export interface PortHolder {
  pid?: number;
  /** Its command line (shortened), or its name. */
  command?: string;
  /** The socket owner's uid, when the process itself is hidden (another user's). */
  uid?: number;
}

/** TCP state LISTEN in /proc/net/tcp. */
const LISTEN = '0A';

/** Inodes (with owner uid) of listening sockets on `port`, from /proc/net/tcp and tcp6. */
async function listeningInodes(port: number): Promise<Array<{ inode: string; uid: number }> | undefined> {
  const out: Array<{ inode: string; uid: number }> = [];
  let readAny = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
      readAny = true;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || f[3] !== LISTEN) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
      const inode = f[9];
      if (inode && inode !== '0') out.push({ inode, uid: Number(f[7]) });
    }
  }
  return readAny ? out : undefined;
}

/** The first process with a descriptor on one of the socket inodes. */
async function processWithSocket(inodes: Set<string>): Promise<number | undefined> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1] && inodes.has(m[1])) return Number(pid);
    }
  }
  return undefined;
}

/** The command line of a process, shortened; else its name. */
async function commandOf(pid: number): Promise<string | undefined> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const [program, ...args] = cmdline.split('\0').filter(Boolean);
  if (program) {
    const text = [program.slice(program.lastIndexOf('/') + 1), ...args].join(' ');
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  }
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return comm.trim() || undefined;
}

/** From `ss -ltnpH`: `users:(("dovecot",pid=812,fd=23))`. */
async function fromSs(port: number): Promise<PortHolder | undefined> {
  const r = await runProgram('ss', ['-ltnpH', `sport = :${port}`], { timeoutMs: 3000 });
  if (r.error || r.code !== 0) return undefined;
  const m = /users:\(\("([^"]*)",pid=(\d+)/.exec(r.stdout);
  return m ? { pid: Number(m[2]), command: m[1] } : undefined;
}

/** From `lsof -Fpc` (macOS and BSDs): lines `p812` and `cdovecot`. */
async function fromLsof(port: number): Promise<PortHolder | undefined> {
  const r = await runProgram('lsof', ['-nP', `-iTCP:${port}`, '-sTCP:LISTEN', '-Fpc'], { timeoutMs: 3000 });
  if (r.error || r.code !== 0) return undefined;
  const pid = /^p(\d+)$/m.exec(r.stdout)?.[1];
  const command = /^c(.+)$/m.exec(r.stdout)?.[1];
  return pid ? { pid: Number(pid), command } : undefined;
}

/** The process listening on TCP `port` on this machine, when it can be told. */
export async function portHolder(port: number): Promise<PortHolder | undefined> {
  try {
    const sockets = await listeningInodes(port);
    if (sockets?.length) {
      const pid = await processWithSocket(new Set(sockets.map((s) => s.inode)));
      if (pid !== undefined) return { pid, command: await commandOf(pid) };
    }
    const other = (await fromSs(port)) ?? (await fromLsof(port));
    if (other) return other;
    const uid = sockets?.[0]?.uid;
    return uid === undefined || Number.isNaN(uid) ? undefined : { uid };
  } catch {
    return undefined;
  }
}

/** `pid 812 (dovecot)`, `a process of uid 0`, or undefined. */
export function describeHolder(h: PortHolder | undefined): string | undefined {
  if (h?.pid !== undefined) return `pid ${h.pid}${h.command ? ` (${h.command})` : ''}`;
  if (h?.uid !== undefined) return `a process of uid ${h.uid}`;
  return undefined;
}
