/**
 * The control API protocol: the server on a real Unix socket (mode 0600, a stale socket file
 * replaced, a live one refused, removed at stop), routing (path parameters, 404, 405), bodies
 * (JSON, malformed JSON, too large), error mapping (ControlError status, anything else 500),
 * and the client's errors (ControlRequestError with the daemon's message; ControlUnavailableError
 * when nothing listens).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { controlRequest, ControlRequestError, ControlUnavailableError, control } from '../../src/daemon/control/client.js';
import { ControlError, controlSocketPath, MAX_BODY } from '../../src/daemon/control/protocol.js';
import { ControlServer, matchPath, type ControlRoute } from '../../src/daemon/control/server.js';
import { PYTHON } from '../support/python.js';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const routes: ControlRoute[] = [
  { method: 'GET', path: '/status', handle: async () => ({ version: 1, ok: true }) },
  { method: 'POST', path: '/sync', handle: async ({ body }) => ({ records: [], echo: body }) },
  {
    method: 'POST', path: '/outbox/retry/:id',
    handle: async ({ params }) => {
      if (params.id !== 'a 1') throw new ControlError(404, `no queued or failed outbox entry ${params.id}`);
      return { id: params.id, queued: true };
    },
  },
  { method: 'POST', path: '/reload', handle: async () => { throw new Error('disk on fire'); } },
];

/** A raw request, for what the typed client never sends. */
function raw(socketPath: string, method: string, p: string, body?: string): Promise<{ status: number; json: { error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
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
    execFileSync(PYTHON, ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', controlSocketPath(dataDir)]);
    assert.ok(statSync(controlSocketPath(dataDir)).isSocket());
    server = new ControlServer({ dataDir, routes, log });
    await server.start();
  });
  after(async () => { await server.stop(); });

  it('replaced the stale socket and made it 0600', () => {
    assert.equal(statSync(server.socketPath).mode & 0o777, 0o600);
  });

  it('answers GET and POST with JSON, path parameters decoded', async () => {
    assert.deepEqual(await control.status(dataDir), { version: 1, ok: true });
    assert.deepEqual(await controlRequest(dataDir, 'POST', '/sync', { body: { accounts: ['home'] } }), { records: [], echo: { accounts: ['home'] } });
    assert.deepEqual(await control.sync(dataDir), []);
    assert.deepEqual(await control.retry(dataDir, 'a 1'), { id: 'a 1', queued: true });
  });

  it('maps errors to statuses with a message', async () => {
    await assert.rejects(control.retry(dataDir, 'nope'), (e: unknown) =>
      e instanceof ControlRequestError && e.status === 404 && e.message === 'no queued or failed outbox entry nope');
    await assert.rejects(controlRequest(dataDir, 'GET', '/nowhere'), (e: unknown) => e instanceof ControlRequestError && e.status === 404);
    await assert.rejects(controlRequest(dataDir, 'GET', '/sync'), (e: unknown) =>
      e instanceof ControlRequestError && e.status === 405 && /use POST/.test(e.message));
    await assert.rejects(control.reload(dataDir), (e: unknown) => e instanceof ControlRequestError && e.status === 500 && e.message === 'disk on fire');
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
