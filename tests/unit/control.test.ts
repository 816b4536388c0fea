/**
 * The control API protocol: the server on a real Unix socket (mode 0600, a stale socket file
 * replaced, a live one refused, removed at stop), routing (path parameters, 404, 405), bodies
 * (JSON, malformed JSON, too large), error mapping (ControlError status, anything else 500),
 * and the client's errors (ControlRequestError with the daemon's message; ControlUnavailableError
 * when nothing listens); and where the socket goes when `<dataDir>/control.sock` is too long for
 * a Unix socket: a private runtime directory (XDG_RUNTIME_DIR or the temp directory), nothing
 * bound at a truncated path, and a runtime directory another user could control refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ControlRequestError, ControlUnavailableError, control, controlRequest } from '../../src/control/client.js';
import { ControlError, controlSocketLocation, controlSocketPath, MAX_BODY } from '../../src/control/protocol.js';
import { type ControlRoute, ControlServer, matchPath } from '../../src/control/server.js';
import { socketsUnder } from '../support/localpost.js';
import { PYTHON } from '../support/python.js';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const routes: ControlRoute[] = [
  { method: 'GET', path: '/status', handle: async () => ({ version: 1, ok: true }) },
  { method: 'POST', path: '/sync', handle: async ({ body }) => ({ records: [], echo: body }) },
  {
    method: 'POST',
    path: '/outbox/retry/:id',
    handle: async ({ params }) => {
      if (params.id !== 'a 1') throw new ControlError(404, `no queued or failed outbox entry ${params.id}`);
      return { id: params.id, queued: true };
    },
  },
  {
    method: 'POST',
    path: '/reload',
    handle: async () => {
      throw new Error('disk on fire');
    },
  },
];

/** A raw request, for what the typed client never sends. */
function raw(
  socketPath: string,
  method: string,
  p: string,
  body?: string,
): Promise<{ status: number; json: { error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { error?: string } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('control server and client', () => {
  const dataDir = path.join(dir, 'data');
  let server: ControlServer;

  before(async () => {
    execFileSync('mkdir', ['-p', dataDir]);
    // a socket file left by a crashed daemon: bound, never listened on, never removed
    execFileSync(PYTHON, [
      '-c',
      'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
      controlSocketPath(dataDir),
    ]);
    assert.ok(statSync(controlSocketPath(dataDir)).isSocket());
    server = new ControlServer({ dataDir, routes, log });
    await server.start();
  });
  after(async () => {
    await server.stop();
  });

  it('replaced the stale socket and made it 0600', () => {
    assert.equal(statSync(server.socketPath).mode & 0o777, 0o600);
  });

  it('answers GET and POST with JSON, path parameters decoded', async () => {
    assert.deepEqual(await control.status(dataDir), { version: 1, ok: true });
    assert.deepEqual(await controlRequest(dataDir, 'POST', '/sync', { body: { accounts: ['home'] } }), {
      records: [],
      echo: { accounts: ['home'] },
    });
    assert.deepEqual(await control.sync(dataDir), []);
    assert.deepEqual(await control.retry(dataDir, 'a 1'), { id: 'a 1', queued: true });
  });

  it('maps errors to statuses with a message', async () => {
    await assert.rejects(
      control.retry(dataDir, 'nope'),
      (e: unknown) =>
        e instanceof ControlRequestError && e.status === 404 && e.message === 'no queued or failed outbox entry nope',
    );
    await assert.rejects(
      controlRequest(dataDir, 'GET', '/nowhere'),
      (e: unknown) => e instanceof ControlRequestError && e.status === 404,
    );
    await assert.rejects(
      controlRequest(dataDir, 'GET', '/sync'),
      (e: unknown) => e instanceof ControlRequestError && e.status === 405 && /use POST/.test(e.message),
    );
    await assert.rejects(
      control.reload(dataDir),
      (e: unknown) => e instanceof ControlRequestError && e.status === 500 && e.message === 'disk on fire',
    );
    const bad = await raw(server.socketPath, 'POST', '/sync', '{not json');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error ?? '', /not valid JSON/);
    const big = await raw(server.socketPath, 'POST', '/sync', JSON.stringify({ x: 'y'.repeat(MAX_BODY) }));
    assert.equal(big.status, 413);
  });

  it('refuses to start over a socket another server listens on', async () => {
    const second = new ControlServer({ dataDir, routes, log });
    await assert.rejects(second.start(), /in use by another process/);
    assert.deepEqual(await control.status(dataDir), { version: 1, ok: true }, 'the first one still answers');
  });

  it('replaces a plain file in the way, and removes the socket at stop', async () => {
    const other = path.join(dir, 'other');
    execFileSync('mkdir', ['-p', other]);
    writeFileSync(controlSocketPath(other), 'junk');
    const s = new ControlServer({ dataDir: other, routes, log });
    await s.start();
    assert.deepEqual(await control.status(other), { version: 1, ok: true });
    await s.stop();
    assert.equal(existsSync(controlSocketPath(other)), false);
    await assert.rejects(control.status(other), ControlUnavailableError);
  });
});

describe('matchPath', () => {
  it('matches literal segments and captures parameters', () => {
    assert.deepEqual(matchPath('/status', '/status'), {});
    assert.deepEqual(matchPath('/outbox/drop/:id', '/outbox/drop/abc%2Fd'), { id: 'abc/d' });
    assert.equal(matchPath('/outbox/drop/:id', '/outbox/drop/'), undefined);
    assert.equal(matchPath('/outbox/drop/:id', '/outbox/drop/a/b'), undefined);
    assert.equal(matchPath('/outbox/drop/:id', '/outbox/drop/%E0%A4%A'), undefined);
    assert.equal(matchPath('/status', '/statuses'), undefined);
  });
});

describe('the socket of a data directory too long for a Unix socket', () => {
  const saved = { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR, TMPDIR: process.env.TMPDIR };
  const root = path.join(dir, 'long');
  const longData = path.join(root, 'd'.repeat(60), 'e'.repeat(60));
  const hashName = `${createHash('sha256').update(path.resolve(longData)).digest('hex').slice(0, 16)}.sock`;
  /** A fresh directory to point XDG_RUNTIME_DIR or TMPDIR at. */
  let n = 0;
  const freshDir = () => {
    const d = path.join(dir, `rt${++n}`);
    mkdirSync(d);
    return d;
  };

  before(() => {
    mkdirSync(longData, { recursive: true });
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('keeps <dataDir>/control.sock for a short data directory', () => {
    const short = path.join(dir, 'data');
    assert.deepEqual(controlSocketLocation(short), { file: path.join(short, 'control.sock') });
    assert.equal(controlSocketPath(short), path.join(short, 'control.sock'));
  });

  it('listens in $XDG_RUNTIME_DIR/localpost (0700), answers, and binds nothing at a truncated path', async () => {
    assert.ok(Buffer.byteLength(path.join(longData, 'control.sock')) > 120);
    const xdg = freshDir();
    process.env.XDG_RUNTIME_DIR = xdg;
    const rt = path.join(xdg, 'localpost');
    const s = new ControlServer({ dataDir: longData, routes, log });
    assert.equal(s.socketPath, path.join(rt, hashName));
    assert.equal(controlSocketPath(longData), s.socketPath, 'the client computes the same path');
    await s.start();
    try {
      assert.deepEqual(await control.status(longData), { version: 1, ok: true });
      assert.ok(statSync(s.socketPath).isSocket());
      assert.equal(statSync(s.socketPath).mode & 0o777, 0o600);
      const st = lstatSync(rt);
      assert.ok(st.isDirectory());
      assert.equal(st.mode & 0o777, 0o700);
      // Linux truncates at 107 or 108 bytes, macOS at 103 or 104: nothing there, and the only
      // socket anywhere under the test directory is the real one
      const full = Buffer.from(path.join(longData, 'control.sock'));
      for (const len of [103, 104, 107, 108])
        assert.equal(existsSync(full.subarray(0, len).toString()), false, `truncated at ${len}`);
      assert.deepEqual(socketsUnder(dir), [s.socketPath]);
      assert.deepEqual(readdirSync(longData), [], 'nothing in the data directory itself');
    } finally {
      await s.stop();
    }
    assert.equal(existsSync(s.socketPath), false, 'removed at stop');
    await assert.rejects(
      control.status(longData),
      (e: unknown) => e instanceof ControlUnavailableError && e.message === `no daemon listens on ${s.socketPath}`,
    );
  });

  it('falls back to <tmpdir>/localpost-<uid> without a usable XDG_RUNTIME_DIR', async () => {
    const tmp = freshDir();
    process.env.TMPDIR = tmp;
    process.env.XDG_RUNTIME_DIR = path.join(dir, 'no-such-dir');
    const rt = path.join(tmp, `localpost-${process.getuid!()}`);
    assert.deepEqual(controlSocketLocation(longData), { file: path.join(rt, hashName), runtimeDir: rt });
    delete process.env.XDG_RUNTIME_DIR;
    assert.equal(controlSocketPath(longData), path.join(rt, hashName));
    // no runtime directory yet: the client reports no daemon and creates nothing
    await assert.rejects(control.status(longData), ControlUnavailableError);
    assert.equal(existsSync(rt), false);
    const s = new ControlServer({ dataDir: longData, routes, log });
    await s.start();
    try {
      assert.equal(lstatSync(rt).mode & 0o777, 0o700);
      assert.deepEqual(await control.status(longData), { version: 1, ok: true });
    } finally {
      await s.stop();
    }
    delete process.env.TMPDIR;
  });

  it("refuses a runtime directory that is open to others, a symlink, not a directory, or not the user's", async () => {
    const cases: Array<{ what: string; make(rt: string): void; error: RegExp }> = [
      {
        what: 'mode 0777',
        make: (rt) => {
          mkdirSync(rt);
          chmodSync(rt, 0o777);
        },
        error: /its mode is 0777, not 0700/,
      },
      {
        what: 'mode 0750',
        make: (rt) => {
          mkdirSync(rt);
          chmodSync(rt, 0o750);
        },
        error: /its mode is 0750, not 0700/,
      },
      {
        what: 'a symlink to a private directory',
        make: (rt) => {
          const target = freshDir();
          chmodSync(target, 0o700);
          symlinkSync(target, rt);
        },
        error: /it is a symbolic link/,
      },
      { what: 'a file', make: (rt) => writeFileSync(rt, ''), error: /it is not a directory/ },
    ];
    // another owner can only be arranged as root
    if (process.getuid!() === 0)
      cases.push({
        what: 'owned by another user',
        make: (rt) => {
          mkdirSync(rt, { mode: 0o700 });
          chownSync(rt, 65534, 65534);
        },
        error: /owned by uid 65534, not 0/,
      });
    for (const c of cases) {
      const xdg = freshDir();
      process.env.XDG_RUNTIME_DIR = xdg;
      const rt = path.join(xdg, 'localpost');
      c.make(rt);
      const s = new ControlServer({ dataDir: longData, routes, log });
      await assert.rejects(
        s.start(),
        (e: unknown) =>
          e instanceof Error &&
          e.message.startsWith(`refusing to use ${rt} for the control socket: `) &&
          c.error.test(e.message),
        c.what,
      );
      await s.stop();
      // the client refuses to connect there too, and says why (not "no daemon")
      await assert.rejects(
        control.status(longData),
        (e: unknown) => !(e instanceof ControlUnavailableError) && e instanceof Error && c.error.test(e.message),
        c.what,
      );
      assert.deepEqual(socketsUnder(xdg).concat(socketsUnder(longData)), [], `${c.what}: nothing bound`);
    }
  });

  it('fails with a clear error when even the runtime directory path is too long', async () => {
    const xdg = path.join(freshDir(), 'x'.repeat(90));
    mkdirSync(xdg);
    process.env.XDG_RUNTIME_DIR = xdg;
    assert.throws(
      () => new ControlServer({ dataDir: longData, routes, log }),
      /too long for a Unix socket .*set XDG_RUNTIME_DIR or TMPDIR to a shorter directory/,
    );
    await assert.rejects(control.status(longData), /too long for a Unix socket/);
    assert.deepEqual(socketsUnder(dir), []);
  });
});
