/**
 * `outgoing.saveSent`: after a successful send, append a copy of the message to a folder of
 * the account's upstream IMAP server (RFC 3501 §6.3.11 APPEND), for providers that do not keep
 * sent mail themselves (Gmail and Microsoft 365 do: leave it off there, or it is saved twice).
 *
 * The copy is the client's bytes as queued, Bcc header included (a client's own Sent copy
 * shows its Bcc recipients), flagged `\Seen`. A missing folder is created once (TRYCREATE).
 * Best effort: a failure is reported to the caller, who logs it; the send itself stands.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { UpstreamEndpoint } from '../types.js';
import { createImapClient } from './connect.js';

/** What to append where. */
export interface AppendSentOptions {
  endpoint: UpstreamEndpoint;
  folder: string;
  /** The message file. */
  file: string;
  log: Logger;
}

/** Append the file to the folder (creating it when the server says TRYCREATE). */
export async function appendToSent(o: AppendSentOptions): Promise<void> {
  const content = await readFile(o.file);
  const client = createImapClient(o.endpoint, o.log);
  client.on('error', (err: Error) => o.log.debug({ err: err.message }, 'IMAP error while saving to Sent'));
  try {
    await client.connect();
    try {
      await client.append(o.folder, content, ['\\Seen']);
    } catch (err) {
      const code = (err as { serverResponseCode?: string }).serverResponseCode;
      const text = `${(err as { responseText?: string }).responseText ?? ''} ${(err as Error).message}`;
      if (code !== 'TRYCREATE' && !/TRYCREATE|NONEXISTENT|does ?n.t exist/i.test(text)) throw err;
      await client.mailboxCreate(o.folder);
      await client.append(o.folder, content, ['\\Seen']);
    }
    await client.logout();
  } finally {
    client.close();
  }
}
