/**
 * Handlers valid before login (RFC 1939 §4 and §7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * AUTH PLAIN), plus QUIT and CAPA, which are valid in both states.
 */
import type { LoginOutcome, SessionContext } from '../types.js';
import { maildropOf, requiredArg } from './guarantees.js';

/** RFC 2449 §5 CAPA: honest capabilities; STLS only when it can be used now (fetchmail upgrades whenever offered). */
export async function CAPA(s: SessionContext): Promise<void> {
  const caps = ['TOP', 'UIDL', 'USER', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'EXPIRE NEVER', 'LOGIN-DELAY 0'];
  if (s.loginInClearRefused)
    caps.splice(caps.indexOf('USER'), 1); // RFC 2595 §4: no login offered in clear
  else if (s.advertiseSaslPlain || s.secure) caps.push('SASL PLAIN');
  if (s.canStartTls) caps.push('STLS');
  caps.push(`IMPLEMENTATION ${s.implementation}`);
  await s.reply.list('Capability list follows', caps);
}

/** RFC 1939 §6 QUIT: in TRANSACTION enters UPDATE and applies deletions; closes in any state. */
export async function QUIT(s: SessionContext): Promise<void> {
  await s.quit();
}

/** RFC 1939 §7 USER: remembered for PASS; the answer never reveals whether the user exists. */
export async function USER(s: SessionContext, args: string[]): Promise<void> {
  if (await refusedInClear(s)) return;
  s.pendingUser = requiredArg(args, 0);
  await s.reply.ok('send PASS');
}

/** RFC 1939 §7 PASS: the password may contain spaces (the rest of the line). */
export async function PASS(s: SessionContext, args: string[]): Promise<void> {
  const password = requiredArg(args, 0);
  const user = s.pendingUser;
  s.pendingUser = undefined;
  if (user === undefined) {
    await s.reply.err('send USER first');
    return;
  }
  await replyLogin(s, await s.login(user, password));
}

/** RFC 5034 AUTH: PLAIN with or without an initial response; bare AUTH lists mechanisms. */
export async function AUTH(s: SessionContext, args: string[]): Promise<void> {
  const [mechanism, initialResponse] = args;
  if (mechanism === undefined) {
    await s.reply.list('SASL mechanisms follow', ['PLAIN']); // what Outlook's probe expects
    return;
  }
  if (mechanism.toUpperCase() !== 'PLAIN') {
    await s.reply.err('unsupported authentication mechanism'); // e.g. NTLM (SPA): the client falls back
    return;
  }
  if (await refusedInClear(s)) return;
  if (initialResponse !== undefined) {
    await authPlain(s, initialResponse === '=' ? '' : initialResponse);
    return;
  }
  await s.reply.challenge('');
  s.continueWith(async (line) => {
    if (line.trim() === '*') {
      await s.reply.err('authentication cancelled'); // RFC 5034 §4
      return;
    }
    await authPlain(s, line.trim());
  });
}

/** RFC 2595 §4 STLS: only when a certificate is configured and the session is still plaintext. */
export async function STLS(s: SessionContext): Promise<void> {
  if (s.secure) {
    await s.reply.err('already using TLS');
    return;
  }
  if (!s.canStartTls) {
    await s.reply.err('STLS is not available (no certificate configured)');
    return;
  }
  await s.reply.ok('begin TLS negotiation');
  await s.startTls();
}

/**
 * A login on a plaintext connection from another machine (a listener with `allowRemote`) would
 * send the password across the network in clear: refused, STLS first (docs/guarantees.md).
 */
async function refusedInClear(s: SessionContext): Promise<boolean> {
  if (!s.loginInClearRefused) return false;
  const how = s.canStartTls ? 'use STLS first' : 'configure a certificate (listen.pop3.tls) and use STLS';
  await s.reply.err(`plaintext login from another machine refused: ${how}`);
  return true;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 4616: [authzid] NUL authcid NUL passwd; authzid must be empty or the same user. */
async function authPlain(s: SessionContext, b64: string): Promise<void> {
  if (!BASE64.test(b64)) {
    await s.reply.err('invalid base64 in AUTH PLAIN');
    return;
  }
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  const [authzid, authcid, passwd] = parts;
  if (parts.length !== 3 || authcid === undefined || passwd === undefined || (authzid !== '' && authzid !== authcid)) {
    await replyLogin(s, 'bad-credentials');
    return;
  }
  await replyLogin(s, await s.login(authcid, passwd));
}

/** The reply to PASS or AUTH, with the RFC 2449 / RFC 3206 response codes. */
async function replyLogin(s: SessionContext, outcome: LoginOutcome): Promise<void> {
  switch (outcome) {
    case 'ok': {
      const m = maildropOf(s);
      await s.reply.ok(`maildrop has ${m.count} messages (${m.octets} octets)`);
      return;
    }
    case 'bad-credentials':
      await s.reply.err('invalid user name or password', 'AUTH');
      return;
    case 'in-use':
      await s.reply.err('maildrop is in use by another session', 'IN-USE');
      return;
    case 'try-later': // throttled or too many logins at once: nothing was checked (docs/guarantees.md#local-logins)
      await s.reply.err('too many login attempts, try again later', 'SYS/TEMP');
      return;
    case 'unavailable':
      await s.reply.err('maildrop is unavailable, try again later', 'SYS/TEMP');
      return;
  }
}
