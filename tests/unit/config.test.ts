/**
 * The config contract: parsing with defaults, every error reported with its path, YAML
 * positions, path expansion, secret sources, and the generated example file.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { EXAMPLE_CONFIG_PATH, renderExampleConfig } from '../../src/config/example.js';
import { configPath, loadConfig, parseConfigText } from '../../src/config/load.js';
import { configSchema, expandPath, parseDuration, parseSize } from '../../src/config/schema.js';
import { resolveSecret } from '../../src/config/secrets.js';
import { ConfigError } from '../../src/shared/errors.js';

const MINIMAL = `
accounts:
  - id: home
    email: me@example.com
    login: { password: local }
    incoming: { protocol: pop3, host: pop.example.com, username: me, password: upstream }
`;

const FULL = `
dataDir: /srv/localpost
log: { level: debug }
listen:
  pop3: { port: 2110, hosts: ["127.0.0.1"] }
  smtp: { port: 2025, hosts: ["0.0.0.0"], allowRemote: true }
outbox:
  maxAge: 2d
  retry: { initial: 30s, max: 2h }
accounts:
  - id: home
    email: me@example.com
    login: { password: "a local password" }
    incoming:
      protocol: pop3
      host: pop.example.com
      tls: starttls
      username: me@example.com
      password: { env: HOME_MAIL_PASSWORD }
      schedule: "*/10 * * * *"
      syncOnLogin: 500ms
      keepOnServer: false
      onLocalDelete: delete-upstream
      maxMessageSize: 512KB
    outgoing:
      host: smtp.example.com
      tls: implicit
      username: me@example.com
      password: { command: "pass show mail" }
  - id: work_2
    email: me@work.example
    login: { username: boss, passwordHash: "scrypt$abc" }
    incoming:
      protocol: imap
      host: imap.work.example
      username: me
      password: { file: /etc/secret }
      folders: [INBOX, Sent]
      idle: false
      maxMessageSize: 1GB
  - id: x
    email: x@example.com
    login: { password: p }
    incoming: { protocol: imap, host: h, tls: none, port: 1143, username: u, password: p }
    outgoing: { host: s, tls: none, username: u, password: p }
