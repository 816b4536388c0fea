/**
 * `localpost check`: try every account's upstream login and describe the result in one line
 * per account, so a user sees at once which account is misconfigured and why.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../shared/errors.js';
import { createImapClient } from '../upstream/imap/connect.js';
import { Pop3Client } from '../upstream/pop3/client.js';
import { incomingEndpoint } from './accounts.js';
import type { AccountConfig } from './config/schema.js';

/** One line of `check` output. */
export interface CheckLine { ok: boolean; text: string }

/** Log in to the account's incoming server and report. */
export async function checkAccount(acc: AccountConfig, log: Logger): Promise<CheckLine> {
  const inc = acc.incoming;
  const where = `${acc.id}: ${inc.protocol} ${inc.host}:${inc.port} (tls ${inc.tls}) as ${inc.username}`;
  try {
    const ep = await incomingEndpoint(acc);
    ep.timeoutMs = 20_000;
    ep.connectTimeoutMs = 10_000;
    if (inc.protocol === 'pop3') {
      const c = await Pop3Client.connect({ host: ep.host, port: ep.port, tls: ep.tls, ca: ep.ca, timeoutMs: ep.timeoutMs, connectTimeoutMs: ep.connectTimeoutMs, log });
      try {
        await c.login(ep.username, ep.password);
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
      const count = status ? status.messages ?? 0 : 0;
      return { ok: true, text: `${where}: login ok, ${count} messages in INBOX` };
    } finally {
      c.close();
    }
  } catch (err) {
    return { ok: false, text: `${where}: ${errorMessage(err)}` };
  }
}
