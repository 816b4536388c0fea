/**
 * The `listen` part of the configuration schema: the local POP3 and SMTP listeners the mail
 * client talks to. They listen on loopback only, unless `allowRemote: true` stands beside a host
 * that is not loopback; TLS is offered only with the user's own certificate.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { always, expect, host, listenPort, path } from './schema-fields.js';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
function isLoopbackHost(h: string): boolean {
  if (h === 'localhost') return true;
  if (isIPv4(h)) return loopback.check(h, 'ipv4');
  if (isIPv6(h)) return loopback.check(h, 'ipv6');
  return false;
}

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
    .describe(`Most ${what} connections open at once; more are refused with a temporary error until one closes.`),
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

/** The local POP3 listener's own keys: TLS and the repairs for old clients. */
const pop3Extra = {
  tls: z
    .strictObject({
      cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
      key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
      port: listenPort
        .default(1995)
        .describe(
          'Port of the implicit-TLS listener (what Outlook Express calls SSL); STLS is offered on the plain port.',
        ),
      legacy: z
        .boolean(expect('expected true or false'))
        .default(false)
        .describe('Also accept TLS 1.0/1.1 and weak ciphers, for Outlook Express; only on a trusted network.'),
    })
    .optional()
    .meta({ active: false })
    .describe('Offer STLS and an implicit-TLS port with this certificate. Without it the listener is plaintext only.'),
  workarounds: z
    .array(z.enum(['outlook-no-nuls', 'oe-ns-eoh']))
    .default(['outlook-no-nuls', 'oe-ns-eoh'])
    .describe(
      'Repairs for old clients: outlook-no-nuls sends NUL bytes as 0x80; oe-ns-eoh adds a missing empty line after the header.',
    ),
};

/** The local SMTP listener's own keys: STARTTLS with the user's certificate (never a built-in one). */
const smtpExtra = {
  tls: z
    .strictObject({
      cert: path.meta({ example: '/path/cert.pem' }).describe('PEM certificate (chain) of the listener.'),
      key: path.meta({ example: '/path/key.pem' }).describe('PEM private key of the certificate.'),
    })
    .optional()
    .meta({ active: false })
    .describe(
      'Offer STARTTLS with this certificate. Without it the listener is plaintext only (AUTH is still allowed on loopback).',
    ),
};

/** `listen`: both local listeners. */
export const listen = z
  .strictObject({
    pop3: z
      .strictObject({ ...listenerShape(1110, 'POP3'), ...pop3Extra })
      .superRefine(refuseRemote, always)
      .prefault({})
      .describe('The local POP3 listener your mail client reads from.'),
    smtp: z
      .strictObject({ ...listenerShape(1025, 'SMTP'), ...smtpExtra })
      .superRefine(refuseRemote, always)
      .prefault({})
      .describe('The local SMTP listener your mail client sends through.'),
  })
  .prefault({})
  .describe('Local listeners. A host that is not loopback is refused unless allowRemote: true is set beside it.');
