/**
 * NOT_AUTHENTICATED commands (RFC 3501 §6.2): STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 4616,
 * with SASL-IR RFC 4959). Credentials are checked by the session through `../../local-auth.ts`
 * (throttle included); they are never logged (the table marks both commands sensitive).
 */

import { parseAuthenticate, parseLogin, parseNoArgs } from '../command-args.js';
import type { Command } from '../command-reader.js';
import { BadCommand, type HandlerResult, no, parsed, type Reply, type SessionContext } from '../types.js';

export function starttls(s: SessionContext, cmd: Command): Reply {
  parsed(parseNoArgs(cmd.args));
  if (!s.canStartTls) return no(s.secure ? 'TLS is already active' : 'STARTTLS is not available');
  return { status: 'OK', text: 'begin TLS negotiation now', after: () => s.startTls() };
}

export function login(s: SessionContext, cmd: Command): Promise<Reply> | Reply {
  const { user, password } = parsed(parseLogin(cmd.args));
  if (s.loginDisabled) return no('use STARTTLS first', 'PRIVACYREQUIRED');
  return s.login(user, password);
}

/** Decodes a PLAIN response (`authzid NUL authcid NUL passwd`); the authzid must be empty or the authcid. */
function plainCredentials(b64: string): { user: string; password: string } {
  if (b64 === '=') throw new BadCommand('empty PLAIN response');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new BadCommand('invalid base64');
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  const [authz, user, password] = parts;
  if (parts.length !== 3 || user === undefined || password === undefined)
    throw new BadCommand('malformed PLAIN response');
  if (authz && authz !== user) throw new BadCommand('cannot act as another user');
  return { user, password };
}

export async function authenticate(s: SessionContext, cmd: Command): Promise<HandlerResult> {
  const { mechanism, initial } = parsed(parseAuthenticate(cmd.args));
  if (mechanism !== 'PLAIN') return no('unsupported mechanism', 'CANNOT');
  if (s.loginDisabled) return no('use STARTTLS first', 'PRIVACYREQUIRED');
  if (initial !== undefined) {
    const { user, password } = plainCredentials(initial);
    return s.login(user, password);
  }
  await s.send('+ ');
  s.continueWith(async (line) => {
    const text = line.toString('latin1').trim();
    let reply: Reply;
    if (text === '*') reply = { status: 'BAD', text: 'authentication cancelled' };
    else {
      try {
        const { user, password } = plainCredentials(text);
        reply = await s.login(user, password);
      } catch (err) {
        if (!(err instanceof BadCommand)) throw err;
        reply = { status: 'BAD', text: err.message };
      }
    }
    await s.finish(cmd.tag, reply);
    return 'deferred';
  });
  return 'deferred';
}
