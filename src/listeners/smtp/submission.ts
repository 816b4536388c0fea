/**
 * What happens to a submission (invariant 7 in docs/architecture.md: 250 means durable):
 * the smtp-server handlers of the local listener.
 *
 * - `onAuth`: PLAIN or LOGIN (also on plaintext loopback, where TLS adds nothing) checked by `LocalAuth`; the
 *   login names the account whose `outgoing` server will relay the mail. Failure: 535; throttled or too many
 *   logins at once (nothing checked): 454. A PLAIN authorization identity other than the user name
 *   (acting as another user) is refused with 535; AUTH before STARTTLS from another machine
 *   (`allowRemote`) with 538: the password would cross the network in clear.
 * - `onMailFrom`: only for an account that has an outgoing server (else 550); a declared
 *   `SIZE=` over the account's limit is refused at once with 552, not after the upload. A sender
 *   that is not one of the account's addresses (`<>` included) gets 553 at once, unless the account
 *   allows any sender: the provider would refuse or rewrite it after the client has gone.
 * - `onRcptTo`: every recipient is kept; Bcc recipients exist only here.
 * - `onData`: the DATA stream goes straight into `Outbox.enqueue`; 250 is answered only after
 *   the outbox says the message and its envelope are durable. Too large: 552. A From: header
 *   address that is not the account's: 553 once DATA is read, before anything is committed. Any other local
 *   failure (disk full, I/O error): 451, and nothing is left behind. A resubmitted copy
 *   gets 250 with the earlier queue id (Outlook resends after its own timeout).
 */
import type { Logger } from 'pino';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerSession,
} from 'smtp-server';
import { type EnqueueRequest, type EnqueueResult, MessageTooLargeError } from '../../cache/outbox/outbox.js';
import { errorMessage } from '../../shared/errors.js';
import { isLoopbackHost } from '../../shared/loopback.js';
import type { LocalAuth } from '../local-auth.js';
import { fromAddresses, isOwnAddress } from './sender-address.js';

/** What the listener needs to know about an account. */
export interface SubmissionAccount {
  id: string;
  /** Largest message accepted for it (`outgoing.maxMessageSize`). */
  maxMessageSize: number;
  /** False for receive-only accounts (no `outgoing`). */
  canSend: boolean;
  /** The sender addresses it may use, lower-cased (`email` and `aliases`); undefined: any. */
  senders?: readonly string[];
}

/** The part of the outbox the listener uses. */
export interface SubmissionOutbox {
  enqueue(req: EnqueueRequest, source: AsyncIterable<Buffer>): Promise<EnqueueResult>;
}

/** Dependencies of the handlers. */
export interface SubmissionDeps {
  auth: LocalAuth;
  /** The current accounts (a function, so that a config reload is seen by new sessions). */
  accounts: () => ReadonlyMap<string, SubmissionAccount>;
  outbox: SubmissionOutbox;
  log: Logger;
  /** True once the session's client has gone (its login is then not checked). */
  gone?: (session: SMTPServerSession) => boolean;
}

type Callback = (err?: Error | null) => void;

/** Refused senders get 553 with the reason and the addresses that would do. */
class ForeignSenderError extends Error {
  readonly responseCode = 553;
}

function foreignSender(acc: SubmissionAccount, what: string, address: string): ForeignSenderError {
  const own = acc.senders?.join(', ') || 'none';
  return new ForeignSenderError(
    `Error: ${what} <${address}> is not an address of account ${acc.id} (allowed: ${own}; the account's aliases or outgoing.allowAnyFrom change this)`,
  );
}

/** An error carrying the SMTP reply code smtp-server should answer with. */
function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

