/**
 * Whether the local listeners can bind their configured ports, asked before `start` binds them
 * and by `check`: each problem is one line naming its config key (`listen.pop3.port`), the
 * address, and the process that holds the port when it can be told (shared/port-holder.ts).
 * Port 0 ("any free port") is never a problem. A probe binds and closes at once, on each host
 * as the listeners will (`exclusive`); an address missing on this machine (no ::1) is skipped,
 * as the listeners skip it.
 */
import net from 'node:net';
import type { Config } from '../config/schema.js';
import { formatAddress } from '../control/protocol.js';
import { listenOn } from '../listeners/listen.js';
import { describeHolder, portHolder } from '../shared/port-holder.js';

/** One listener port of the config. */
interface ListenPort {
  key: string;
  hosts: string[];
  port: number;
}

/** Every configured listener port with its config key. */
function listenPorts(cfg: Config): ListenPort[] {
  const { pop3, imap, smtp } = cfg.listen;
  const out: ListenPort[] = [
    { key: 'listen.pop3.port', hosts: pop3.hosts, port: pop3.port },
    { key: 'listen.smtp.port', hosts: smtp.hosts, port: smtp.port },
  ];
  if (typeof pop3.tls === 'object') out.push({ key: 'listen.pop3.tls.port', hosts: pop3.hosts, port: pop3.tls.port });
  if (imap.enabled) {
    out.push({ key: 'listen.imap.port', hosts: imap.hosts, port: imap.port });
    if (typeof imap.tls === 'object') out.push({ key: 'listen.imap.tls.port', hosts: imap.hosts, port: imap.tls.port });
  }
  return out;
}

/** Binds host:port and closes again; the bind error's code, or undefined when it worked. */
async function tryBind(host: string, port: number): Promise<string | undefined> {
  const server = net.createServer();
  try {
    await listenOn(server, host, port);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EINVAL';
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** The sentence for a bind failure of `key` at host:port. */
async function problemText(key: string, host: string, port: number, code: string, pid?: number): Promise<string> {
  const where = formatAddress(host, port);
  if (code === 'EADDRINUSE') {
    const holder = await portHolder(port);
    // the running daemon's own port (a holder that cannot be told is taken to be it)
    if (pid !== undefined && (holder?.pid === undefined || holder.pid === pid)) return '';
    const by = describeHolder(holder);
    return `${key}: ${where} is already in use${by ? ` by ${by}` : ''}: stop that program or choose another port`;
  }
  if (code === 'EACCES')
    return `${key}: ${where} needs privileges this user lacks (ports below 1024): choose a port from 1024 up`;
  return `${key}: cannot listen on ${where} (${code})`;
}

/**
 * The listener ports that cannot be bound, one line each. `ownPid`: a running localpost of this
 * data directory, whose own ports are not a problem.
 */
export async function listenPortProblems(cfg: Config, ownPid?: number): Promise<string[]> {
  const problems: string[] = [];
  for (const l of listenPorts(cfg)) {
    if (l.port === 0) continue;
    for (const host of l.hosts) {
      const code = await tryBind(host, l.port);
      if (code === undefined || code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') continue;
      const text = await problemText(l.key, host, l.port, code, ownPid);
      if (text) problems.push(text);
      break; // one line per key
    }
  }
  return problems;
}

/** The line for a bind error that `start` met after all (another program was quicker), or undefined. */
export async function listenErrorText(err: unknown, cfg: Config): Promise<string | undefined> {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen' || (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') || e.port === undefined)
    return undefined;
  const l = listenPorts(cfg).find((x) => x.port === e.port);
  if (!l) return undefined;
  return problemText(l.key, e.address ?? l.hosts[0] ?? 'localhost', e.port, e.code);
}
