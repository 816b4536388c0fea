/**
 * `localpost init`: every provider preset (and each protocol it offers) renders a config the
 * schema accepts; the CLI writes mode 0600 in a 0700 directory and never replaces a file;
 * flags are validated; and a real dialogue on a pseudo-terminal writes what was answered,
 * without echoing passwords.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { runInit } from '../../src/cli/init.js';
import { collectAnswers, defaultId, type InitFlags } from '../../src/cli/init-answers.js';
import { renderConfig } from '../../src/cli/init-config.js';
import { findProvider, PROVIDERS, providerForEmail } from '../../src/cli/providers.js';
import { parseConfigText } from '../../src/config/load.js';
import { type Config, oauth2Of } from '../../src/config/schema.js';
import { localUsers } from '../../src/daemon/pop3-listener.js';
import { LocalAuth } from '../../src/listeners/local-auth.js';
import { cliArgs, ROOT, runCli } from '../support/localpost.js';
import { runInPty } from '../support/pty.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lp-init-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
/** A config path in a directory that does not exist yet. */
const freshPath = () => path.join(tmp, `c${++n}`, 'sub', 'config.yaml');
const mode = (p: string) => statSync(p).mode & 0o777;
const localLogin = (cfg: Config, user: string, pw: string) =>
  new LocalAuth(localUsers(cfg), { baseDelayMs: 0 }).verify(user, pw).then((r) => (r.ok ? r.accountId : undefined));

const EMAIL: Record<string, string> = { generic: 'me@example.org', microsoft365: 'me@contoso.com' };