/** The smtp-server handler functions for the local listener. */
export function submissionHandlers(d: SubmissionDeps) {
  const accountOf = (session: SMTPServerSession): SubmissionAccount | undefined =>
    typeof session.user === 'string' ? d.accounts().get(session.user) : undefined;

  return {
    onAuth(
      auth: SMTPServerAuthentication,
      session: SMTPServerSession,
      cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
    ): void {
      const { username, password } = auth;
      if (typeof username !== 'string' || typeof password !== 'string') {
        cb(smtpError(535, 'Error: authentication failed'));
        return;
      }
      if (auth.authzid && auth.authzid !== username) {
        d.log.info({ cid: session.id, user: username }, 'local SMTP login refused: authzid differs from the user');
        cb(
          smtpError(
            535,
            'Error: authorization identity differs from the user name (acting as another user is not supported)',
          ),
        );
        return;
      }
      if (!session.secure && !isLoopbackHost(session.remoteAddress)) {
        d.log.warn({ cid: session.id, remote: session.remoteAddress }, 'plaintext AUTH from another machine refused');
        cb(smtpError(538, 'Error: encryption required: use STARTTLS before AUTH from another machine'));
        return;
      }
      d.auth.verify(username, password, { remote: session.remoteAddress, gone: () => d.gone?.(session) ?? false }).then(
        (result) => {
          const account = result.ok ? result.accountId : undefined;
          if (!result.ok && result.reason !== 'bad-credentials') {
            d.log.info({ cid: session.id, user: username, reason: result.reason }, 'local SMTP login deferred');
            cb(smtpError(454, 'Error: too many login attempts, try again later'));
          } else if (account && d.accounts().has(account)) {
            d.log.info({ cid: session.id, user: username, account, method: auth.method }, 'local SMTP login');
            cb(null, { user: account });
          } else {
            d.log.info({ cid: session.id, user: username, method: auth.method }, 'local SMTP login refused');
            cb(smtpError(535, 'Error: invalid user name or password'));
          }
        },
        (err: unknown) => {
          d.log.error({ cid: session.id, err: errorMessage(err) }, 'local login check failed');
          cb(smtpError(454, 'Error: temporary authentication failure'));
        },
      );
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
      const acc = accountOf(session);
      if (!acc) {
        cb(smtpError(530, 'Error: authentication required'));
        return;
      }
      if (!acc.canSend) {
        cb(smtpError(550, `Error: account ${acc.id} has no outgoing server configured`));
        return;
      }
      if (acc.senders && !isOwnAddress(acc.senders, address.address)) {
        d.log.info({ cid: session.id, account: acc.id, from: address.address }, 'foreign MAIL FROM refused');
        cb(foreignSender(acc, 'sender', address.address));
        return;
      }
      const args = address.args || {};
      const declared = Number(args.SIZE ?? 0);
      if (declared > acc.maxMessageSize) {
        cb(smtpError(552, `Error: message size ${declared} exceeds the limit of ${acc.maxMessageSize} bytes`));
        return;
      }
      cb();
    },

    onRcptTo(_address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
      cb(accountOf(session) ? null : smtpError(530, 'Error: authentication required'));
    },

    onData(
      stream: SMTPServerDataStream,
      session: SMTPServerSession,
      cb: (err?: Error | null, message?: string) => void,
    ): void {
      const acc = accountOf(session);
      const mailFrom = session.envelope.mailFrom;
      if (!acc || !mailFrom) {
        stream.resume();
        cb(smtpError(503, 'Error: no mail transaction'));
        return;
      }
      const req: EnqueueRequest = {
        account: acc.id,
        from: mailFrom.address,
        to: session.envelope.rcptTo.map((r) => r.address),
        maxBytes: acc.maxMessageSize,
      };
      const own = acc.senders;
      if (own) {
        req.checkHeader = (header) => {
          const foreign = fromAddresses(header).find((a) => !isOwnAddress(own, a));
          return foreign === undefined ? undefined : foreignSender(acc, 'From: header address', foreign);
        };
      }
      d.outbox.enqueue(req, stream).then(
        (r) => {
          cb(null, r.duplicate ? `OK: already queued as ${r.id}` : `OK: queued as ${r.id}`);
        },
        (err: unknown) => {
          if (stream.readable) stream.resume(); // smtp-server answers only once the stream has ended
          if (err instanceof ForeignSenderError) {
            d.log.info({ cid: session.id, account: acc.id, err: err.message }, 'foreign From: header refused');
            cb(err);
            return;
          }
          if (err instanceof MessageTooLargeError) {
            cb(smtpError(552, `Error: message exceeds the limit of ${err.limit} bytes`));
            return;
          }
          d.log.error(
            { cid: session.id, account: acc.id, err: errorMessage(err) },
            'could not queue a submitted message: answered 451',
          );
          cb(smtpError(451, 'Error: local queue failure, try again later'));
        },
      );
    },
  };
}
