/**
 * `localpost check` tells configuration problems from network failures: an unset variable, a
 * missing password file, an OAuth account not signed in, a `tls` mode that does not match the
 * port and a listener port taken are errors naming their config key and exit 78; "unreachable"
 * is kept for a refused connection or a failed DNS lookup, and names the host; nothing from the
 * logger reaches stderr. `start` on a taken port exits 78 with one line, and both warn about a
 * config file that others can read while it holds a password, and about listeners that accept
 * TLS 1.0 (`listen.*.tls.legacy`). Upstreams are in-process fakes
 * and closed loopback ports; no testbed.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import pino from 'pino';
import { checkAccount, checkOutgoing } from '../../src/cli/check.js';
import { cleartextUpstreamWarnings, exposedSecretsWarning, legacyTlsWarning } from '../../src/config/exposure.js';
import { parseConfigText } from '../../src/config/load.js';
import { tlsModeHint } from '../../src/upstream/tls-hint.js';
import { startFakePop3 } from '../fakes/fake-pop3.js';
import { startFakeSmtp } from '../fakes/fake-smtp.js';
import { runCli, type TempConfig, tempConfig } from '../support/localpost.js';
import { selfSignedCert } from '../support/smtp.js';

const log = pino({ level: 'silent' });
const temps: TempConfig[] = [];
after(() => {
  for (const t of temps) t.cleanup();
});

/** A loopback port that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A listener that holds a port for the test (the process holding it is this one). */
async function holdPort(): Promise<net.Server> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return s;
}

/** A config file (mode 0600 unless `mode`) for one account; `account` holds the YAML after `- id: a`. */
function config(account: string, o: { listen?: string; mode?: number } = {}): TempConfig {
  const t = tempConfig('lp-check-', (dataDir) =>
    [
      `dataDir: ${dataDir}`,
      o.listen ??
        'listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }',
      'accounts:',
      '  - id: a',
      '    email: a@example.test',
      '    login: { passwordHash: "scrypt$16384$8$1$c2FsdA$aGFzaA" }',
      account,
      '',
    ].join('\n'),
  );
  chmodSync(t.configFile, o.mode ?? 0o600);
  temps.push(t);
  return t;
}

const noStack = (text: string) => assert.doesNotMatch(text, /^\s+at /m, `a stack trace in:\n${text}`);

describe('check: configuration problems exit 78, naming the key', () => {
  let pop3: Awaited<ReturnType<typeof startFakePop3>>;
  before(async () => {
    pop3 = await startFakePop3();
  });
  after(async () => {
    await pop3.close();
  });
  const incoming = () =>
    `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: none, username: alice, password: secret }`;

  test('an unset environment variable for the outgoing password is not "unreachable"', async () => {
    const t = config(
      `${incoming()}\n    outgoing: { host: 127.0.0.1, port: 25, tls: none, username: a, password: { env: LP_CHECK_UNSET_PW } }`,
    );
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^FAIL a: smtp .*: accounts\[0\]\.outgoing\.password: environment variable LP_CHECK_UNSET_PW is not set$/m,
    );
    assert.doesNotMatch(r.stdout, /unreachable|mail waits/);
    assert.match(r.stdout, /^ok +a: pop3 .*login ok/m);
    assert.equal(r.stderr, '');
  });

  test('a missing password file: no "config ...: ok", exit 78', async () => {
    const t = config(
      `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: none, username: alice, password: { file: /nonexistent/lp-pw } }`,
    );
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /^config .*: ok/m);
    assert.match(r.stdout, /^config .*: 1 configuration problem/m);
    assert.match(r.stdout, /accounts\[0\]\.incoming\.password: cannot read \/nonexistent\/lp-pw \(ENOENT\)/);
  });

  test('an OAuth account never signed in is told to sign in (not "again"), exit 78', async () => {
    const t = config(
      `    incoming: { protocol: imap, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: { oauth2: { provider: microsoft, clientId: cid } } }`,
    );
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.equal(r.code, 78, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /accounts\[0\]\.incoming\.password: localpost needs you to sign in: run `localpost auth a` \(not signed in yet\)/,
    );
    assert.doesNotMatch(r.stdout, /sign in again/);
  });

  test('a listener port out of range says so, exit 78', async () => {
    const t = config(incoming(), {
      listen: 'listen:\n  pop3: { port: 99999 }\n  smtp: { port: 0 }\n  imap: { port: 0 }',
    });
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /listen\.pop3\.port: must be a port number from 1 to 65535, or 0 for any free port/);
    assert.doesNotMatch(r.stderr, /expected a number/);
  });

  test('a listener port taken: check names listen.pop3.port and this process; exit 78', async () => {
    const held = await holdPort();
    try {
      const port = (held.address() as net.AddressInfo).port;
      const t = config(incoming(), {
        listen: `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }`,
      });
      const r = await runCli(['--config', t.configFile, 'check']);
      assert.equal(r.code, 78, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `^FAIL listen\\.pop3\\.port: 127\\.0\\.0\\.1:${port} is already in use by pid ${process.pid} \\(`,
          'm',
        ),
      );
    } finally {
      held.close();
    }
  });
});