`;

/** The problem lines of the ConfigError thrown by `fn`. */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('config schema', () => {
  it('parses a full config and applies defaults', () => {
    const c = parseConfigText(FULL);
    assert.equal(c.dataDir, '/srv/localpost');
    assert.equal(c.log.level, 'debug');
    assert.deepEqual(c.listen.smtp, {
      port: 2025,
      hosts: ['0.0.0.0'],
      allowRemote: true,
      maxConnections: 50,
      maxConnectionsPerAddress: 10,
      tls: 'auto',
    });
    assert.deepEqual(c.outbox, { maxAge: 2 * 86_400_000, retry: { initial: 30_000, max: 7_200_000 } });

    const [home, work, x] = c.accounts;
    assert.equal(home!.login.username, 'home');
    assert.equal(home!.incoming.port, 110); // pop3 + starttls
    assert.equal(home!.incoming.syncOnLogin, 500);
    assert.equal(home!.incoming.maxMessageSize, 512 * 1024);
    assert.equal(home!.incoming.keepOnServer, false);
    assert.equal(home!.incoming.onLocalDelete, 'delete-upstream');
    assert.deepEqual(home!.incoming.password, { env: 'HOME_MAIL_PASSWORD' });
    assert.equal(home!.outgoing!.port, 465); // implicit
    assert.deepEqual(home!.outgoing!.password, { command: 'pass show mail' });

    assert.equal(work!.login.username, 'boss');
    assert.equal(work!.login.passwordHash, 'scrypt$abc');
    assert.equal(work!.incoming.port, 993); // imap + default implicit
    assert.equal(work!.incoming.tls, 'implicit');
    assert.deepEqual(work!.incoming.folders, ['INBOX', 'Sent']);
    assert.equal(work!.incoming.maxMessageSize, 1024 ** 3);
    assert.equal(work!.outgoing, undefined);

    assert.equal(x!.incoming.port, 1143); // explicit port wins
    assert.equal(x!.outgoing!.port, 587); // tls none
  });

  it('accepts a minimal config and fills in every default', () => {
    const saved = process.env.XDG_DATA_HOME;
    delete process.env.XDG_DATA_HOME;
    try {
      const c = parseConfigText(MINIMAL);
      assert.equal(c.dataDir, join(process.env.HOME!, '.local/share/localpost'));
      assert.equal(c.log.level, 'info');
      const listener = { hosts: ['127.0.0.1', '::1'], maxConnections: 50, maxConnectionsPerAddress: 10, tls: 'auto' };
      assert.deepEqual(c.listen.pop3, { port: 1110, ...listener, workarounds: ['outlook-no-nuls', 'oe-ns-eoh'] });
      assert.deepEqual(c.listen.smtp, { port: 1025, ...listener });
      assert.deepEqual(c.listen.imap, { port: 1143, ...listener, enabled: true });
      assert.deepEqual(c.outbox, { maxAge: 5 * 86_400_000, retry: { initial: 60_000, max: 3_600_000 } });
      const a = c.accounts[0]!;
      assert.equal(a.login.username, 'home');
      assert.deepEqual(a.incoming, {
        protocol: 'pop3',
        host: 'pop.example.com',
        port: 995,
        tls: 'implicit',
        username: 'me',
        password: 'upstream',
        schedule: '*/5 * * * *',
        syncOnLogin: 10_000,
        syncOnLoginFloor: 30_000,
        keepOnServer: true,
        onLocalDelete: 'keep-upstream',
        uidls: 'local',
        folders: ['INBOX'],
        idle: true,
        maxMessageSize: 50 * 1024 * 1024,
      });
    } finally {
      if (saved !== undefined) process.env.XDG_DATA_HOME = saved;
    }
  });

  it('uses $XDG_DATA_HOME for the default dataDir', () => {
    const saved = process.env.XDG_DATA_HOME;
    process.env.XDG_DATA_HOME = '/xdg/data';
    try {
      assert.equal(parseConfigText(MINIMAL).dataDir, '/xdg/data/localpost');
    } finally {
      if (saved === undefined) delete process.env.XDG_DATA_HOME;
      else process.env.XDG_DATA_HOME = saved;
    }
  });

  it('lists every error with its path, not just the first', () => {
    const problems = problemsOf(() =>
      parseConfigText(`
listen:
  pop3: { port: 1110, hosts: ["127.0.0.1", "0.0.0.0"] }
accounts:
  - id: home
    email: me@example.com
    login: { password: a, passwordHash: "scrypt$x" }
    incoming:
      protocol: pop2
      host: pop.example.com
      port: "995"
      username: me
      password: p
      schedule: "61 * * * *"
  - id: home
    email: you@example.com
    login: { password: b }
    incoming: { protocol: imap, host: h, username: u, password: p, foldres: [INBOX] }
`),
    );
    const expected = [
      /^listen\.pop3\.hosts\[1\]: 0\.0\.0\.0 is not a loopback address.*allowRemote/,
      /^accounts\[0\]\.login\.passwordHash: give password or passwordHash, not both/,
      /^accounts\[0\]\.incoming\.protocol: expected one of pop3 \| imap/,
      /^accounts\[0\]\.incoming\.port: expected a number/,
      /^accounts\[0\]\.incoming\.schedule: not a valid cron expression/,
      /^accounts\[1\]\.id: duplicate account id "home"/,
      /^accounts\[1\]\.incoming\.foldres: unknown key \(did you mean folders\?\)/,
    ];
    for (const re of expected)
      assert.ok(
        problems.some((p) => re.test(p)),
        `missing ${re} in:\n${problems.join('\n')}`,
      );
    assert.equal(problems.length, expected.length, problems.join('\n'));
    assert.ok(problems.find((p) => p.startsWith('accounts[0].incoming.port'))!.endsWith('(line 11)'));
  });

  it('reads listen.imap with the keys of listen.pop3: TLS block with its IMAPS port, limits, enabled', () => {
    const c = parseConfigText(
      `listen:\n  imap: { port: 2143, hosts: ["127.0.0.1"], maxConnections: 5, tls: { cert: /c, key: /k } }\n${MINIMAL}`,
    );
    assert.deepEqual(c.listen.imap, {
      port: 2143,
      hosts: ['127.0.0.1'],
      maxConnections: 5,
      maxConnectionsPerAddress: 10,
      enabled: true,
      tls: { cert: '/c', key: '/k', port: 1993, legacy: false },
    });
    assert.equal(parseConfigText(`listen:\n  imap: { enabled: false }\n${MINIMAL}`).listen.imap.enabled, false);
    const problems = problemsOf(() =>
      parseConfigText(`listen:\n  imap: { hosts: ["0.0.0.0"], tls: sometimes, workarounds: [] }\n${MINIMAL}`),
    );
    assert.ok(
      problems.some((p) => /^listen\.imap\.hosts\[0\]: 0\.0\.0\.0 is not a loopback/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /^listen\.imap\.tls: expected auto, off/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /^listen\.imap.*workarounds/.test(p)),
      problems.join('\n'),
    );
  });

  it('says a port out of range is out of range, not "expected a number"', () => {
    const problems = problemsOf(() =>
      parseConfigText(`
