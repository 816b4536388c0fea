/**
 * `localpost check`: the config is valid, its listener ports can be bound, and every account's
 * upstream logins work; one line per finding, so a user sees at once what is wrong and where.
 *
 * Each failure is sorted once (`failureLine`):
 * - a configuration problem — a secret that cannot be resolved (unset variable, unreadable file,
 *   failing command), an OAuth account not signed in, an unreadable `tlsCa`, a `tls` mode that
 *   does not match the port, a listener port taken or forbidden — names its config key
 *   (`accounts[0].outgoing.password`, `listen.pop3.port`) and makes `check` exit 78;
 * - a network failure (refused, no route, DNS, no answer) is "unreachable", naming the host: a
 *   failure for the incoming server, a warning for the outgoing one (mail waits in the outbox);
 * - anything else (a refused login, an untrusted certificate with its fix) fails with exit 1.
 * Nothing is logged while it runs (the upstream libraries' loggers are silenced): the lines are
 * the whole output. Warnings: a config file holding a password in clear and readable by others,
 * a listener accepting old TLS versions (`listen.*.tls.legacy`), an upstream reached in clear on
 * a host that is not loopback (`tls: none`, an `http://` OAuth token URL), a config asking for
 * other UIDLs than an account's cache serves (cache/uidl-mode.ts), and a data directory `start`
 * would chmod; one it would refuse is a configuration problem (docs/security.md). A config file
 * that fails the trust rule never gets this far: loading it exits 78.
 */
import pino, { type Logger } from 'pino';
import { recordedUidlMode, uidlModeWarning } from '../cache/uidl-mode.js';
import { cleartextUpstreamWarnings, exposedSecretsWarning, legacyTlsWarning } from '../config/exposure.js';
import { type AccountConfig, type Config, defaultPort } from '../config/schema.js';
import { incomingEndpoint, outgoingEndpoint } from '../daemon/accounts.js';
import { lockHolder } from '../daemon/instance-lock.js';
import { listenPortProblems } from '../daemon/listen-ports.js';
import { AuthError, ConfigError, errorMessage } from '../shared/errors.js';
import { dataDirProblem } from '../shared/trust.js';
import { createImapClient } from '../upstream/imap/connect.js';
import { Pop3Client, pop3Login } from '../upstream/pop3/client.js';
import { scopeOf } from '../upstream/smtp/classify.js';
import { NodemailerSender } from '../upstream/smtp/sender.js';
import { messageWithTlsHint, shortTlsMessage, tlsModeHint } from '../upstream/tls-hint.js';

/** One line of `check` output; `warn`: worth reading, but not a failure; `config`: a configuration problem (exit 78). */
export interface CheckLine {
  ok: boolean;
  text: string;
  warn?: boolean;
  config?: boolean;
}

/** What a check of one account needs. */
export interface CheckOptions {
  log: Logger;
  /** The account's position in `accounts`, for config paths. */
  index: number;
  /** For OAuth accounts: where the sign-in is kept. */
  dataDir?: string;
  /** Connection and reply timeouts; default 10 s and 20 s. */
  connectTimeoutMs?: number;
  timeoutMs?: number;
}

/** One server block of an account, as the failure sorter sees it. */
interface ServerBlock {
  key: 'incoming' | 'outgoing';
  kind: 'pop3' | 'imap' | 'smtp';
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
}

/** Codes of `err` and its causes (`code`, nodemailer's `originalCode`), and whether a DNS lookup failed. */
function networkCodes(err: unknown): { codes: Set<string>; dns: boolean } {
  const codes = new Set<string>();
  let dns = false;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { code?: unknown; originalCode?: unknown; syscall?: unknown };
    for (const c of [x.code, x.originalCode]) if (typeof c === 'string') codes.add(c);
    if (x.syscall === 'getaddrinfo') dns = true;
  }
  for (const c of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EDNS']) if (codes.has(c)) dns = true;
  return { codes, dns };
}