describe('start on a taken port', () => {
  test('the IMAP port taken: check exits 78 naming listen.imap.port; with enabled: false it is not probed', async () => {
    const held = await holdPort();
    try {
      const port = (held.address() as net.AddressInfo).port;
      const listen = (imap: string) =>
        `listen:\n  pop3: { port: 0, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: ${imap}`;
      const acc = `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: p }`;
      const t = config(acc, { listen: listen(`{ port: ${port}, hosts: ["127.0.0.1"] }`) });
      const r = await runCli(['--config', t.configFile, 'check']);
      assert.equal(r.code, 78, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`^FAIL listen\\.imap\\.port: 127\\.0\\.0\\.1:${port} is already in use by pid ${process.pid}`, 'm'),
      );
      const off = config(acc, { listen: listen(`{ enabled: false, port: ${port}, hosts: ["127.0.0.1"] }`) });
      const r2 = await runCli(['--config', off.configFile, 'check']);
      assert.doesNotMatch(r2.stdout, /listen\.imap/, r2.stdout);
    } finally {
      held.close();
    }
  });

  for (const pretty of [false, true]) {
    test(`exits 78 with one line naming listen.pop3.port and the holder${pretty ? ' (--pretty)' : ''}`, async () => {
      const held = await holdPort();
      try {
        const port = (held.address() as net.AddressInfo).port;
        const t = config(
          `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: { env: LP_CHECK_UNSET_PW } }`,
          {
            listen: `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }`,
          },
        );
        const r = await runCli(['--config', t.configFile, ...(pretty ? ['--pretty'] : []), 'start']);
        assert.equal(r.code, 78, r.stdout + r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `^localpost: listen\\.pop3\\.port: 127\\.0\\.0\\.1:${port} is already in use by pid ${process.pid} \\([^\n]*\\): stop that program or choose another port\n$`,
          ),
        );
        assert.equal(r.stdout, '', 'nothing started, nothing logged');
        noStack(r.stdout + r.stderr);
      } finally {
        held.close();
      }
    });
  }
});