listen:
  pop3: { port: 99999, tls: { cert: /c, key: /k, port: -1 } }
  smtp: { port: 1.5 }
accounts:
  - id: home
    email: me@example.com
    login: { password: local }
    incoming: { protocol: pop3, host: h, port: 0, username: me, password: p }
    outgoing: { host: h, port: 70000, username: me, password: p }
`),
    );
    const any = 'must be a port number from 1 to 65535, or 0 for any free port';
    assert.deepEqual(problems, [
      `listen.pop3.port: ${any} (line 3)`,
      `listen.pop3.tls.port: ${any} (line 3)`,
      'listen.smtp.port: expected a whole number (line 4)',
      'accounts[0].incoming.port: must be a port number from 1 to 65535 (line 9)',
      'accounts[0].outgoing.port: must be a port number from 1 to 65535 (line 10)',
    ]);
  });

  it('reports missing keys, a missing login password, bad units and bad ids', () => {
    const problems = problemsOf(() =>
      parseConfigText(`
outbox: { maxAge: 5 days, retry: { initial: 2h, max: 1h } }
accounts:
  - id: Home
    login: {}
    incoming: { protocol: imap, host: h, username: u, password: { envv: X }, maxMessageSize: 5XB }
`),
    );
    const expected = [
      /^outbox\.maxAge: expected a duration/,
      /^outbox\.retry\.initial: must not be longer than retry\.max/,
      /^accounts\[0\]\.id: expected lower-case letters/,
      /^accounts\[0\]\.email: required/,
      /^accounts\[0\]\.login: needs password or passwordHash/,
      /^accounts\[0\]\.incoming\.password: expected a string, or one of \{ env: NAME \}/,
      /^accounts\[0\]\.incoming\.maxMessageSize: expected a size/,
    ];
    for (const re of expected)
      assert.ok(
        problems.some((p) => re.test(p)),
        `missing ${re} in:\n${problems.join('\n')}`,
      );
  });

  it('refuses a passwordHash whose scrypt parameters would make one login cost seconds or gigabytes', () => {
    const text = (params: string) => `