describe('presets', () => {
  for (const preset of PROVIDERS) {
    for (const protocol of ['imap', 'pop3'] as const) {
      if (!preset.servers('me@example.org')[protocol]) continue;
      test(`${preset.name} over ${protocol} validates against the schema`, async () => {
        const email = EMAIL[preset.name] ?? `me@${preset.domains[0]}`;
        const flags: InitFlags = { provider: preset.name, email, protocol, localPassword: 'local pw' };
        if (preset.name === 'generic') Object.assign(flags, { host: 'mail.example.org', smtpHost: 'mail.example.org' });
        if (preset.oauth?.only) flags.clientId = 'my-client-id';
        const { answers } = await collectAnswers(flags);
        const text = renderConfig(answers);
        const cfg = parseConfigText(text, 'rendered');
        const acc = cfg.accounts[0]!;
        // the local IMAP listener is on, and the file says where
        assert.match(text, /^# {3}imap: \{ port: 1143 \}$/m);
        assert.deepEqual([cfg.listen.imap.enabled, cfg.listen.imap.port], [true, 1143]);
        const expected = preset.servers(email)[protocol]!;
        assert.equal(acc.incoming.protocol, protocol);
        // a new POP3 account serves the provider's UIDLs (docs/clients.md)
        assert.equal(acc.incoming.uidls, protocol === 'pop3' ? 'upstream' : 'local');
        // a new IMAP account caches and shows every folder (docs/imap-server.md "Which folders")
        assert.deepEqual(acc.incoming.folders, protocol === 'imap' ? ['*'] : ['INBOX']);
        if (preset.name !== 'generic') {
          assert.deepEqual(
            [acc.incoming.host, acc.incoming.port, acc.incoming.tls],
            [expected.host, expected.port, expected.tls],
          );
          const smtp = preset.servers(email).smtp!;
          assert.deepEqual(
            [acc.outgoing?.host, acc.outgoing?.port, acc.outgoing?.tls],
            [smtp.host, smtp.port, smtp.tls],
          );
        }
        if (preset.oauth?.only) {
          const o = oauth2Of(acc.incoming.password)!;
          assert.deepEqual(
            [o.provider, o.clientId, o.tenant],
            ['microsoft', 'my-client-id', preset.name === 'outlook' ? 'consumers' : 'contoso.com'],
          );
          assert.ok(o.tokenUrl.startsWith(`https://login.microsoftonline.com/${o.tenant}/`), o.tokenUrl);
          assert.deepEqual(oauth2Of(acc.outgoing!.password), o, 'one sign-in for both servers');
        } else {
          assert.deepEqual(acc.incoming.password, { env: `LOCALPOST_${acc.id.toUpperCase()}_PASSWORD` });
        }
        assert.equal(await localLogin(cfg, acc.login.username, 'local pw'), acc.id);
        assert.equal(await localLogin(cfg, acc.login.username, 'wrong'), undefined);
      });
    }
  }

  for (const protocol of ['imap', 'pop3'] as const) {
    test(`gmail with OAuth over ${protocol} validates against the schema`, async () => {
      const { answers } = await collectAnswers({
        email: 'me@gmail.com',
        protocol,
        auth: 'oauth',
        clientId: '123-abc.apps.googleusercontent.com',
        clientSecret: 'GOCSPX-x"y',
        localPassword: 'x',
      });
      const acc = parseConfigText(renderConfig(answers), 'rendered').accounts[0]!;
      const o = oauth2Of(acc.incoming.password)!;
      assert.deepEqual(
        [o.provider, o.clientId, o.clientSecret, o.tenant],
        ['google', '123-abc.apps.googleusercontent.com', 'GOCSPX-x"y', undefined],
      );
      assert.deepEqual(o.scopes, ['https://mail.google.com/']);
      assert.deepEqual(oauth2Of(acc.outgoing!.password), o);
    });
  }

  test('the address picks the preset and its regional servers', async () => {
    assert.equal(providerForEmail('a@googlemail.com')?.name, 'gmail');
    assert.equal(providerForEmail('a@hotmail.com')?.name, 'outlook');
    assert.equal(providerForEmail('a@me.com')?.name, 'icloud');
    assert.equal(providerForEmail('a@unknown.example'), undefined);
    assert.equal(findProvider('Office365')?.name, 'microsoft365');
    assert.equal(findProvider('gmx')!.servers('a@gmx.de').imap!.host, 'imap.gmx.net');
    assert.equal(findProvider('gmx')!.servers('a@gmx.com').smtp!.host, 'mail.gmx.com');
    assert.equal(findProvider('zoho')!.servers('a@zohomail.eu').imap!.host, 'imap.zoho.eu');
    const { answers } = await collectAnswers({ email: 'someone@icloud.com', localPassword: 'x' });
    assert.equal(answers.incoming.username, 'someone');
    assert.equal(answers.outgoing!.username, 'someone@icloud.com');
  });

  test('every password source and receive-only render valid YAML, quoting included', async () => {
    const sources: InitFlags[] = [
      { passwordCommand: 'secret-tool lookup service "localpost" user \'me\'' },
      { passwordFile: 'relative/pw file' },
      { passwordEnv: 'MY_PW' },
    ];
    for (const s of sources) {
      const { answers } = await collectAnswers({
        email: 'me@fastmail.com',
        smtp: false,
        localUser: 'a "quoted" name',
        localPassword: 'x',
        ...s,
      });
      const acc = parseConfigText(renderConfig(answers)).accounts[0]!;
      assert.equal(acc.outgoing, undefined);
      assert.equal(acc.login.username, 'a "quoted" name');
      if (s.passwordCommand) assert.deepEqual(acc.incoming.password, { command: s.passwordCommand });
      if (s.passwordFile) assert.deepEqual(acc.incoming.password, { file: path.resolve('relative/pw file') });
      if (s.passwordEnv) assert.deepEqual(acc.incoming.password, { env: 'MY_PW' });
    }
  });
});

describe('localpost init (CLI, flags)', () => {
  test('writes the config: mode 0600, directory 0700, the flags taken', async () => {
    const file = freshPath();
    const r = await runCli([
      '--config',
      file,
      'init',
      '--provider',
      'gmail',
      '--email',
      'me@gmail.com',
      '--protocol',
      'pop3',
      '--gmail-recent',
      '--password-env',
      'GMAIL_PW',
      '--local-password',
      'open sesame',
      '--data-dir',
      '~/mail-cache',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(file), 0o600);
    assert.equal(mode(path.dirname(file)), 0o700);
    assert.equal(mode(path.dirname(path.dirname(file))), 0o700);
    const cfg = parseConfigText(readFileSync(file, 'utf8'));
    const acc = cfg.accounts[0]!;
    assert.deepEqual(
      [acc.id, acc.incoming.host, acc.incoming.port, acc.incoming.username],
      ['gmail', 'pop.gmail.com', 995, 'recent:me@gmail.com'],
    );
    assert.deepEqual(acc.incoming.password, { env: 'GMAIL_PW' });
    assert.equal(acc.outgoing?.username, 'me@gmail.com');
    assert.equal(cfg.dataDir, path.join(os.homedir(), 'mail-cache'));
    assert.equal(await localLogin(cfg, 'gmail', 'open sesame'), 'gmail');
    assert.doesNotMatch(readFileSync(file, 'utf8'), /open sesame/);
    assert.match(r.stdout, /Wrote .*config\.yaml \(mode 0600\)/);
    assert.match(r.stdout, /export GMAIL_PW=/);
    assert.match(r.stdout, / check /);
  });

  test('a generated local password is printed once and is the one hashed', async () => {
    const file = freshPath();
    const r = await runCli(['--config', file, 'init', '--email', 'me@fastmail.com']);
    assert.equal(r.code, 0, r.stderr);
    const pw = /password\s+(\S+)\s+\(generated/.exec(r.stdout)?.[1];
    assert.ok(pw && pw.length >= 16, r.stdout);
    assert.equal(await localLogin(parseConfigText(readFileSync(file, 'utf8')), 'fastmail', pw), 'fastmail');
  });

  test('refuses to overwrite an existing file, and leaves it as it was', async () => {
    const file = freshPath();
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, '# mine\n', { mode: 0o644 });
    const r = await runCli(['--config', file, 'init', '--email', 'me@gmail.com']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists; not overwriting it/);
    assert.equal(readFileSync(file, 'utf8'), '# mine\n');
    assert.equal(mode(file), 0o644);
    assert.equal(mode(path.dirname(file)), 0o755, 'an existing directory keeps its mode');
  });

  test('Microsoft presets write an OAuth block and say to run `localpost auth`', async () => {
    const file = freshPath();
    const r = await runCli([
      '--config',
      file,
      'init',
      '--email',
      'me@contoso.com',
      '--provider',
      'm365',
      '--client-id',
      'abc-123',
      '--local-password',
      'x',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text + r.stdout, /not implement/);
    assert.match(text, /host: "outlook\.office365\.com"/);
    assert.equal(
      text.match(/password: \{ oauth2: \{ provider: microsoft, clientId: "abc-123", tenant: "contoso\.com" \} \}/g)
        ?.length,
      2,
    );
    assert.match(text, /run `localpost auth microsoft365` once/);
    assert.match(
      r.stdout,
      new RegExp(`localpost --config ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} auth microsoft365\n`),
    );
    assert.match(r.stdout, /microsoft\.com\/devicelogin/);
    const acc = parseConfigText(text).accounts[0]!;
    assert.equal(
      oauth2Of(acc.incoming.password)?.tokenUrl,
      'https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token',
    );
  });

  test('Gmail: --auth oauth writes the client id and secret; app passwords stay the default', async () => {
    const file = freshPath();
    const r = await runCli([
      '--config',
      file,
      'init',
      '--email',
      'me@gmail.com',
      '--auth',
      'oauth',
      '--client-id',
      'cid.apps.googleusercontent.com',
      '--client-secret',
      'GOCSPX-s',
      '--local-password',
      'x',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const acc = parseConfigText(readFileSync(file, 'utf8')).accounts[0]!;
    assert.deepEqual(acc.incoming.password, acc.outgoing!.password);
    const o = oauth2Of(acc.incoming.password)!;
    assert.deepEqual(
      [o.provider, o.clientId, o.clientSecret],
      ['google', 'cid.apps.googleusercontent.com', 'GOCSPX-s'],
    );
    assert.match(r.stdout, /auth gmail\n/);
    const { answers } = await collectAnswers({ email: 'me@gmail.com', localPassword: 'x' });
    assert.deepEqual(answers.password, { env: 'LOCALPOST_GMAIL_PASSWORD' });
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['no --email without a terminal', [], /--email is required without a terminal/],
    [
      'an unknown provider',
      ['--email', 'a@b.example', '--provider', 'aol'],
      /--provider: unknown provider; known: gmail/,
    ],
    ['POP3 at iCloud', ['--email', 'a@icloud.com', '--protocol', 'pop3'], /iCloud Mail offers no POP3/],
    ['generic without --host', ['--email', 'a@b.example'], /--host is required/],
    [
      'two password sources',
      ['--email', 'a@gmail.com', '--password-env', 'A', '--password-file', '/x'],
      /at most one of --password-env/,
    ],
    ['a bad port', ['--email', 'a@gmail.com', '--port', '99999'], /--port: expected a port number/],
    ['recent: outside Gmail POP3', ['--email', 'a@gmail.com', '--gmail-recent'], /only for Gmail over POP3/],
    ['a bad account id', ['--email', 'a@gmail.com', '--id', 'My Mail'], /--id: expected lower-case/],
    ['Microsoft without --client-id', ['--email', 'a@outlook.com'], /--client-id is required without a terminal/],
    [
      'Microsoft with an app password',
      ['--email', 'a@outlook.com', '--auth', 'app-password'],
      /--auth: Outlook\.com .* accepts only OAuth 2\.0/,
    ],
    [
      'Gmail OAuth without a secret',
      ['--email', 'a@gmail.com', '--auth', 'oauth', '--client-id', 'c'],
      /--client-secret is required/,
    ],
    [
      'OAuth where no preset has it',
      ['--email', 'a@fastmail.com', '--auth', 'oauth'],
      /--auth oauth: Fastmail has no OAuth preset/,
    ],
    [
      'a client id with an app password',
      ['--email', 'a@gmail.com', '--auth', 'app-password', '--client-id', 'c'],
      /--client-id: only with --auth oauth/,
    ],
    [
      'a password source with OAuth',
      ['--email', 'a@outlook.com', '--client-id', 'c', '--password-env', 'X'],
      /OAuth 2\.0 needs none/,
    ],
    [
      'an unknown --auth',
      ['--email', 'a@gmail.com', '--auth', 'kerberos'],
      /--auth: expected one of app-password, oauth/,
    ],
  ];
  for (const [what, args, message] of bad) {
    test(`rejects ${what}; nothing is written`, async () => {
      const file = freshPath();
      const out = new PassThrough();
      const err = new PassThrough();
      let stderr = '';
      err.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const flags: InitFlags = {};
      for (let i = 0; i < args.length; i += 2) {
        const key = args[i]!.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof InitFlags;
        (flags as Record<string, unknown>)[key] = key === 'gmailRecent' ? true : args[i + 1];
        if (key === 'gmailRecent') i--;
      }
      const code = await runInit(flags, { configFile: file, stdin: new PassThrough(), stdout: out, stderr: err });
      assert.equal(code, 1);
      assert.match(stderr, message);
      assert.equal(existsSync(file), false);
    });
  }

  test('--help documents the flags', async () => {
    const r = await runCli(['init', '--help']);
    assert.equal(r.code, 0);
    for (const flag of [
      '--provider',
      '--email',
      '--protocol',
      '--password-env',
      '--password-command',
      '--local-password',
      '--non-interactive',
      '--gmail-recent',
      '--auth',
      '--client-id',
      '--client-secret',
      '--tenant',
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
    assert.match(r.stdout, /Providers: gmail, outlook, microsoft365, yahoo, icloud, fastmail, gmx, zoho, generic/);
    const help = r.stdout.replace(/\s+/g, ' ');
    assert.match(help, /generic also needs --host and --smtp-host \(or --no-smtp\)/);
    assert.match(help, /--smtp-host <host> outgoing server \(required with --provider generic, unless --no-smtp\)/);
    assert.match(
      help,
      /--id <id> account id, names its folder \(default: the provider's name; with generic, the name in the address's domain\)/,
    );
  });

  test('what the help says generic needs is what it asks for; the id is the name in the domain', async () => {
    const base = ['--provider', 'generic', '--email', 'me@mail.posteo.de', '--host', 'mail.posteo.de'];
    const missing = await runCli(['--config', freshPath(), 'init', ...base]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--smtp-host is required without a terminal/);
    const file = freshPath();
    const ok = await runCli(['--config', file, 'init', ...base, '--smtp-host', 'mail.posteo.de']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(parseConfigText(readFileSync(file, 'utf8')).accounts[0]!.id, 'posteo');
    assert.match(ok.stdout, /localpost reads the password of me@mail\.posteo\.de from \$LOCALPOST_POSTEO_PASSWORD/);
    const generic = findProvider('generic')!;
    for (const [email, id] of [
      ['me@example.org', 'example'],
      ['me@mail.example.co.uk', 'example'],
      ['me@uni-x.ac.at', 'uni-x'],
      ['me@localhost', 'localhost'],
    ] as const)
      assert.equal(defaultId(generic, email), id, email);
  });
});

describe('localpost init on a terminal', () => {
  const cli = (file: string) => [process.execPath, ...cliArgs(['--config', file, 'init'])];

  test('asks, hides passwords, and writes the answers', async () => {
    const file = freshPath();
    const r = await runInPty(
      cli(file),
      [
        { expect: 'Email address', send: 'me@example.org' },
        { expect: 'Provider', send: '' },
        { expect: 'Incoming protocol', send: 'pop3' },
        { expect: 'Incoming (POP3) server [pop.example.org]', send: 'mail.example.org' },
        { expect: 'Security', send: 'starttls' },
        { expect: 'Port [110]', send: '' },
        { expect: 'Login name at mail.example.org [me@example.org]', send: 'me' },
        { expect: 'Outgoing (SMTP) server', send: 'smtp.example.org' },
        { expect: 'Security', send: 'bogus' },
        { expect: 'expected one of implicit, starttls, none', send: 'implicit' },
        { expect: 'Port [465]', send: '' },
        { expect: 'Choice [1]', send: '4' },
        { expect: 'Password (not shown)', send: 'upstream-SECRET' },
        { expect: 'Local user name [example]', send: 'me' },
        { expect: 'Local password', send: 'local-SECRET' },
        { expect: 'The same again', send: 'local-SECRE' },
        { expect: 'Local password', send: 'local-SECRET' },
        { expect: 'The same again', send: 'local-SECRET' },
      ],
      { cwd: ROOT },
    );
    assert.equal(r.code, 0, r.output);
    assert.doesNotMatch(r.output, /upstream-SECRET|local-SECRE/, 'passwords are not echoed');
    assert.match(r.output, /Where should localpost get the password of me@example\.org\?/);
    assert.match(r.output, /the two passwords differ; once more/);
    assert.doesNotMatch(r.output, /your another provider/);
    assert.match(r.output, /Wrote .*\(mode 0600\): another provider over POP3 \(mail\.example\.org:110\)/);
    assert.equal(mode(file), 0o600);
    const cfg = parseConfigText(readFileSync(file, 'utf8'));
    const acc = cfg.accounts[0]!;
    assert.deepEqual(
      [acc.id, acc.incoming.host, acc.incoming.port, acc.incoming.tls, acc.incoming.username],
      ['example', 'mail.example.org', 110, 'starttls', 'me'],
    );
    assert.equal(acc.incoming.password, 'upstream-SECRET');
    assert.deepEqual(
      [acc.outgoing?.host, acc.outgoing?.port, acc.outgoing?.tls],
      ['smtp.example.org', 465, 'implicit'],
    );
    assert.equal(await localLogin(cfg, 'me', 'local-SECRET'), 'example');
  });

  test('a preset needs only a few answers; flags answer their questions', async () => {
    const file = freshPath();
    const r = await runInPty(
      [...cli(file), '--email', 'me@gmail.com', '--protocol', 'pop3'],
      [
        { expect: 'Provider (', send: '' },
        { expect: 'recent:', send: 'y' },
        { expect: 'Login name at pop.gmail.com [recent:me@gmail.com]', send: '' },
        { expect: 'app password or OAuth 2.0 (app-password, oauth) [app-password]', send: '' },
        { expect: 'Choice', send: '2' },
        { expect: 'Command', send: 'pass show mail/gmail' },
        { expect: 'Local user name [gmail]', send: '' },
        { expect: 'Local password', send: '' },
      ],
      { cwd: ROOT },
    );
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /about 250/, 'the Gmail notes are shown');
    const generated = /password\s+(\S+)\s+\(generated/.exec(r.output)?.[1];
    const cfg = parseConfigText(readFileSync(file, 'utf8'));
    assert.deepEqual(cfg.accounts[0]!.incoming.password, { command: 'pass show mail/gmail' });
    assert.equal(cfg.accounts[0]!.incoming.username, 'recent:me@gmail.com');
    assert.equal(await localLogin(cfg, 'gmail', generated!), 'gmail');
  });

  test('Gmail with OAuth asks for the client id and secret', async () => {
    const file = freshPath();
    const r = await runInPty(
      [...cli(file), '--email', 'me@gmail.com', '--provider', 'gmail', '--protocol', 'imap'],
      [
        { expect: 'Login name at imap.gmail.com', send: '' },
        { expect: 'app password or OAuth 2.0', send: 'oauth' },
        { expect: 'OAuth client id', send: '' },
        { expect: 'must not be empty', send: 'cid.apps.googleusercontent.com' },
        { expect: 'OAuth client secret', send: 'GOCSPX-s' },
        { expect: 'Local user name [gmail]', send: '' },
        { expect: 'Local password', send: 'x' },
        { expect: 'The same again', send: 'x' },
      ],
      { cwd: ROOT },
    );
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /localpost --config \S+ auth gmail/);
    const o = oauth2Of(parseConfigText(readFileSync(file, 'utf8')).accounts[0]!.incoming.password)!;
    assert.deepEqual(
      [o.provider, o.clientId, o.clientSecret],
      ['google', 'cid.apps.googleusercontent.com', 'GOCSPX-s'],
    );
  });

  test('Microsoft 365 asks for the client id and the tenant', async () => {
    const file = freshPath();
    const r = await runInPty(
      [...cli(file), '--email', 'me@contoso.com', '--provider', 'microsoft365', '--protocol', 'pop3'],
      [
        { expect: 'Login name at outlook.office365.com', send: '' },
        { expect: 'OAuth client id', send: 'abc-123' },
        {
          expect: "Directory (tenant): your organisation's domain or tenant id [contoso.com]",
          send: 'contoso.onmicrosoft.com',
        },
        { expect: 'Local user name [microsoft365]', send: '' },
        { expect: 'Local password', send: 'x' },
        { expect: 'The same again', send: 'x' },
      ],
      { cwd: ROOT },
    );
    assert.equal(r.code, 0, r.output);
    const o = oauth2Of(parseConfigText(readFileSync(file, 'utf8')).accounts[0]!.incoming.password)!;
    assert.match(r.output, /registered with Microsoft Entra/);
    assert.deepEqual([o.provider, o.clientId, o.tenant], ['microsoft', 'abc-123', 'contoso.onmicrosoft.com']);
  });

  test('Ctrl-C cancels and writes nothing', async () => {
    const file = freshPath();
    const r = await runInPty(
      cli(file),
      [
        { expect: 'Email address', send: 'me@gmail.com' },
        { expect: 'Provider', send: '\x03' },
      ],
      { cwd: ROOT },
    );
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /cancelled; nothing was written/);
    assert.equal(existsSync(file), false);
  });
});
