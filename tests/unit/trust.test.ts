/**
 * The trust rule of shared/trust.ts (docs/security.md): the pure function over stat-like input,
 * then the checks on real files: a config or its directory another user owns or can write is
 * refused, and the data directory is refused as a symlink or another user's, tightened to 0700
 * when it is ours. Owners other than root need chown, so those cases run as root (as CI does).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { openStateDb } from '../../src/cache/state-db.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/shared/errors.js';
import {
  checkConfigTrust,
  dataDirProblem,
  ensureDataDir,
  type StatLike,
  type TrustRole,
  trustProblem,
} from '../../src/shared/trust.js';

const ME = 1000;
const NOBODY = 65534;
const asRoot = process.geteuid?.() === 0;
const needsRoot = asRoot ? false : 'chown to another user needs root (CI runs as root)';

const file = (uid: number, mode: number): StatLike => ({
  uid,
  mode: 0o100000 | mode,
  isFile: () => true,
  isDirectory: () => false,
  isSymbolicLink: () => false,
});
const dir = (uid: number, mode: number): StatLike => ({
  ...file(uid, mode),
  mode: 0o040000 | mode,
  isFile: () => false,
  isDirectory: () => true,
});
const link = (uid: number): StatLike => ({ ...file(uid, 0o777), isFile: () => false, isSymbolicLink: () => true });

describe('trustProblem (pure)', () => {
  test('config file: owned by the daemon user or root, writable by no one else', () => {
    const ok: Array<[StatLike, number]> = [
      [file(ME, 0o600), ME],
      [file(ME, 0o644), ME],
      [file(0, 0o640), ME], // the system service: root:localpost 0640
      [file(0, 0o600), 0],
    ];
    for (const [st, uid] of ok) assert.equal(trustProblem('config', st, uid), undefined);
    assert.equal(
      trustProblem('config', file(NOBODY, 0o600), ME),
      `it is owned by uid ${NOBODY}, neither the daemon's user (uid ${ME}) nor root`,
    );
    assert.equal(
      trustProblem('config', file(NOBODY, 0o600), 0),
      `it is owned by uid ${NOBODY}, neither the daemon's user (uid 0) nor root`,
    );
    assert.equal(trustProblem('config', file(ME, 0o620), ME), 'it is writable by group');
    assert.equal(trustProblem('config', file(0, 0o602), ME), 'it is writable by others');
    assert.equal(trustProblem('config', file(ME, 0o666), ME), 'it is writable by group and others');
    assert.equal(trustProblem('config', dir(ME, 0o700), ME), 'it is not a regular file');
  });

  test('directories: the config directory allows no sticky exception, the ones above do', () => {
    const roles: TrustRole[] = ['config-dir', 'ancestor'];
    for (const role of roles) {
      assert.equal(trustProblem(role, dir(ME, 0o755), ME), undefined);
      assert.equal(trustProblem(role, dir(0, 0o755), ME), undefined);
      assert.match(trustProblem(role, dir(NOBODY, 0o755), ME) ?? '', /owned by uid 65534/);
      assert.equal(trustProblem(role, dir(ME, 0o775), ME), 'it is writable by group');
      assert.equal(trustProblem(role, file(ME, 0o600), ME), 'it is not a directory');
    }
    assert.equal(trustProblem('config-dir', dir(0, 0o1777), ME), 'it is writable by group and others');
    assert.equal(trustProblem('ancestor', dir(0, 0o1777), ME), undefined); // /tmp
    assert.match(trustProblem('ancestor', dir(NOBODY, 0o1777), ME) ?? '', /owned by uid 65534/);
  });

  test('data directory: ours, a real directory; root owning it is not the daemon user', () => {
    assert.equal(trustProblem('data-dir', dir(ME, 0o700), ME), undefined);
    assert.equal(trustProblem('data-dir', dir(ME, 0o777), ME), undefined); // tightened, not refused
    assert.equal(trustProblem('data-dir', link(ME), ME), 'it is a symbolic link');
    assert.equal(trustProblem('data-dir', file(ME, 0o600), ME), 'it is not a directory');
    assert.match(trustProblem('data-dir', dir(0, 0o700), ME) ?? '', /owned by uid 0, not by the daemon's user/);
  });
});

describe('on real files', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lp-trust-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  /** A fresh directory (0700) with a valid config.yaml (0644) in it. */
  const fresh = () => {
    const d = path.join(root, `c${++n}`);
    mkdirSync(d, { mode: 0o700 });
    const cfg = path.join(d, 'config.yaml');
    writeFileSync(cfg, `dataDir: ${path.join(d, 'data')}\naccounts: []\n`, { mode: 0o644 });
    chmodSync(cfg, 0o644);
    return { d, cfg };
  };
  const refused = (re: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, re);
    return true;
  };

  test('a config file writable by its group, or its directory by others, is refused naming file, owner, mode', async () => {
    const a = fresh();
    assert.equal(await checkConfigTrust(a.cfg), a.cfg);
    chmodSync(a.cfg, 0o664);
    const uid = process.geteuid?.() ?? 0;
    await assert.rejects(
      loadConfig(a.cfg),
      refused(
        new RegExp(
          `^refusing the config file ${a.cfg}: it is writable by group \\(owner uid ${uid}, mode 0664\\); chown`,
        ),
      ),
    );
    const b = fresh();
    chmodSync(b.d, 0o1777); // sticky is no exception for the config's own directory
    await assert.rejects(
      checkConfigTrust(b.cfg),
      refused(
        /^refusing the directory of the config file .*: it is writable by group and others \(owner uid \d+, mode 1777\)/,
      ),
    );
  });

  test('a symlinked config is checked where it leads, and where the link lies', async () => {
    const target = fresh();
    const l = fresh();
    const name = path.join(l.d, 'linked.yaml');
    symlinkSync(target.cfg, name);
    assert.equal(await checkConfigTrust(name), target.cfg);
    chmodSync(target.d, 0o777);
    await assert.rejects(checkConfigTrust(name), refused(/the directory of the config file .*c\d+: it is writable/));
    chmodSync(target.d, 0o700);
    chmodSync(l.d, 0o770);
    await assert.rejects(
      checkConfigTrust(name),
      refused(new RegExp(`the directory of the config file ${l.d}: it is writable by group`)),
    );
  });

  test('a config file or a directory above it owned by another user is refused', { skip: needsRoot }, async () => {
    const a = fresh();
    chownSync(a.cfg, NOBODY, NOBODY);
    await assert.rejects(
      checkConfigTrust(a.cfg),
      refused(/owned by uid 65534, neither .* nor root \(owner uid 65534, mode 0644\)/),
    );
    const b = fresh();
    const deep = path.join(b.d, 'sub');
    mkdirSync(deep);
    const cfg = path.join(deep, 'config.yaml');
    writeFileSync(cfg, 'accounts: []\n');
    chownSync(b.d, NOBODY, NOBODY);
    await assert.rejects(
      checkConfigTrust(cfg),
      refused(/^refusing a directory above .*config\.yaml, .*c\d+: it is owned by uid 65534/),
    );
  });

  test('the data directory: created 0700, a loose one of ours tightened with a log line, a symlink refused', async () => {
    const { d } = fresh();
    const data = path.join(d, 'data');
    await ensureDataDir(data);
    assert.equal(statSync(data).mode & 0o7777, 0o700);
    chmodSync(data, 0o755);
    assert.match((await dataDirProblem(data))?.loose ?? '', /is mode 0755; start makes it 0700/);
    const warnings: string[] = [];
    await ensureDataDir(data, { warn: (_o, msg) => warnings.push(msg) });
    assert.equal(statSync(data).mode & 0o7777, 0o700);
    assert.deepEqual(warnings, ["the data directory was mode 0755: now 0700, private to the daemon's user"]);
    const linked = path.join(d, 'linked-data');
    symlinkSync(data, linked);
    await assert.rejects(
      ensureDataDir(linked),
      refused(/^refusing the data directory .*linked-data: it is a symbolic link/),
    );
    assert.match((await dataDirProblem(linked))?.refused ?? '', /it is a symbolic link/);
  });

  test('a data directory another user owns is refused and left alone', { skip: needsRoot }, async () => {
    const { d } = fresh();
    const data = path.join(d, 'data');
    mkdirSync(data, { mode: 0o755 });
    chownSync(data, NOBODY, NOBODY);
    await assert.rejects(
      ensureDataDir(data),
      refused(/owned by uid 65534, not by the daemon's user .*\(owner uid 65534, mode 0755\)/),
    );
    assert.equal(statSync(data).mode & 0o7777, 0o755);
  });
});

describe('state.db', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'lp-trust-db-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const log = pino({ level: 'silent' });

  test('is created 0600 whatever the umask, and a looser one is tightened', async () => {
    const file = path.join(root, 'state.db');
    const old = process.umask(0o022);
    try {
      (await openStateDb({ file, log })).close();
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(file).mode & 0o7777, 0o600);
    chmodSync(file, 0o644);
    (await openStateDb({ file, log })).close();
    assert.equal(statSync(file).mode & 0o7777, 0o600);
  });

  test('a symbolic link in its place is refused, never written through', async () => {
    const d = path.join(root, 'linked');
    mkdirSync(d);
    const target = path.join(root, 'target');
    writeFileSync(target, '');
    symlinkSync(target, path.join(d, 'state.db'));
    await assert.rejects(openStateDb({ file: path.join(d, 'state.db'), log }), { code: 'ELOOP' });
    assert.equal(statSync(target).size, 0);
  });
});
