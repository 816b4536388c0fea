/**
 * The `listen` part of the configuration schema: the local POP3, IMAP and SMTP listeners the
 * mail client talks to (IMAP has the same keys as POP3, plus `enabled`; docs/imap-server.md).
 * They listen on loopback only, unless `allowRemote: true` stands beside a host that is not loopback. TLS (`tls`) is `auto` (STLS/STARTTLS with the private certificate for
 * localhost that `localpost cert` writes into the data directory, once it exists), `off`, or a
 * block naming the user's own certificate; never a built-in certificate whose key is public.
 * Such a block may set `legacy` to accept TLS 1.0 from old clients on a trusted LAN (off by default).
 */
import { z } from 'zod';
import { isLoopbackHost } from '../shared/loopback.js';
import { always, expect, host, listenPort, path } from './schema-fields.js';

const listenerShape = (defaultPort: number, what: string) => ({
  port: listenPort.default(defaultPort).describe(`TCP port of the local ${what} listener (0 picks a free port).`),
  hosts: z
    .array(host)
    .min(1, 'needs at least one address')
    .default(['127.0.0.1', '::1'])
    .describe('Addresses to listen on. Both loopback families, since `localhost` resolves to either.'),
  allowRemote: z
    .boolean(expect('expected true or false'))
    .optional()
    .meta({ example: false })
    .describe('Set to true to allow a host that is not loopback; other machines could then reach your mail.'),
  maxConnections: z
    .number(expect('expected a number'))
    .int('expected a whole number')
    .min(1)
    .max(10_000)
    .default(50)
    .describe(
      `Most ${what} connections open at once. When full, the oldest idle connection that has not logged in is closed to make room; only when none is idle is a newcomer refused with a temporary error. Above half of it, a new connection has 10 s to log in instead of a minute.`,
    ),
  maxConnectionsPerAddress: z
    .number(expect('expected a number'))
    .int('expected a whole number')
    .min(1)
    .max(10_000)
    .default(10)
    .describe(
      `Most ${what} connections from one client address other than loopback (a LAN host, with allowRemote), with the same rule: its oldest idle connection that has not logged in makes room first.`,
    ),
});

/** Refuses a host that is not loopback unless `allowRemote: true` is beside it. */
function refuseRemote(l: { hosts?: unknown; allowRemote?: unknown }, ctx: z.RefinementCtx): void {
  if (!l || typeof l !== 'object' || l.allowRemote === true || !Array.isArray(l.hosts)) return;
  l.hosts.forEach((h: unknown, i: number) => {
    if (typeof h === 'string' && !isLoopbackHost(h)) {
      ctx.addIssue({
        code: 'custom',
        path: ['hosts', i],
        message: `${h} is not a loopback address; set allowRemote: true beside hosts to listen on it`,
      });
    }
  });
}

/** The TLS modes of a listener that need no certificate file in the config. */
const LISTEN_TLS_MODES = ['auto', 'off'] as const;

/**
 * `auto`, `off`, or the block of the user's own certificate. A string is checked as a mode and a
 * mapping as the block, so that a wrong block reports its own keys (`tls.key: required`), which
 * a zod union would only call "invalid input". The renderers of the example and the reference
 * find the block in the `block` metadata.
 */
function modeOrBlock<B extends z.ZodType>(block: B) {
  type Setting = (typeof LISTEN_TLS_MODES)[number] | z.output<B>;
  return z
    .unknown()
    .transform((v, ctx): Setting => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        if (LISTEN_TLS_MODES.some((m) => m === v)) return v as Setting;
        ctx.issues.push({ code: 'custom', input: v, message: 'expected auto, off, or a mapping with cert and key' });
        return z.NEVER;
      }
      const r = block.safeParse(v);
      if (r.success) return r.data;
      for (const issue of r.error.issues) ctx.issues.push({ ...issue, input: v } as z.core.$ZodRawIssue);
      return z.NEVER;
    })
    .default('auto')
    .meta({ block });
}