/** Why `host:port` could not be reached at all, or undefined when the failure is something else. */
function unreachableText(err: unknown, host: string, port: number): string | undefined {
  const { codes, dns } = networkCodes(err);
  const has = (...c: string[]) => c.some((x) => codes.has(x));
  if (dns)
    return codes.has('EAI_AGAIN')
      ? `cannot resolve ${host} now (DNS lookup failed for the moment)`
      : `cannot resolve ${host} (no such host name in DNS)`;
  if (has('ECONNREFUSED')) return `${host}:${port} refused the connection (nothing listens on that port)`;
  if (has('EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN')) return `no route to ${host} (network down?)`;
  const message = errorMessage(err);
  if (
    has('CONNECT_TIMEOUT') ||
    (has('ETIMEDOUT') && /no connection within|connection timeout|connect ETIMEDOUT/i.test(message))
  )
    return `no answer from ${host}:${port} (a firewall, or the network is down)`;
  return undefined;
}

/** `account "a" incoming.password: ...` (or `accounts.a.incoming.tlsCa: ...`) as `accounts[0].incoming.password: ...`. */
function withConfigPath(message: string, acc: AccountConfig, index: number, fallbackKey: string): string {
  const at = `accounts[${index}]`;
  for (const prefix of [`account "${acc.id}" `, `accounts.${acc.id}.`])
    if (message.startsWith(prefix)) return `${at}.${message.slice(prefix.length)}`;
  return `${at}.${fallbackKey}: ${message}`;
}

/** The line for a failed check of one server block (see the module comment). */
function failureLine(err: unknown, acc: AccountConfig, index: number, where: string, s: ServerBlock): CheckLine {
  const config = (text: string): CheckLine => ({ ok: false, config: true, text: `${where}: ${text}` });
  if (err instanceof ConfigError) return config(withConfigPath(err.message, acc, index, `${s.key}.password`));
  if (err instanceof AuthError && err.code === 'EOAUTH_SIGNIN')
    return config(`accounts[${index}].${s.key}.password: ${err.message}`);
  const modeHint = tlsModeHint(err, {
    tls: s.tls,
    where: `${s.host}:${s.port}`,
    ports: { implicit: defaultPort(s.kind, 'implicit'), plain: defaultPort(s.kind, 'starttls') },
  });
  if (modeHint) return config(`accounts[${index}].${s.key}.tls: ${s.tls}, but ${modeHint}`);
  const unreachable = unreachableText(err, s.host, s.port);
  if (s.key === 'outgoing' && (unreachable || scopeOf(err) === 'connection'))
    return {
      ok: true,
      warn: true,
      text: `${where}: ${unreachable ? `unreachable: ${unreachable}` : `failing for now (${shortTlsMessage(errorMessage(err))})`}; mail waits in the outbox`,
    };
  if (unreachable) return { ok: false, text: `${where}: unreachable: ${unreachable}` };
  return { ok: false, text: `${where}: ${shortTlsMessage(messageWithTlsHint(err))}` };
}

/** Log in to the account's incoming server and report. */
export async function checkAccount(acc: AccountConfig, o: CheckOptions): Promise<CheckLine> {
  const inc = acc.incoming;
  const where = `${acc.id}: ${inc.protocol} ${inc.host}:${inc.port} (tls ${inc.tls}) as ${inc.username}`;
  const log = o.log;
  try {
    const ep = await incomingEndpoint(acc, o.dataDir === undefined ? undefined : { dataDir: o.dataDir, log });
    ep.timeoutMs = o.timeoutMs ?? 20_000;
    ep.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    if (inc.protocol === 'pop3') {
      const c = await Pop3Client.connect({
        host: ep.host,
        port: ep.port,
        tls: ep.tls,
        ca: ep.ca,
        timeoutMs: ep.timeoutMs,
        connectTimeoutMs: ep.connectTimeoutMs,
        log,
      });
      try {
        await pop3Login(c, ep);
        const st = await c.stat();
        await c.quit();
        return { ok: true, text: `${where}: login ok, ${st.count} messages on the server` };
      } finally {
        c.close();
      }
    }
    const c = createImapClient(ep, log);
    c.on('error', () => undefined);
    try {
      await c.connect();
      const status = await c.status('INBOX', { messages: true });
      await c.logout();
      const count = status ? (status.messages ?? 0) : 0;
      return { ok: true, text: `${where}: login ok, ${count} messages in INBOX` };
    } finally {
      c.close();
    }
  } catch (err) {
    return failureLine(err, acc, o.index, where, { key: 'incoming', kind: inc.protocol, ...inc });
  }
}

