/**
 * Real clients against the local POP3 server: Python's poplib (every
 * command, STLS and implicit TLS), curl's pop3:// (LIST, UIDL, RETR, and its AUTH PLAIN
 * continuation), fetchmail in keep mode (a second run fetches nothing) and in delete mode
 * (TOP n 99999999 + DELE: the maildrop empties into Trash).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { INBOX, TRASH } from '../../src/cache/message-store.js';
import { type FetchmailHome, fetchmailHome } from '../support/fetchmail.js';
import { connected, type Pop3Fixture, sampleMessage, startPop3 } from '../support/pop3-server.js';
import { selfSignedCert } from '../support/smtp.js';

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-clients-'));
const fixtures: Pop3Fixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
  rmSync(tmp, { recursive: true, force: true });
});
async function fixture(o: Parameters<typeof startPop3>[0]): Promise<Pop3Fixture> {
  const fx = await startPop3(o);
  fixtures.push(fx);
  return fx;
}

/** Messages with what trips clients up: leading dots, bare LF, 8-bit, NUL, a long line, no final newline. */
const CORPUS: Buffer[] = [
  Buffer.from(sampleMessage(1), 'latin1'),
  Buffer.from('Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n', 'latin1'),
  Buffer.from('Subject: bare lf\n\nline one\nline two\n', 'latin1'),
  Buffer.from('Subject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n\r\n\xe9t\xe9 \xff\x80\r\n', 'latin1'),
  Buffer.from('Subject: nul\r\n\r\na\0b\r\n', 'latin1'),
  Buffer.from(`Subject: long\r\n\r\n${'x'.repeat(20_000)}\r\n`, 'latin1'),
  Buffer.from('Subject: no final newline\r\n\r\nlast line', 'latin1'),
];

/** RETR's bytes after a client un-stuffs them: CRLF line ends, final CRLF, NUL → 0x80. */
function wire(stored: Buffer): Buffer {
  const s = stored.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/\0/g, '\x80');
  return Buffer.from(s.endsWith('\r\n') ? s : `${s}\r\n`, 'latin1');
}

