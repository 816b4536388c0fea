/**
 * Logging in to an upstream POP3 server: USER/PASS (RFC 1939 §7), SASL AUTH PLAIN (RFC 5034,
 * RFC 4616), and OAuth 2.0 tokens through XOAUTH2 (Google's and Microsoft's) or OAUTHBEARER
 * (RFC 7628). Each function runs one exchange on a `Pop3Connection` whose queue it already holds.
 *
 * Invariants:
 * - Credentials never reach the log: PASS and AUTH lines go out with a masked form for the trace.
 * - A refused login is classified (`classifyLoginRefusal`): only a wrong credential is an
 *   AuthError; a server that asks us to slow down (`[SYS/TEMP]`, `[LOGIN-DELAY]`, Microsoft's
 *   `Server Unavailable. 21`) is a ThrottledError, `[IN-USE]` a plain temporary Pop3ReplyError.
 * - OAuth: the token always goes in the two-step form (`AUTH XOAUTH2`, `+`, token line), which
 *   Microsoft 365 requires and which has no 255-octet limit, so tokens over 4,096 bytes pass.
 */
import { AuthError, isThrottleText, type TemporaryError, ThrottledError } from '../../shared/errors.js';
import { hasResponseCode, type StatusLine } from '../../shared/pop3-wire/index.js';
import { type Pop3Connection, Pop3ReplyError } from './connection.js';

/** The SASL mechanisms that carry an OAuth 2.0 access token. */
export type OAuthMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** What a refused login means: a wrong credential, a server asking us to slow down, or a passing state. */
export type LoginRefusal = 'auth' | 'throttled' | 'temporary';

/**
 * Classifies an `-ERR` answer to USER/PASS/AUTH (or the greeting) by its RFC 2449 §8.1 / RFC 3206
 * response code, else by its text:
 *
 * | reply                                                        | meaning     |
 * |--------------------------------------------------------------|-------------|
 * | `[IN-USE]` (another session holds the maildrop)              | temporary   |
 * | `[AUTH]` (the credentials are wrong)                         | auth        |
 * | `[SYS/TEMP]`, `[LOGIN-DELAY]`                                | throttled   |
 * | `[SYS/PERM]` (the server's failure, not the password's)      | temporary   |
 * | other text: "Server Unavailable", "try again later", "too many …" | throttled |
 * | anything else (a plain refusal)                              | auth        |
 */
export function classifyLoginRefusal(st: StatusLine): LoginRefusal {
  if (hasResponseCode(st, 'IN-USE')) return 'temporary';
  if (hasResponseCode(st, 'AUTH')) return 'auth';
  if (hasResponseCode(st, 'SYS/TEMP') || hasResponseCode(st, 'LOGIN-DELAY')) return 'throttled';
  if (hasResponseCode(st, 'SYS')) return 'temporary';
  if (isThrottleText(st.text)) return 'throttled';
  return 'auth';
}

/** The JSON error of an OAuth SASL challenge (RFC 7628 §3.2.2), as short text; '' if unreadable. */
function oauthErrorDetail(challenge: string): string {
  try {
    const v = JSON.parse(Buffer.from(challenge, 'base64').toString('utf8')) as Record<string, unknown>;
    return Object.entries(v)
      .filter(([, x]) => typeof x === 'string' || typeof x === 'number')
      .map(([k, x]) => `${k} ${String(x).slice(0, 200)}`)
      .join(', ');
  } catch {
    return '';
  }
}

/** Upper-case SASL mechanisms from CAPA (RFC 2449 §6.3); empty when none were announced. */
function saslMechanisms(capabilities: ReadonlyMap<string, string[]>): string[] {
  return (capabilities.get('SASL') ?? []).map((m) => m.toUpperCase());
}

/** Logs in with AUTH PLAIN when SASL PLAIN is offered (RFC 5034), else USER/PASS (RFC 1939 §7). */
export async function loginPassword(
  conn: Pop3Connection,
  capabilities: ReadonlyMap<string, string[]>,
  user: string,
  pass: string,
): Promise<void> {
  if (/[\r\n\0]/.test(user) || /[\r\n\0]/.test(pass)) {
    throw new AuthError(`${conn.where}: user name or password contains CR, LF or NUL`, { code: 'EAUTH' });
  }
  if (saslMechanisms(capabilities).includes('PLAIN')) return authPlain(conn, user, pass);
  await loginStep(conn, `USER ${user}`, 'USER');
  await loginStep(conn, `PASS ${pass}`, 'PASS ****');
}

