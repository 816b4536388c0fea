/**
 * sd_notify(3) for the daemon under systemd `Type=notify`: READY=1 once every component has
 * started, STOPPING=1 when a stop begins, WATCHDOG=1 every half of `WATCHDOG_USEC`, and STATUS=
 * lines for `systemctl status`. Without `NOTIFY_SOCKET` (a shell, launchd, tests) every call
 * is a no-op that resolves to false.
 *
 * How a message is sent: the protocol is one AF_UNIX SOCK_DGRAM datagram per message, and Node
 * has no unix datagram sockets (removed before 0.5; nodejs/node#29339, #31414). The options are
 * a compiled addon (unix-dgram; a native dependency for two datagrams a minute), a long-lived
 * helper in another language (python3 or socat, not on every host), or the `systemd-notify`
 * binary that ships with systemd itself. We run `systemd-notify KEY=VALUE...` once per message:
 * READY, STOPPING, a STATUS per reload and one WATCHDOG per half interval are a few processes an
 * hour. Two consequences, both handled: the sender is a child process, so the units set
 * `NotifyAccess=all`; and a child exits at once, which systemd-notify covers by waiting
 * (BARRIER=1) until the manager has read the message, so it is still attributed to the unit.
 *
 * Invariants: messages go out one at a time in call order (READY before STOPPING); a send never
 * throws and never takes longer than `timeoutMs`; when systemd-notify cannot be run at all, that
 * is logged once as an error and later calls are no-ops.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';

/** Options of `SdNotify`. */
export interface SdNotifyOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Remove those variables from `env` so child processes (secret commands) do not inherit them. */
  unsetEnvironment?: boolean;
  log?: Logger;
  /** The sender binary; default `systemd-notify` on PATH. */
  command?: string;
  /** Longest wait for one message; default 5 s. */
  timeoutMs?: number;
  /** This process's pid, for WATCHDOG_PID; default `process.pid`. */
  pid?: number;
}

const NOTIFY_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** The watchdog ping interval (half of WATCHDOG_USEC) in ms, or undefined when no watchdog is asked for. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/** One STATUS= value: a single line. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim();
}

/** Talks to the service manager through `NOTIFY_SOCKET`; see the module comment. */
export class SdNotify {
  /** True when NOTIFY_SOCKET is set (and systemd-notify has not failed to run). */
  get enabled(): boolean {
    return this.socket !== undefined && !this.broken;
  }

  private readonly socket?: string;
  private readonly watchdogMs?: number;
  private readonly path: string;
  private readonly command: string;
  private readonly timeoutMs: number;
  private readonly log?: Logger;
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private broken = false;

  constructor(opts: SdNotifyOptions = {}) {
    const env = opts.env ?? process.env;
    const socket = env.NOTIFY_SOCKET;
    this.socket = socket && (socket.startsWith('/') || socket.startsWith('@')) ? socket : undefined;
    this.watchdogMs = this.socket ? watchdogIntervalMs(env, opts.pid) : undefined;
    this.path = env.PATH || '/usr/local/bin:/usr/bin:/bin';
    this.command = opts.command ?? 'systemd-notify';
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.log = opts.log;
    if (opts.unsetEnvironment) for (const name of NOTIFY_VARS) delete env[name];
    if (socket && !this.socket)
      this.log?.warn('NOTIFY_SOCKET is neither a path nor an abstract socket name: not notifying');
  }

  /** Sends `KEY=VALUE` fields as one message; resolves true once the manager has it. */
  notify(fields: Record<string, string | number>): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    const args = Object.entries(fields).map(([k, v]) => `${k}=${k === 'STATUS' ? oneLine(String(v)) : String(v)}`);
    const sent = this.chain.then(() => this.send(args));
    this.chain = sent;
    return sent;
  }

  /** READY=1, with an optional status line. */
  ready(status?: string): Promise<boolean> {
    return this.notify(status === undefined ? { READY: 1 } : { READY: 1, STATUS: status });
  }

  /** STOPPING=1, with an optional status line. */
  stopping(status?: string): Promise<boolean> {
    return this.notify(status === undefined ? { STOPPING: 1 } : { STOPPING: 1, STATUS: status });
  }

  /** A STATUS= line shown by `systemctl status`. */
  status(text: string): Promise<boolean> {
    return this.notify({ STATUS: text });
  }

  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC; false when no watchdog is asked for. */
  startWatchdog(): boolean {
    if (!this.enabled || this.watchdogMs === undefined || this.timer) return false;
    this.timer = setInterval(() => {
      void this.notify({ WATCHDOG: 1 });
    }, this.watchdogMs);
    this.timer.unref();
    return true;
  }

  /** Stops the watchdog pings and waits for messages still being sent. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  private send(args: string[]): Promise<boolean> {
    return new Promise((resolve) => {
      let stderr = '';
      let settled = false;
      const done = (ok: boolean) => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      const child = spawn(this.command, args, {
        env: { PATH: this.path, NOTIFY_SOCKET: this.socket },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: this.timeoutMs,
        killSignal: 'SIGKILL',
      });
      child.stderr.on('data', (b: Buffer) => {
        if (stderr.length < 2000) stderr += b.toString();
      });
      child.on('error', (err) => {
        this.broken = true;
        if (this.timer) clearInterval(this.timer);
        this.log?.error(
          { err: errorMessage(err) },
          `cannot run ${this.command}: the service manager gets no READY/WATCHDOG (is systemd installed?)`,
        );
        done(false);
      });
      child.on('close', (code, signal) => {
        if (code !== 0 && !settled) {
          this.log?.warn(
            { code, signal, stderr: stderr.trim() || undefined, message: args.join(' ') },
            'sd_notify message not delivered',
          );
        }
        done(code === 0);
      });
    });
  }
}