/**
 * `tls.legacy` of every listener block, one switch per listener (POP3 since the start, SMTP too):
 * the profile is built in `listeners/tls-options.ts`; `localpost check` and `start` warn when on.
 */
const legacyTls = z
  .boolean(expect('expected true or false'))
  .default(false)
  .describe(
    'Also accept TLS 1.0/1.1 and weak ciphers (OpenSSL security level 0), for old clients without TLS 1.2; only on a trusted network (docs/clients.md).',
  );

/** The TLS block of a reading listener (POP3, IMAP): the user's certificate and the implicit-TLS port. */
function ownCertificate(tlsPort: number, portText: string) {
  return z.strictObject({
    cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
    key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
    port: listenPort.default(tlsPort).describe(portText),
    legacy: legacyTls,
  });
}

/** The local POP3 listener's own keys: TLS and the repairs for old clients. */
const pop3Extra = {
  tls: modeOrBlock(
    ownCertificate(
      1995,
      'Port of the implicit-TLS listener (what Outlook Express calls SSL); STLS is offered on the plain port.',
    ),
  ).describe(
    "auto: offer STLS with localpost's own certificate for localhost once `localpost cert` made one (plaintext until then); off: plaintext only; or a block with your own certificate, which also opens an implicit-TLS port. Plaintext logins from this machine keep working in every case; from another machine (allowRemote) they are refused until STLS.",
  ),
  workarounds: z
    .array(z.enum(['outlook-no-nuls', 'oe-ns-eoh']))
    .default(['outlook-no-nuls', 'oe-ns-eoh'])
    .describe(
      'Repairs for old clients: outlook-no-nuls sends NUL bytes as 0x80; oe-ns-eoh adds a missing empty line after the header.',
    ),
};

/** The local IMAP listener's own keys: STARTTLS or implicit TLS, and whether it runs at all. */
const imapExtra = {
  enabled: z
    .boolean(expect('expected true or false'))
    .default(true)
    .describe('false: no local IMAP listener (POP3 and SMTP only).'),
  tls: modeOrBlock(
    ownCertificate(1993, 'Port of the implicit-TLS (IMAPS) listener; STARTTLS is offered on the plain port.'),
  ).describe(
    "auto: offer STARTTLS with localpost's own certificate for localhost once `localpost cert` made one (plaintext until then); off: plaintext only; or a block with your own certificate, which also opens an implicit-TLS port. Plaintext logins from this machine keep working in every case; from another machine (allowRemote) they are refused until STARTTLS.",
  ),
};

/** The local SMTP listener's own keys: STARTTLS (and its legacy profile). */
const smtpExtra = {
  tls: modeOrBlock(
    z.strictObject({
      cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
      key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
      legacy: legacyTls,
    }),
  ).describe(
    "auto: offer STARTTLS with localpost's own certificate for localhost once `localpost cert` made one (plaintext until then); off: plaintext only; or a block with your own certificate. AUTH is allowed without TLS on loopback; from another machine (allowRemote) only after STARTTLS.",
  ),
};

/** `listen`: the local listeners. */
export const listen = z
  .strictObject({
    pop3: z
      .strictObject({ ...listenerShape(1110, 'POP3'), ...pop3Extra })
      .superRefine(refuseRemote, always)
      .prefault({})
      .describe('The local POP3 listener your mail client reads from.'),
    imap: z
      .strictObject({ ...listenerShape(1143, 'IMAP'), ...imapExtra })
      .superRefine(refuseRemote, always)
      .prefault({})
      .describe('The local IMAP listener: every cached folder of each account, changes carried upstream.'),
    smtp: z
      .strictObject({ ...listenerShape(1025, 'SMTP'), ...smtpExtra })
      .superRefine(refuseRemote, always)
      .prefault({})
      .describe('The local SMTP listener your mail client sends through.'),
  })
  .prefault({})
  .describe('Local listeners. A host that is not loopback is refused unless allowRemote: true is set beside it.');