/**
 * Logs in with an OAuth 2.0 access token. The mechanism comes from CAPA SASL: XOAUTH2 when
 * offered, since it is what Microsoft 365 (its only one) and Gmail implement, else
 * OAUTHBEARER (RFC 7628); with no SASL list, XOAUTH2 is tried. `mechanism` forces one.
 */
export async function loginOAuth(
  conn: Pop3Connection,
  capabilities: ReadonlyMap<string, string[]>,
  user: string,
  accessToken: string,
  mechanism?: OAuthMechanism,
): Promise<void> {
  if (/[\r\n\0\x01]/.test(user) || /[\s\0\x01]/.test(accessToken)) {
    throw new AuthError(`${conn.where}: user name or access token contains a control character`, { code: 'EAUTH' });
  }
  const sasl = saslMechanisms(capabilities);
  const mech = mechanism ?? (sasl.includes('XOAUTH2') || !sasl.includes('OAUTHBEARER') ? 'XOAUTH2' : 'OAUTHBEARER');
  return authOAuth(conn, mech, user, accessToken);
}

async function authPlain(conn: Pop3Connection, user: string, pass: string): Promise<void> {
  // RFC 5034 §4 / RFC 4616: authzid NUL authcid NUL passwd; initial response unless the
  // command would exceed 255 octets, in which case it follows an empty challenge.
  const token = Buffer.from(`\0${user}\0${pass}`, 'utf8').toString('base64');
  let st: StatusLine;
  if (`AUTH PLAIN ${token}\r\n`.length <= 255) {
    st = await conn.command(`AUTH PLAIN ${token}`, 'AUTH PLAIN ****');
  } else {
    st = await conn.command('AUTH PLAIN');
    if (st.kind === 'continue') st = await conn.command(token, '****');
  }
  if (st.kind === 'continue') {
    await conn.command('*'); // cancel an exchange we cannot continue (RFC 5034 §4)
    throw new AuthError(`${conn.where}: AUTH PLAIN asked for more than one response`, { code: 'EAUTH' });
  }
  if (st.kind !== 'ok') throw loginError(conn, 'AUTH PLAIN', st);
}

async function authOAuth(conn: Pop3Connection, mech: OAuthMechanism, user: string, token: string): Promise<void> {
  // XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A (Google's and Microsoft's format);
  // OAUTHBEARER: RFC 7628 §3.1 gs2-header "n,a=user," ^A "auth=Bearer " token ^A ^A.
  const payload =
    mech === 'XOAUTH2'
      ? `user=${user}\x01auth=Bearer ${token}\x01\x01`
      : `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01auth=Bearer ${token}\x01\x01`;
  let st = await conn.command(`AUTH ${mech}`); // RFC 5034 §4, in two steps: no initial response
  if (st.kind === 'continue') st = await conn.command(Buffer.from(payload, 'utf8').toString('base64'), '****');
  if (st.kind === 'continue') {
    // RFC 7628 §3.2.3: a failure comes as a challenge with a JSON error; answer it (OAUTHBEARER:
    // a single ^A; XOAUTH2: an empty line) and the server ends with -ERR.
    const detail = oauthErrorDetail(st.text);
    st = await conn.command(mech === 'OAUTHBEARER' ? 'AQ==' : '');
    if (st.kind === 'continue') st = await conn.command('*');
    const e = loginError(conn, `AUTH ${mech}`, st.kind === 'ok' ? { kind: 'err', text: 'unexpected +OK' } : st);
    if (e instanceof AuthError) throw new AuthError(`${e.message}${detail ? ` (${detail})` : ''}`, { code: 'EAUTH' });
    throw e;
  }
  if (st.kind !== 'ok') throw loginError(conn, `AUTH ${mech}`, st);
}

async function loginStep(conn: Pop3Connection, line: string, masked: string): Promise<void> {
  const st = await conn.command(line, masked);
  if (st.kind !== 'ok') throw loginError(conn, masked, st);
}

/** A refused login, classified (`classifyLoginRefusal`), with the server's words. */
function loginError(conn: Pop3Connection, command: string, st: StatusLine): TemporaryError {
  const kind = classifyLoginRefusal(st);
  const code = st.code ? `[${st.code}] ` : '';
  const words = `-ERR ${code}${st.text}`.trimEnd();
  if (kind === 'throttled')
    return new ThrottledError(`${conn.where}: login refused for now: ${words}`, {
      cause: new Pop3ReplyError(command, st),
    });
  if (kind === 'temporary') return new Pop3ReplyError(command, st);
  return new AuthError(`${conn.where}: login refused: ${words}`, { code: 'EAUTH' });
}
