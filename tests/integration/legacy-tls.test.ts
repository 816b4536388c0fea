/**
 * The legacy TLS profile through `localpost start`, with real TLS 1.0 clients (`openssl s_client
 * -tls1` and Python's ssl pinned to TLS 1.0, both at OpenSSL security level 0, as an old
 * Windows client would be): by default every TLS-capable listener (POP3 implicit TLS, POP3 STLS,
 * SMTP STARTTLS) refuses them while a current client still gets TLS 1.3; with
 * `listen.*.tls.legacy: true` the same clients negotiate TLS 1.0 and log in. The upstream is a
 * closed port (offline is normal), so no testbed is needed: only the local listeners are tested.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { makeConfig, type TempConfig } from '../support/localpost.js';
import { PYTHON } from '../support/python.js';
import { type DaemonProcess, freePort, selfSignedCert, startDaemon } from '../support/smtp.js';

let cert: ReturnType<typeof selfSignedCert>;
const temps: TempConfig[] = [];
const daemons: DaemonProcess[] = [];
before(() => {
  cert = selfSignedCert();
});
after(async () => {
  for (const d of daemons) if (d.child.exitCode === null) await d.stop();
  for (const t of temps) t.cleanup();
  rmSync(cert.dir, { recursive: true, force: true });
});

interface Ports {
  pop3: number;
  pop3Tls: number;
  smtp: number;
}

/** A daemon whose POP3 (plain + implicit TLS) and SMTP listeners have `cert`, with `legacy: true` on both or unset. */
async function daemon(legacy: boolean): Promise<Ports> {
  const on = legacy ? ', legacy: true' : '';
  const block = `{ cert: ${cert.cert}, key: ${cert.key}, port: 0${on} }`;
  const smtpBlock = `{ cert: ${cert.cert}, key: ${cert.key}${on} }`;
  const t = makeConfig(
    [{ protocol: 'pop3', port: await freePort() }],
    `listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"], tls: ${block} }\n  smtp: { port: 0, hosts: ["127.0.0.1"], tls: ${smtpBlock} }\n  imap: { port: 0, hosts: ["127.0.0.1"] }\n`,
  );
  temps.push(t);
  const d = await startDaemon(t.configFile);
  daemons.push(d);
  const ready = await d.waitLog(/^POP3 listener ready$/);
  const addresses = ready.addresses as Array<{ port: number; tls: boolean }>;
  const port = (tls: boolean) => addresses.find((a) => a.tls === tls)?.port ?? 0;
  return { pop3: port(false), pop3Tls: port(true), smtp: d.smtpPort };
}

type Mode = 'implicit' | 'pop3' | 'smtp';

/** `openssl s_client` (TLS 1.0 only unless `modern`) against one listener; its exit code and what it printed. */
function sClient(port: number, mode: Mode, modern = false): Promise<{ code: number; out: string }> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', '-crlf'];
  if (!modern) args.push('-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0');
  if (mode !== 'implicit') args.push('-starttls', mode);
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin?.end('QUIT\n');
  });
}

const TLS10_LOGIN = `
import poplib, smtplib, ssl, sys
pop3_tls, pop3, smtp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
ctx.set_ciphers('DEFAULT:@SECLEVEL=0')
p = poplib.POP3_SSL('127.0.0.1', pop3_tls, context=ctx, timeout=30)
p.user('alice'); p.pass_('localpw')
print('pop3s', p.sock.version(), p.stat()[0]); p.quit()
p = poplib.POP3('127.0.0.1', pop3, timeout=30)
p.stls(context=ctx); p.user('alice'); p.pass_('localpw')
print('stls', p.sock.version(), p.stat()[0]); p.quit()
s = smtplib.SMTP('127.0.0.1', smtp, timeout=30)
s.starttls(context=ctx)
print('starttls', s.sock.version(), s.login('alice', 'localpw')[0]); s.quit()
`;

/** Python's poplib and smtplib logging in over TLS 1.0 on each listener. */
function pythonTls10(p: Ports): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      PYTHON,
      ['-c', TLS10_LOGIN, String(p.pop3Tls), String(p.pop3), String(p.smtp)],
      { timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
}

/** Per listener: what a TLS 1.0 client and a current client negotiate (`refused: <reason>` when refused). */
async function negotiated(p: Ports): Promise<Record<string, [string, string]>> {
  const outcome = ({ code, out }: { code: number; out: string }) =>
    code === 0
      ? (/Protocol version: (\S+)/.exec(out)?.[1] ?? `no protocol in: ${out}`)
      : `refused: ${/alert protocol version|no protocols available/i.exec(out)?.[0] ?? out}`;
  const ports: Array<[Mode, number]> = [
    ['implicit', p.pop3Tls],
    ['pop3', p.pop3],
    ['smtp', p.smtp],
  ];
  const out: Record<string, [string, string]> = {};
  for (const [mode, port] of ports)
    out[mode] = [outcome(await sClient(port, mode)), outcome(await sClient(port, mode, true))];
  return out;
}

describe('TLS 1.0 clients against the daemon', () => {
  test('by default every TLS listener refuses TLS 1.0; a current client gets TLS 1.3', async () => {
    const p = await daemon(false);
    const refused: [string, string] = ['refused: alert protocol version', 'TLSv1.3'];
    assert.deepEqual(await negotiated(p), { implicit: refused, pop3: refused, smtp: refused });
    await assert.rejects(pythonTls10(p));
  });

  test('with listen.*.tls.legacy every TLS listener negotiates TLS 1.0, and logins work over it', async () => {
    const p = await daemon(true);
    // current clients are not pulled down to TLS 1.0
    const both: [string, string] = ['TLSv1', 'TLSv1.3'];
    assert.deepEqual(await negotiated(p), { implicit: both, pop3: both, smtp: both });
    assert.equal(await pythonTls10(p), 'pop3s TLSv1 0\nstls TLSv1 0\nstarttls TLSv1 235\n');
  });
});