describe('check: TLS modes that do not match the port', () => {
  const cert = selfSignedCert();
  after(() => rmSync(cert.dir, { recursive: true, force: true }));
  const pem = { cert: readFileSync(cert.cert, 'utf8'), key: readFileSync(cert.key, 'utf8') };
  const quick = { log, index: 0, connectTimeoutMs: 1500, timeoutMs: 3000 };
  const account = (incoming: string, outgoing = '') =>
    parseConfigText(
      `dataDir: /nonexistent\naccounts:\n  - id: a\n    email: a@example.test\n    login: { password: x }\n    incoming: { ${incoming}, username: alice, password: secret }\n${outgoing ? `    outgoing: { ${outgoing}, username: alice, password: alicepw }\n` : ''}`,
    ).accounts[0]!;

  test('implicit TLS against a plain-text POP3 port: set tls: starttls, no OpenSSL dump', async () => {
    const pop3 = await startFakePop3();
    try {
      const l = await checkAccount(
        account(`protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: implicit`),
        quick,
      );
      assert.equal(l.config, true, l.text);
      assert.match(
        l.text,
        /accounts\[0\]\.incoming\.tls: implicit, but 127\.0\.0\.1:\d+ answers in plain text, not TLS: set tls: starttls \(or use the port for TLS from the first byte, usually 995\)$/,
      );
      assert.doesNotMatch(l.text, /SSL routines|deps\/openssl|\n/);
    } finally {
      await pop3.close();
    }
  });

  test('plain text against an implicit-TLS POP3 port: set tls: implicit', async () => {
    const pop3 = await startFakePop3({ tls: { mode: 'implicit', ...pem } });
    try {
      const l = await checkAccount(account(`protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: none`), quick);
      assert.equal(l.config, true, l.text);
      assert.match(l.text, /accounts\[0\]\.incoming\.tls: none, but .* sent no greeting: .*set tls: implicit/);
    } finally {
      await pop3.close();
    }
  });

  test('STARTTLS that the POP3 server does not offer', async () => {
    const pop3 = await startFakePop3();
    try {
      const l = await checkAccount(
        account(`protocol: pop3, host: 127.0.0.1, port: ${pop3.port}, tls: starttls`),
        quick,
      );
      assert.equal(l.config, true, l.text);
      assert.match(l.text, /accounts\[0\]\.incoming\.tls: starttls, but .* does not offer STARTTLS: set tls: implicit/);
    } finally {
      await pop3.close();
    }
  });

  test('SMTP: implicit against a plain port, STARTTLS not offered, plain against a TLS port', async () => {
    const smtp = await startFakeSmtp();
    const silentTls = tls.createServer(pem, () => undefined);
    silentTls.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => silentTls.listen(0, '127.0.0.1', () => r()));
    const tlsPort = (silentTls.address() as net.AddressInfo).port;
    const pop3Closed = await closedPort();
    try {
      const cases: Array<[string, RegExp]> = [
        [
          `host: 127.0.0.1, port: ${smtp.port}, tls: implicit`,
          /outgoing\.tls: implicit, but .* answers in plain text, not TLS: set tls: starttls \(.*usually 465\)$/,
        ],
        [
          `host: 127.0.0.1, port: ${smtp.port}, tls: starttls`,
          /outgoing\.tls: starttls, but .* does not offer STARTTLS/,
        ],
        [
          `host: 127.0.0.1, port: ${tlsPort}, tls: none`,
          /outgoing\.tls: none, but .* sent no greeting: .*set tls: implicit/,
        ],
      ];
      for (const [outgoing, expected] of cases) {
        const acc = account(`protocol: pop3, host: 127.0.0.1, port: ${pop3Closed}, tls: none`, outgoing);
        const l = await checkOutgoing(acc, quick);
        assert.ok(l);
        assert.equal(l.config, true, l.text);
        assert.match(l.text, expected);
        assert.doesNotMatch(l.text, /SSL routines|unreachable/);
      }
    } finally {
      await smtp.stop();
      silentTls.close();
    }
  });

  test('the hint is for TLS modes only: a refused login gets none', () => {
    const c = { tls: 'starttls', where: 'h:110', ports: { implicit: 995, plain: 110 } } as const;
    assert.equal(tlsModeHint(new Error('POP3 PASS refused: -ERR [AUTH] wrong password'), c), undefined);
    assert.equal(tlsModeHint(new Error('connect ECONNREFUSED 127.0.0.1:110'), c), undefined);
  });
});

describe('check: "unreachable" only for a network failure', () => {
  test('a closed port and a name DNS does not know: named, no stack, no log line, no (EDNS)', async () => {
    const [p1, p2] = [await closedPort(), await closedPort()];
    const t = config(
      [
        `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${p1}, tls: none, username: a, password: p }`,
        `    outgoing: { host: no-such-host.invalid, port: ${p2}, tls: implicit, username: a, password: p }`,
        '  - id: b',
        '    email: b@example.test',
        '    login: { passwordHash: "scrypt$16384$8$1$c2FsdA$aGFzaA" }',
        '    incoming: { protocol: imap, host: no-such-host.invalid, port: 993, tls: implicit, username: a, password: p }',
        `    outgoing: { host: 127.0.0.1, port: ${p2}, tls: none, username: a, password: p }`,
      ].join('\n'),
    );
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^config .*: ok \(2 accounts\)$/m);
    assert.match(
      r.stdout,
      new RegExp(`^FAIL a: pop3 .*: unreachable: 127\\.0\\.0\\.1:${p1} refused the connection`, 'm'),
    );
    assert.match(
      r.stdout,
      /^warn a: smtp .*: unreachable: cannot resolve no-such-host\.invalid.*; mail waits in the outbox$/m,
    );
    assert.match(r.stdout, /^FAIL b: imap .*: unreachable: cannot resolve no-such-host\.invalid/m);
    assert.match(
      r.stdout,
      new RegExp(`^warn b: smtp .*: unreachable: 127\\.0\\.0\\.1:${p2} refused the connection`, 'm'),
    );
    assert.doesNotMatch(r.stdout, /EDNS|ESOCKET|getaddrinfo/);
    assert.equal(r.stderr, '', 'nothing from the logger');
    noStack(r.stdout);
  });
});