/** Connect and log in to the account's outgoing SMTP server (no mail sent); undefined without one. */
export async function checkOutgoing(acc: AccountConfig, o: CheckOptions): Promise<CheckLine | undefined> {
  const out = acc.outgoing;
  if (!out) return undefined;
  const where = `${acc.id}: smtp ${out.host}:${out.port} (tls ${out.tls}) as ${out.username}`;
  const log = o.log;
  let sender: NodemailerSender | undefined;
  try {
    const ep = await outgoingEndpoint(acc, o.dataDir === undefined ? undefined : { dataDir: o.dataDir, log });
    if (!ep) return undefined; // only without `outgoing`, handled above
    const connect = o.connectTimeoutMs ?? 10_000;
    sender = new NodemailerSender({
      endpoint: ep,
      log,
      timeouts: { connect, greeting: connect, socket: o.timeoutMs ?? 20_000 },
    });
    await sender.verify();
    return { ok: true, text: `${where}: login ok` };
  } catch (err) {
    return failureLine(err, acc, o.index, where, { key: 'outgoing', kind: 'smtp', ...out });
  } finally {
    sender?.close();
  }
}

/** A warning when the config asks for other UIDLs than the account's cache serves (`cache/uidl-mode.ts`). */
export async function checkUidlMode(acc: AccountConfig, dataDir: string): Promise<CheckLine | undefined> {
  const wanted = acc.incoming.protocol === 'pop3' ? acc.incoming.uidls : 'local';
  const recorded = await recordedUidlMode(dataDir, acc.id);
  if (recorded === undefined || recorded === wanted) return undefined;
  return { ok: true, warn: true, text: `${acc.id}: ${uidlModeWarning(wanted, recorded)}` };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Runs every check of `cfg` (read from `file`) and writes the report to `out`. Resolves with
 * the exit code: 78 when a line is a configuration problem, else 1 when one failed, else 0.
 */
export async function runCheck(
  cfg: Config,
  file: string,
  out: NodeJS.WritableStream,
  o: Partial<Omit<CheckOptions, 'index' | 'dataDir'>> = {},
): Promise<number> {
  const log = o.log ?? pino({ level: 'silent' });
  const [ports, exposure, dataDir, servers] = await Promise.all([
    lockHolder(cfg.dataDir).then((pid) => listenPortProblems(cfg, pid)),
    exposedSecretsWarning(file, cfg),
    dataDirProblem(cfg.dataDir),
    Promise.all(
      cfg.accounts.map(async (acc, index) => {
        const opts = { ...o, log, index, dataDir: cfg.dataDir };
        return [await checkAccount(acc, opts), await checkOutgoing(acc, opts), await checkUidlMode(acc, cfg.dataDir)];
      }),
    ),
  ]);
  const lines: CheckLine[] = [
    ...ports.map((text) => ({ ok: false, config: true, text })),
    ...(dataDir?.refused ? [{ ok: false, config: true, text: dataDir.refused }] : []),
    ...servers.flat().filter((l) => l !== undefined),
    ...[exposure, legacyTlsWarning(cfg), ...cleartextUpstreamWarnings(cfg), dataDir?.loose].flatMap((text) =>
      text ? [{ ok: true, warn: true, text }] : [],
    ),
  ];
  const problems = lines.filter((l) => l.config).length;
  const accounts = plural(cfg.accounts.length, 'account');
  out.write(
    problems
      ? `config ${file}: ${plural(problems, 'configuration problem')} (${accounts}); fix the keys named below\n`
      : `config ${file}: ok (${accounts})\n`,
  );
  for (const l of lines) out.write(`${l.ok ? (l.warn ? 'warn' : 'ok  ') : 'FAIL'} ${l.text}\n`);
  return problems ? 78 : lines.every((l) => l.ok) ? 0 : 1;
}