accounts:
  - id: home
    email: me@example.com
    login: { passwordHash: "scrypt$${params}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }
    incoming: { protocol: imap, host: h, username: u, password: p }
`;
    assert.deepEqual(
      problemsOf(() => parseConfigText(text('1048576$32$16'))),
      [
        'accounts[0].login.passwordHash: scrypt parameters N=1048576 r=32 p=16 are too costly for a login ' +
          '(4096 MiB, N×r×p=536870912; at most 128 MiB and N×r×p ≤ 1048576): make a new hash with `localpost hash-password` (line 5)',
      ],
    );
    assert.match(problemsOf(() => parseConfigText(text('16384$8$64')))[0] ?? '', /too costly.*N×r×p=8388608/);
    assert.equal(parseConfigText(text('16384$8$1')).accounts[0]?.login.passwordHash?.slice(0, 16), 'scrypt$16384$8$1');
  });

  it('allows a remote host only with allowRemote, and accepts other loopback spellings', () => {
    const cfg = (pop3: string) => `listen:\n  pop3: ${pop3}\n${MINIMAL}`;
    assert.deepEqual(parseConfigText(cfg('{ hosts: [localhost, 127.0.0.2, "::ffff:127.0.0.1"] }')).listen.pop3.hosts, [
      'localhost',
      '127.0.0.2',
      '::ffff:127.0.0.1',
    ]);
    assert.equal(parseConfigText(cfg('{ hosts: ["::"], allowRemote: true }')).listen.pop3.allowRemote, true);
    assert.match(
      problemsOf(() => parseConfigText(cfg('{ hosts: ["::"] }')))[0]!,
      /^listen\.pop3\.hosts\[0\]: :: is not a loopback/,
    );
  });

  it('rejects two accounts with the same local user name', () => {
    const two = `${MINIMAL}  - id: work
    email: w@example.com
    login: { username: home, password: x }
    incoming: { protocol: pop3, host: h, username: u, password: p }
`;
    assert.match(
      problemsOf(() => parseConfigText(two))[0]!,
      /^accounts\[1\]\.login\.username: local user name "home" is already used/,
    );
  });

  it('reports YAML syntax errors with line and column', () => {
    const problems = problemsOf(() => parseConfigText('log:\n  level: info\n bad: 1\n', 'x.yaml'));
    assert.ok(problems.length >= 1);
    assert.match(problems[0]!, /^3:\d+: /);
    assert.throws(
      () => parseConfigText('a: 1\na: 2\n'),
      (err: ConfigError) => /^2:1: .*unique/i.test(err.problems[0]!),
    );
  });

  it('an empty file asks for accounts', () => {
    assert.deepEqual(
      problemsOf(() => parseConfigText('')),
      ['accounts: required'],
    );
  });
});

describe('units and paths', () => {
  it('parses durations to ms and sizes to bytes (1 KB = 1024)', () => {
    assert.deepEqual(
      ['500ms', '10s', '5m', '1h', '5d', '1.5s', 0].map((d) => parseDuration(d)),
      [500, 10_000, 300_000, 3_600_000, 432_000_000, 1500, 0],
    );
    assert.equal(parseDuration('10'), undefined);
    assert.equal(parseDuration(10), undefined);
    assert.deepEqual(
      ['512KB', '50MB', '1GB', '100', 4096].map((s) => parseSize(s)),
      [524_288, 52_428_800, 1_073_741_824, 100, 4096],
    );
    assert.equal(parseSize('5XB'), undefined);
  });

  it('expands ~ and $VARS in dataDir, tlsCa and secret file paths', () => {
    const home = process.env.HOME!;
    process.env.LP_TEST_DIR = '/opt/lp';
    try {
      assert.equal(expandPath('~'), home);
      assert.equal(expandPath('~/x'), `${home}/x`);
      assert.equal(expandPath('$HOME/x'), `${home}/x`);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config syntax under test, not a template
      assert.equal(expandPath('${LP_TEST_DIR}/ca.pem'), '/opt/lp/ca.pem');
      assert.equal(expandPath('/a/~b'), '/a/~b');
      assert.throws(() => expandPath('$LP_TEST_UNSET/x'), /LP_TEST_UNSET is not set/);
      const c = parseConfigText(`dataDir: ~/mail
accounts:
  - id: home
    email: me@example.com
    login: { password: local }
    incoming: { protocol: pop3, host: h, tlsCa: $LP_TEST_DIR/ca.pem, username: me, password: { file: $HOME/pw } }
`);
      assert.equal(c.dataDir, `${home}/mail`);
      assert.equal(c.accounts[0]!.incoming.tlsCa, '/opt/lp/ca.pem');
      assert.deepEqual(c.accounts[0]!.incoming.password, { file: `${home}/pw` });
      assert.match(
        problemsOf(() => parseConfigText(`dataDir: mail\n${MINIMAL}`))[0]!,
        /^dataDir: expected an absolute path/,
      );
      assert.match(
        problemsOf(() => parseConfigText(`dataDir: $LP_TEST_UNSET/x\n${MINIMAL}`))[0]!,
        /^dataDir: environment variable \$LP_TEST_UNSET is not set/,
      );
    } finally {
      delete process.env.LP_TEST_DIR;
    }
  });
});

describe('config file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'localpost-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the file: --config, then $LOCALPOST_CONFIG, then the XDG location', () => {
    assert.equal(configPath('/a.yaml', { LOCALPOST_CONFIG: '/b.yaml' }), '/a.yaml');
    assert.equal(configPath(undefined, { LOCALPOST_CONFIG: '/b.yaml', XDG_CONFIG_HOME: '/x' }), '/b.yaml');
    assert.equal(configPath(undefined, { XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/localpost/config.yaml');
    assert.equal(configPath(undefined, { HOME: '/h' }), '/h/.config/localpost/config.yaml');
  });

  it('loads a file, and a missing file says where it looked and suggests init', async () => {
    const file = join(dir, 'config.yaml');
    await writeFile(file, MINIMAL);
    assert.equal((await loadConfig(file)).accounts[0]!.id, 'home');
    await assert.rejects(loadConfig(join(dir, 'nope.yaml')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /nope\.yaml/);
      assert.match(err.message, /localpost init/);
      return true;
    });
  });
});

describe('secrets', () => {
  const ctx = { account: 'home', key: 'incoming.password' };
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'localpost-secret-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves a literal, {env}, {file} and {command}', async () => {
    assert.equal(await resolveSecret('lit', ctx), 'lit');
    assert.equal(await resolveSecret({ env: 'LP_PW' }, { ...ctx, env: { LP_PW: 'from-env' } }), 'from-env');
    const file = join(dir, 'pw');
    await writeFile(file, 'from-file\n\n', { mode: 0o600 });
    const warnings: string[] = [];
    assert.equal(await resolveSecret({ file }, { ...ctx, warn: (m) => warnings.push(m) }), 'from-file\n');
    assert.equal(warnings.length, 0);
    await chmod(file, 0o644);
    await resolveSecret({ file }, { ...ctx, warn: (m) => warnings.push(m) });
    assert.match(warnings[0]!, /readable by group or others \(mode 644\)/);
    assert.equal(await resolveSecret({ command: 'printf "from-cmd\\nsecond\\n"' }, ctx), 'from-cmd');
  });

  it('errors name the account and key but never the secret', async () => {
    const cases: Array<[Parameters<typeof resolveSecret>[0], RegExp]> = [
      [{ env: 'LP_UNSET_PW' }, /LP_UNSET_PW is not set/],
      [{ command: 'echo s3cr3t-value; echo oops >&2; exit 3' }, /exited with status 3: oops/],
      [{ command: 'echo s3cr3t-value >&2; echo s3cr3t-value; exit 1' }, /exited with status 1$/],
      [{ command: 'echo s3cr3t-value; sleep 5; true' }, /timed out after 200 ms/],
      [{ file: join(dir, 'missing') }, /cannot read .*missing \(ENOENT\)/],
      [{ command: 'true' }, /printed nothing/],
    ];
    for (const [secret, re] of cases) {
      await assert.rejects(
        resolveSecret(secret, { ...ctx, env: { PATH: process.env.PATH }, timeoutMs: 200 }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /account "home" incoming\.password/);
          assert.match(err.message, re);
          assert.doesNotMatch(err.message, /s3cr3t/);
          return true;
        },
      );
    }
  });
});

describe('example config', () => {
  it('equals the committed file', async () => {
    const committed = await readFile(new URL(`../../${EXAMPLE_CONFIG_PATH}`, import.meta.url), 'utf8');
    assert.equal(
      committed,
      renderExampleConfig(),
      'config/localpost.example.yaml is stale: run `node --import tsx src/config/example.ts`',
    );
  });

  it('is a valid config, mentions every top-level key, and shows the real defaults', () => {
    const text = renderExampleConfig();
    for (const key of Object.keys(configSchema.shape)) assert.match(text, new RegExp(`^(# )?${key}:`, 'm'));
    const saved = process.env.XDG_DATA_HOME;
    delete process.env.XDG_DATA_HOME;
    try {
      const asShipped = parseConfigText(text);
      const withDefaults = renderExampleConfig({ activeDefaults: true });
      assert.deepEqual(Object.keys(parseYaml(withDefaults)), Object.keys(configSchema.shape));
      assert.deepEqual(parseConfigText(withDefaults), asShipped);
    } finally {
      if (saved !== undefined) process.env.XDG_DATA_HOME = saved;
    }
  });
});