const POPLIB_ALL = String.raw`
import poplib, json, sys, base64, ssl
poplib._MAXLINE = 1 << 20
port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
if mode == 'implicit':
    p = poplib.POP3_SSL('127.0.0.1', port, context=ctx)
else:
    p = poplib.POP3('127.0.0.1', port)
out = {'welcome': p.getwelcome().decode()}
if mode == 'stls':
    out['capa_before'] = sorted(p.capa().keys())
    p.stls(context=ctx)
out['capa'] = {k: v for k, v in p.capa().items()}
p.user('alice'); out['pass'] = p.pass_('localpw').decode()
out['stat'] = list(p.stat())
resp, lines, octets = p.list(); out['list'] = [l.decode() for l in lines]
out['list1'] = p.list(1).decode()
resp, lines, octets = p.uidl(); out['uidl'] = [l.decode() for l in lines]
out['uidl2'] = p.uidl(2).decode()
resp, lines, octets = p.top(1, 0); out['top'] = base64.b64encode(b'\r\n'.join(lines) + b'\r\n').decode()
out['retr'] = []
for i in range(1, out['stat'][0] + 1):
    resp, lines, octets = p.retr(i)
    out['retr'].append({'resp': resp.decode('latin1'), 'body': base64.b64encode(b'\r\n'.join(lines) + b'\r\n').decode(), 'octets': octets})
out['noop'] = p.noop().decode()
out['dele'] = p.dele(1).decode()
try:
    p.retr(1)
except poplib.error_proto as e:
    out['retr_deleted'] = str(e)
out['rset'] = p.rset().decode()
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

/** What POPLIB_ALL prints. */
interface PoplibRun {
  welcome: string;
  /** Only in `stls` mode. */
  capa_before?: string[];
  capa: Record<string, string[]>;
  pass: string;
  stat: number[];
  list: string[];
  list1: string;
  uidl: string[];
  uidl2: string;
  top: string;
  retr: Array<{ resp: string; body: string; octets: number }>;
  noop: string;
  dele: string;
  /** Absent when RETR of a deleted message succeeded. */
  retr_deleted?: string;
  rset: string;
  quit: string;
}

async function poplibAll(port: number, mode: 'plain' | 'stls' | 'implicit'): Promise<PoplibRun> {
  const { stdout } = await run('python3', ['-c', POPLIB_ALL, String(port), mode], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as PoplibRun;
}

/** A throw-away certificate for localhost whose files live under this file's temp directory. */
function makeCert(): { cert: string; key: string } {
  const made = selfSignedCert();
  const cert = path.join(tmp, `cert-${path.basename(made.dir)}.pem`);
  const key = path.join(tmp, `key-${path.basename(made.dir)}.pem`);
  renameSync(made.cert, cert);
  renameSync(made.key, key);
  rmSync(made.dir, { recursive: true, force: true });
  return { cert, key };
}

describe('Python poplib', () => {
  test('every command, byte-exact bodies, LIST sizes equal to what RETR sends', async () => {
    const fx = await fixture({ messages: CORPUS });
    const out = await poplibAll(fx.port, 'plain');
    assert.match(out.welcome, /^\+OK/);
    assert.ok('UIDL' in out.capa && 'TOP' in out.capa && 'PIPELINING' in out.capa && !('STLS' in out.capa));
    assert.match(out.pass, /^\+OK maildrop has 7 messages/);
    assert.equal(out.stat[0], CORPUS.length);
    const sizes = out.list.map((l: string) => Number(l.split(' ')[1]));
    assert.equal(
      out.stat[1],
      sizes.reduce((a: number, b: number) => a + b, 0),
    );
    assert.equal(out.list1, `+OK 1 ${sizes[0]}`);
    assert.deepEqual(
      out.uidl,
      CORPUS.map((_, i) => `${i + 1} ${(i + 1).toString(16).toUpperCase().padStart(8, '0')}`),
    );
    assert.equal(out.uidl2, '+OK 2 00000002');
    assert.equal(Buffer.from(out.top, 'base64').toString(), 'From: sender1@example.test\r\nSubject: test 1\r\n\r\n');
    out.retr.forEach((r: { resp: string; body: string }, i: number) => {
      const got = Buffer.from(r.body, 'base64');
      assert.ok(got.equals(wire(CORPUS[i]!)), `message ${i + 1}`);
      assert.equal(got.length, sizes[i], `LIST size of message ${i + 1}`);
      assert.equal(r.resp, `+OK ${sizes[i]} octets`);
    });
    assert.match(out.retr_deleted ?? '(RETR succeeded)', /-ERR message 1 already deleted/);
    assert.match(out.rset, /^\+OK/);
    assert.match(out.quit, /^\+OK .*0 messages deleted/);
    assert.equal(fx.cache.account('alice').list(INBOX).length, CORPUS.length);
  });

  test('stock poplib (_MAXLINE 2048) refuses the 20,000-character line, as it does with Dovecot', async () => {
    const fx = await fixture({ messages: CORPUS });
    const script = `import poplib,sys\np=poplib.POP3('127.0.0.1',int(sys.argv[1]));p.user('alice');p.pass_('localpw')\ntry:\n  p.retr(6);print('ok')\nexcept poplib.error_proto as e:\n  print(e)`;
    const { stdout } = await run('python3', ['-c', script, String(fx.port)]);
    assert.match(stdout, /line too long/);
  });

  test('STLS (with CAPA after it) and implicit TLS, only when a certificate is configured', async () => {
    const { cert, key } = makeCert();
    const fx = await fixture({ messages: CORPUS.slice(0, 2), server: { tls: { cert, key, port: 0 } } });
    const s = await poplibAll(fx.port, 'stls');
    assert.ok(s.capa_before?.includes('STLS'));
    assert.ok(!('STLS' in s.capa), 'no STLS after STLS');
    assert.deepEqual(s.capa.SASL, ['PLAIN'], 'SASL PLAIN under TLS');
    assert.ok(Buffer.from(s.retr[1]!.body, 'base64').equals(wire(CORPUS[1]!)));
    const i = await poplibAll(fx.server.tlsPort!, 'implicit');
    assert.equal(i.stat[0], 2);
    assert.ok(Buffer.from(i.retr[0]!.body, 'base64').equals(wire(CORPUS[0]!)));
  });

  test('the legacy TLS profile accepts a TLS 1.0 client (Outlook Express); the default refuses it', async () => {
    const { cert, key } = makeCert();
    const tls10 = {
      host: '127.0.0.1',
      rejectUnauthorized: false,
      minVersion: 'TLSv1' as const,
      maxVersion: 'TLSv1' as const,
      ciphers: 'DEFAULT:@SECLEVEL=0',
    };
    const greet = (port: number) =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ ...tls10, port }, () =>
          s.once('data', (b) => {
            resolve(b.toString());
            s.destroy();
          }),
        );
        s.on('error', reject);
      });
    const legacy = await fixture({ server: { tls: { cert, key, port: 0, legacy: true } } });
    assert.match(await greet(legacy.server.tlsPort!), /^\+OK/);
    const modern = await fixture({ server: { tls: { cert, key, port: 0 } } });
    await assert.rejects(greet(modern.server.tlsPort!));
  });
});

describe('curl pop3://', () => {
  test('LIST, UIDL and RETR with USER/PASS (no SASL on plaintext by default)', async () => {
    const fx = await fixture({ messages: CORPUS });
    const base = `pop3://127.0.0.1:${fx.port}`;
    const list = await run('curl', ['-sS', '-u', 'alice:localpw', `${base}/`]);
    assert.equal(list.stdout.trim().split('\r\n').length, CORPUS.length);
    const uidl = await run('curl', ['-sS', '-u', 'alice:localpw', '-X', 'UIDL', `${base}/`]);
    assert.match(uidl.stdout, /^1 00000001\r\n2 00000002\r\n/);
    for (const n of [1, 2, 3, 5, 7]) {
      const r = await run('curl', ['-sS', '-u', 'alice:localpw', `${base}/${n}`], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      });
      assert.ok((r.stdout as unknown as Buffer).equals(wire(CORPUS[n - 1]!)), `RETR ${n}`);
    }
  });

  test('AUTH PLAIN as a continuation when SASL PLAIN is advertised', async () => {
    const fx = await fixture({ messages: CORPUS, server: { advertiseSaslPlain: true } });
    const r = await run('curl', ['-sS', '-v', '-u', 'alice:localpw', `pop3://127.0.0.1:${fx.port}/2`], {
      encoding: 'buffer',
    });
    const trace = (r.stderr as unknown as Buffer).toString();
    assert.match(trace, /> AUTH PLAIN\r?\n/);
    assert.match(trace, /< \+ ?\r?\n/);
    assert.match(trace, /< \+OK maildrop has 7 messages/);
    assert.ok((r.stdout as unknown as Buffer).equals(wire(CORPUS[1]!)));
    const bad = await run('curl', ['-sS', '-u', 'alice:nope', `pop3://127.0.0.1:${fx.port}/`]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((bad as { code: number }).code, 67, 'curl: login denied');
  });
});