describe('a config file readable by others that holds a password', () => {
  const cfgText = (login: string, incoming: string) =>
    `accounts:\n  - id: a\n    email: a@example.test\n    login: ${login}\n    incoming: { protocol: pop3, host: h, username: u, password: ${incoming} }\n`;

  test('the warning names the file, its mode, the keys and the fix; none at 0600 or without a literal', async () => {
    const t = tempConfig('lp-check-', () => '');
    temps.push(t);
    const literal = parseConfigText(cfgText('{ password: local }', 'upstream'));
    chmodSync(t.configFile, 0o644);
    assert.equal(
      await exposedSecretsWarning(t.configFile, literal),
      `${t.configFile} holds passwords in clear (accounts[0].incoming.password, accounts[0].login.password) and is readable by group and others (mode 0644): chmod 600 ${t.configFile}`,
    );
    chmodSync(t.configFile, 0o640);
    assert.match((await exposedSecretsWarning(t.configFile, literal)) ?? '', /readable by group \(mode 0640\)/);
    chmodSync(t.configFile, 0o600);
    assert.equal(await exposedSecretsWarning(t.configFile, literal), undefined);
    chmodSync(t.configFile, 0o644);
    const referenced = parseConfigText(cfgText('{ passwordHash: "scrypt$x" }', '{ env: PW }'));
    assert.equal(await exposedSecretsWarning(t.configFile, referenced), undefined);
  });

  test('check warns, and start logs it', async () => {
    const held = await holdPort();
    try {
      const port = (held.address() as net.AddressInfo).port;
      const t = config(
        `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: literal-pw }`,
        {
          mode: 0o644,
          listen: `listen:\n  pop3: { port: ${port}, hosts: ["127.0.0.1"] }\n  smtp: { port: 0, hosts: ["127.0.0.1"] }\n  imap: { port: 0, hosts: ["127.0.0.1"] }`,
        },
      );
      const warning = `${t.configFile} holds a password in clear (accounts[0].incoming.password) and is readable by group and others (mode 0644): chmod 600 ${t.configFile}`;
      const check = await runCli(['--config', t.configFile, 'check']);
      assert.ok(check.stdout.includes(`\nwarn ${warning}\n`), check.stdout);
      // the taken port makes start stop right after its first log lines
      const start = await runCli(['--config', t.configFile, 'start']);
      assert.equal(start.code, 78);
      const line = JSON.parse(start.stdout.split('\n')[0] ?? '') as { level: string; msg: string };
      assert.deepEqual([line.level, line.msg], ['warn', warning]);
    } finally {
      held.close();
    }
  });
});

describe('listeners with the legacy TLS profile', () => {
  const cert = selfSignedCert();
  after(() => rmSync(cert.dir, { recursive: true, force: true }));
  const block = (legacy: boolean) => `{ cert: ${cert.cert}, key: ${cert.key}, legacy: ${legacy} }`;
  const listen = (pop3Port: number, pop3: boolean, smtp: boolean) =>
    `listen:\n  pop3: { port: ${pop3Port}, hosts: ["127.0.0.1"], tls: ${block(pop3)} }\n` +
    `  smtp: { port: 0, hosts: ["127.0.0.1"], tls: ${block(smtp)} }\n  imap: { port: 0, hosts: ["127.0.0.1"] }`;
  const account = async () =>
    `    incoming: { protocol: pop3, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: { env: PW } }`;

  test('the warning names the keys that are on, what they weaken and whom they are for; none when off', async () => {
    const both = parseConfigText(
      readFileSync(config(await account(), { listen: listen(0, true, true) }).configFile, 'utf8'),
    );
    assert.equal(
      legacyTlsWarning(both),
      'listen.pop3.tls.legacy, listen.smtp.tls.legacy: TLS 1.0/1.1 and weak ciphers (OpenSSL security level 0) are ' +
        'accepted, which someone on the network can attack far more easily than TLS 1.2; meant only for old mail ' +
        'clients without TLS 1.2 on a trusted LAN: turn it off once they are gone',
    );
    const smtp = parseConfigText(
      readFileSync(config(await account(), { listen: listen(0, false, true) }).configFile, 'utf8'),
    );
    assert.match(legacyTlsWarning(smtp) ?? '', /^listen\.smtp\.tls\.legacy: TLS 1\.0/);
    const off = parseConfigText(
      readFileSync(config(await account(), { listen: listen(0, false, false) }).configFile, 'utf8'),
    );
    assert.equal(legacyTlsWarning(off), undefined);
  });

  test('check warns, and start logs it once', async () => {
    const held = await holdPort();
    try {
      const t = config(await account(), { listen: listen((held.address() as net.AddressInfo).port, true, false) });
      const check = await runCli(['--config', t.configFile, 'check'], { PW: 'pw' });
      const warn = check.stdout.split('\n').filter((l) => l.includes('tls.legacy'));
      assert.deepEqual(warn, [`warn ${legacyTlsWarning(parseConfigText(readFileSync(t.configFile, 'utf8')))}`]);
      assert.match(warn[0] ?? '', /^warn listen\.pop3\.tls\.legacy: TLS 1\.0\/1\.1 .* trusted LAN/);
      // the taken port makes start stop right after its first log lines
      const start = await runCli(['--config', t.configFile, 'start'], { PW: 'pw' });
      assert.equal(start.code, 78);
      const lines = start.stdout.split('\n').filter((l) => l.includes('tls.legacy'));
      assert.equal(lines.length, 1, start.stdout);
      const line = JSON.parse(lines[0] ?? '') as { level: string; msg: string };
      assert.equal(line.level, 'warn');
      assert.match(line.msg, /^listen\.pop3\.tls\.legacy: /);
    } finally {
      held.close();
    }
  });
});

