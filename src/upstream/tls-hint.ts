/**
 * What to do about a failed TLS certificate check, in one sentence the user can act on (issue
 * 6). Certificates are always verified against the system roots plus the account's `tlsCa`;
 * when that fails, the error of our POP3 client, imapflow or nodemailer gets the fix appended:
 *
 * | failure                                              | hint                                    |
 * |------------------------------------------------------|-----------------------------------------|
 * | self-signed, unknown issuer, incomplete chain        | set tlsCa to the server's CA certificate |
 * | certificate made for another name                    | use a host name the certificate lists (tlsCa cannot change that) |
 * | expired or not yet valid                             | the server's certificate or this clock  |
 *
 * The code is looked for on the error and its causes (`code`, nodemailer's `originalCode`),
 * then in the message, since the libraries wrap Node's TLS errors differently.
 */

/** Verification failures that a private or self-signed CA explains. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
]);

const UNTRUSTED_TEXT =
  /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate signature failure/i;
const NAME_TEXT = /does not match certificate's altnames|ERR_TLS_CERT_ALTNAME_INVALID/i;
const DATE_TEXT = /certificate has expired|certificate is not yet valid/i;

/** The fix for a certificate failure, or undefined when the error is not one. */
export function tlsHint(err: unknown): string | undefined {
  const codes: string[] = [];
  const texts: string[] = [];
  let names: string | undefined;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    for (const k of ['code', 'originalCode'] as const) {
      const c = (e as Record<string, unknown>)[k];
      if (typeof c === 'string') codes.push(c);
    }
    if (e instanceof Error) texts.push(e.message);
    // Node's ERR_TLS_CERT_ALTNAME_INVALID carries the peer certificate
    const san = (e as { cert?: { subjectaltname?: unknown } }).cert?.subjectaltname;
    if (typeof san === 'string' && san) names ??= san;
  }
  const text = texts.join(' ');
  if (codes.some((c) => UNTRUSTED.has(c)) || UNTRUSTED_TEXT.test(text)) {
    return 'the server certificate is not trusted: if the server uses a self-signed or private CA certificate, set tlsCa: /path/to/ca.pem for this server';
  }
  if (codes.includes('ERR_TLS_CERT_ALTNAME_INVALID') || NAME_TEXT.test(text)) {
    return `the certificate is for another host name${names ? ` (${names})` : ''}: set host to a name the certificate lists (tlsCa adds trust, not names)`;
  }
  if (codes.some((c) => c === 'CERT_HAS_EXPIRED' || c === 'CERT_NOT_YET_VALID') || DATE_TEXT.test(text)) {
    return "the certificate is outside its validity dates: check the server certificate and this machine's clock";
  }
  return undefined;
}

/** The message of `err` with the certificate hint appended when one applies. */
export function messageWithTlsHint(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = tlsHint(err);
  return hint && !message.includes('tlsCa') ? `${message}; ${hint}` : message;
}

/** `err` itself, or when a hint applies, an Error with the hint in its message (the original as cause, its code kept). */
export function withTlsHint(err: unknown): unknown {
  if (tlsHint(err) === undefined || !(err instanceof Error)) return err;
  const out = new Error(messageWithTlsHint(err), { cause: err });
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(out, { code });
  return out;
}

/** A client speaking TLS at once met a server speaking plain text first. */
const PLAIN_PEER =
  /wrong version number|packet length too long|unknown protocol|http request|ERR_SSL_WRONG_VERSION_NUMBER|ERR_SSL_PACKET_LENGTH_TOO_LONG/i;
/** The connection opened but no greeting came: the server waits for a TLS handshake. */
const NO_GREETING = /no reply to greeting|Greeting never received|Failed to receive greeting/i;
/** The server refused the upgrade to TLS, or does not offer it. */
const NO_STARTTLS = /does not support STARTTLS|Error upgrading connection with STARTTLS|\bSTLS refused\b/i;

/** The server block a hint is about. */
export interface TlsModeContext {
  tls: 'implicit' | 'starttls' | 'none';
  /** `host:port`, as the message names it. */
  where: string;
  /** The usual ports of the protocol: with TLS from the first byte, and in plain text (STARTTLS). */
  ports: { implicit: number; plain: number };
}

/**
 * One sentence naming the `tls` mode to set when `err` shows the configured one does not match
 * the server (TLS from the first byte against a plain-text port, or the other way round, or
 * STARTTLS that the server does not offer); undefined for any other failure.
 */
export function tlsModeHint(err: unknown, c: TlsModeContext): string | undefined {
  const texts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error) texts.push(e.message);
    for (const k of ['code', 'originalCode'] as const) {
      const v = (e as Record<string, unknown>)[k];
      if (typeof v === 'string') texts.push(v);
    }
  }
  const text = texts.join(' ');
  if (c.tls === 'implicit' && PLAIN_PEER.test(text))
    return `${c.where} answers in plain text, not TLS: set tls: starttls (or use the port for TLS from the first byte, usually ${c.ports.implicit})`;
  if (c.tls !== 'implicit' && NO_GREETING.test(text))
    return `${c.where} sent no greeting: it expects TLS from the first byte; set tls: implicit (or use the plain-text port, usually ${c.ports.plain})`;
  if (c.tls === 'starttls' && NO_STARTTLS.test(text))
    return `${c.where} does not offer STARTTLS: set tls: implicit with its TLS port (usually ${c.ports.implicit}), or tls: none on a trusted network`;
  return undefined;
}

/** An OpenSSL error line (`8C3D...:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/...:350:`) as its reason only. */
export function shortTlsMessage(message: string): string {
  return message
    .replace(/[0-9A-F]{6,}:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):[^\s]*/g, 'TLS error: $1')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}