describe('fetchmail', () => {
  function fetchmail(port: number, home: FetchmailHome, keep: boolean): Promise<{ code: number; out: string }> {
    return home.run([
      `poll 127.0.0.1 with proto POP3 port ${port} and options no dns auth password`,
      `  user "alice" there with password "localpw" is "root" here`,
      `  options ${keep ? 'keep' : 'nokeep'} sslproto '' mda "${home.deliver}"`,
    ]);
  }

  test('keep mode: everything once, a second run fetches 0 new (UIDL after LAST -ERR)', async () => {
    const fx = await fixture({ messages: CORPUS.slice(0, 5) });
    const home = fetchmailHome(tmp);
    const r1 = await fetchmail(fx.port, home, true);
    assert.equal(r1.code, 0, r1.out);
    const files = home.delivered();
    assert.equal(files.length, 5, r1.out);
    assert.match(r1.out, /LAST/);
    assert.match(r1.out, /UIDL/);
    const bodies = files.map((f) => readFileSync(path.join(home.dir, 'mail', f), 'latin1'));
    assert.ok(
      bodies.some((b) => b.includes('\n..\n.leading') || b.includes('\r\n..\r\n.leading')),
      'dot-stuffing undone by fetchmail',
    );
    const r2 = await fetchmail(fx.port, home, true);
    assert.equal(r2.code, 1, `PS_NOMAIL expected: ${r2.out}`);
    assert.equal(home.delivered().length, 5);
    assert.equal(fx.cache.account('alice').list(INBOX).length, 5, 'keep: nothing deleted');
  });

  test('delete mode: TOP n 99999999 + DELE; the maildrop empties into Trash', async () => {
    const fx = await fixture({ messages: CORPUS.slice(0, 4) });
    const home = fetchmailHome(tmp);
    const r = await fetchmail(fx.port, home, false);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /TOP 1 99999999/);
    assert.match(r.out, /DELE 4/);
    assert.equal(home.delivered().length, 4);
    const store = fx.cache.account('alice');
    assert.equal(store.list(INBOX).length, 0);
    assert.equal(store.list(TRASH).length, 4);
    const c = await connected(fx.port);
    await c.ask('USER alice');
    assert.equal(await c.ask('PASS localpw'), '+OK maildrop has 0 messages (0 octets)');
    c.close();
  });
});
