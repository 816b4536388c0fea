/**
 * `localpost check`: try every account's upstream logins and describe each result in one line
 * (incoming, then outgoing when configured), so a user sees at once which account is
 * misconfigured and why. A failed certificate check names its fix (`tlsCa`, or the host name).
 * An outgoing server that is merely unreachable is a warning, not a failure: mail waits in the
 * outbox until it is back.
 */
import type { Logger } from 'pino';
import type { AccountConfig } from '../config/schema.js';
import { incomingEndpoint, outgoingEndpoint } from '../daemon/accounts.js';
import { errorMessage } from '../shared/errors.js';
import { createImapClient } from '../upstream/imap/connect.js';
import { Pop3Client, pop3Login } from '../upstream/pop3/client.js';
import { scopeOf } from '../upstream/smtp/classify.js';
import { NodemailerSender } from '../upstream/smtp/sender.js';
import { messageWithTlsHint } from '../upstream/tls-hint.js';

/** One line of `check` output; `warn`: worth reading, but not a failure. */
export interface CheckLine {
  ok: boolean;
  text: string;
  warn?: boolean;
}

/** Log in to the account's incoming server and report. */
export async function checkAccount(acc: AccountConfig, log: Logger, dataDir?: string): Promise<CheckLine> {
  const inc = acc.incoming;
  const where = `${acc.id}: ${inc.protocol} ${inc.host}:${inc.port} (tls ${inc.tls}) as ${inc.username}`;
  try {
    const ep = await incomingEndpoint(acc, dataDir === undefined ? undefined : { dataDir, log });
    ep.timeoutMs = 20_000;
    ep.connectTimeoutMs = 10_000;
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
    return { ok: false, text: `${where}: ${messageWithTlsHint(err)}` };
  }
}

/** Connect and log in to the account's outgoing SMTP server (no mail sent); undefined without one. */
export async function checkOutgoing(acc: AccountConfig, log: Logger, dataDir?: string): Promise<CheckLine | undefined> {
  const out = acc.outgoing;
  if (!out) return undefined;
  const where = `${acc.id}: smtp ${out.host}:${out.port} (tls ${out.tls}) as ${out.username}`;
  let sender: NodemailerSender | undefined;
  try {
    const ep = await outgoingEndpoint(acc, dataDir === undefined ? undefined : { dataDir, log });
    if (!ep) return undefined; // only without `outgoing`, handled above
    sender = new NodemailerSender({
      endpoint: ep,
      log,
      timeouts: { connect: 10_000, greeting: 10_000, socket: 20_000 },
    });
    await sender.verify();
    return { ok: true, text: `${where}: login ok` };
  } catch (err) {
    if (scopeOf(err) === 'connection')
      return {
        ok: true,
        warn: true,
        text: `${where}: unreachable now (${errorMessage(err)}); mail waits in the outbox`,
      };
    return { ok: false, text: `${where}: ${messageWithTlsHint(err)}` };
  } finally {
    sender?.close();
  }
}