describe('auth exit codes', () => {
  test('an unknown account and an account without OAuth both exit 78', async () => {
    const t = config(
      '    incoming: { protocol: pop3, host: 127.0.0.1, port: 110, tls: none, username: a, password: { env: X } }',
    );
    const unknown = await runCli(['--config', t.configFile, 'auth', 'nope']);
    assert.equal(unknown.code, 78);
    assert.match(unknown.stderr, /^localpost: no such account: nope \(configured: a\)/);
    const plain = await runCli(['--config', t.configFile, 'auth', 'a']);
    assert.equal(plain.code, 78);
    assert.match(plain.stderr, /^localpost: account "a" does not use OAuth/);
  });
});

describe('check: upstreams reached in clear on a host that is not loopback', () => {
  const cfgOf = async (account: string) => parseConfigText(readFileSync(config(account).configFile, 'utf8'));
  const oauth = (tokenUrl: string) =>
    `{ oauth2: { provider: custom, clientId: cid, tokenUrl: "${tokenUrl}", deviceUrl: "https://auth.example.test/device" } }`;

  test('tls: none to a remote host and an http:// token URL to a remote host are warned about, naming the key', async () => {
    const cfg = await cfgOf(
      [
        `    incoming: { protocol: imap, host: mail.example.test, port: 143, tls: none, username: a, password: ${oauth('http://auth.example.test/token')} }`,
        '    outgoing: { host: 192.0.2.9, port: 25, tls: none, username: a, password: pw }',
      ].join('\n'),
    );
    assert.deepEqual(cleartextUpstreamWarnings(cfg), [
      'accounts[0].incoming.tls: none sends the password and the mail to mail.example.test unencrypted: use starttls or implicit unless the network to it is trusted',
      'accounts[0].incoming.password.oauth2.tokenUrl: http://auth.example.test/token is plain http: the client secret and the refresh token would cross the network unencrypted; use https',
      'accounts[0].outgoing.tls: none sends the password and the mail to 192.0.2.9 unencrypted: use starttls or implicit unless the network to it is trusted',
    ]);
  });

  test('loopback hosts (a local tunnel, a test server), TLS and https are not warned about', async () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.5']) {
      const cfg = await cfgOf(
        [
          `    incoming: { protocol: imap, host: "${host}", port: 143, tls: none, username: a, password: ${oauth('http://127.0.0.1:8080/token')} }`,
          `    outgoing: { host: "${host}", port: 25, tls: none, username: a, password: pw }`,
        ].join('\n'),
      );
      assert.deepEqual(cleartextUpstreamWarnings(cfg), [], host);
    }
    const tlsOn = await cfgOf(
      [
        `    incoming: { protocol: imap, host: mail.example.test, tls: implicit, username: a, password: ${oauth('https://auth.example.test/token')} }`,
        '    outgoing: { host: mail.example.test, tls: starttls, username: a, password: pw }',
      ].join('\n'),
    );
    assert.deepEqual(cleartextUpstreamWarnings(tlsOn), []);
  });

  test('check prints the warning line', async () => {
    const t = config(
      `    incoming: { protocol: imap, host: 127.0.0.1, port: ${await closedPort()}, tls: none, username: a, password: ${oauth('http://auth.example.test/token')} }`,
    );
    const r = await runCli(['--config', t.configFile, 'check']);
    assert.match(
      r.stdout,
      /^warn accounts\[0\]\.incoming\.password\.oauth2\.tokenUrl: http:\/\/auth\.example\.test\/token is plain http/m,
    );
    assert.doesNotMatch(r.stdout, /incoming\.tls: none/, 'loopback in clear is not warned about');
  });
});
