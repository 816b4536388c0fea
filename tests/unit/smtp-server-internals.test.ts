/**
 * The private parts of smtp-server that src/listeners/smtp/connection.ts (and server.ts's stop())
 * rely on, pinned on the installed version, so that an upgrade that renames or drops one fails
 * here with its name rather than as a silent change of behaviour:
 *
 * - SMTPConnection (the internal module connection.ts imports): the constructor's
 *   (server, socket, options); the overridden `_onCommand`, `_onClose`, `handler_EHLO`,
 *   `handler_HELO`, `send`; `init`, `close`; the fields `_server`, `_socket`, `_parser` (with
 *   `_remainder`, the incomplete command line), `_dataStream` (falsy outside DATA), `session`,
 *   `remoteAddress`; and the behaviour the overrides count on: commands pass through
 *   `_onCommand`, a closed socket reaches `_onClose`, EHLO answers with one synchronous
 *   `send(250, lines)`.
 * - SMTPServer: `connect` (copied by LocalpostSmtpServer, so its body must not change), which
 *   builds the same SMTPConnection class; `connections`, `server`, `_onError`,
 *   `_onClientConnect`, `close`.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { waitFor } from '../support/localpost.js';

const VERSION = (createRequire(import.meta.url)('smtp-server/package.json') as { version: string }).version;
const gone = (what: string) => `smtp-server ${VERSION}: ${what} vanished or changed; src/listeners/smtp relies on it`;

/** Asserts that `owner[name]` is a method taking `arity` parameters. */
function method(owner: object, label: string, name: string, arity: number): void {
  const f = (owner as Record<string, unknown>)[name];
  assert.equal(typeof f, 'function', gone(`${label}.${name}()`));
  assert.equal((f as (...a: unknown[]) => unknown).length, arity, gone(`${label}.${name}() taking ${arity} arguments`));
}

/** A server-side socket with its client end (loopback). */
async function socketPair(): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  const [server] = await accepted;
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

const cleanup: Array<() => void> = [];
after(() => {
  for (const f of cleanup) f();
});

const newServer = () =>
  new SMTPServer({ disableReverseLookup: true, logger: false, authOptional: true, disabledCommands: ['STARTTLS'] });

describe(`smtp-server ${VERSION} internals used by src/listeners/smtp`, () => {
  test('SMTPConnection: the methods connection.ts overrides or calls', () => {
    assert.equal(
      typeof SMTPConnection,
      'function',
      gone('the SMTPConnection export of smtp-server/lib/smtp-connection.js'),
    );
    assert.equal(SMTPConnection.length, 3, gone('new SMTPConnection(server, socket, options)'));
    const proto = SMTPConnection.prototype;
    method(proto, 'SMTPConnection', '_onCommand', 2);
    method(proto, 'SMTPConnection', '_onClose', 0);
    method(proto, 'SMTPConnection', 'handler_EHLO', 2);
    method(proto, 'SMTPConnection', 'handler_HELO', 2);
    method(proto, 'SMTPConnection', 'send', 3);
    method(proto, 'SMTPConnection', 'init', 0);
    method(proto, 'SMTPConnection', 'close', 0);
    method(proto, 'SMTPConnection', 'on', 2);
  });

  test('SMTPServer: connect() unchanged (LocalpostSmtpServer copies it), and what the listener reads', () => {
    const proto = SMTPServer.prototype;
    method(proto, 'SMTPServer', 'connect', 2);
    method(proto, 'SMTPServer', '_onError', 1);
    method(proto, 'SMTPServer', '_onClientConnect', 1);
    method(proto, 'SMTPServer', 'close', 1);
    const body = (f: unknown) => String(f).replace(/\s+/g, '');
    assert.equal(
      body(proto.connect),
      body(`connect(socket, socketOptions) {
        let connection = new SMTPConnection(this, socket, socketOptions);
        this.connections.add(connection);
        connection.on('error', err => this._onError(err));
        connection.on('connect', data => this._onClientConnect(data));
        connection.init();
      }`),
      gone('SMTPServer.prototype.connect as LocalpostSmtpServer.connect copies it (update the copy)'),
    );
    const server = newServer();
    assert.ok(server.connections instanceof Set, gone('SMTPServer#connections (a Set)'));
    assert.ok(server.server instanceof net.Server, gone('SMTPServer#server (the net.Server)'));
  });

  test('SMTPConnection fields: _server, _socket, _parser._remainder, _dataStream, session, remoteAddress', async () => {
    const pair = await socketPair();
    cleanup.push(pair.close);
    const server = newServer();
    const conn = new SMTPConnection(server, pair.server, {});
    assert.equal(conn._server, server, gone('SMTPConnection#_server'));
    assert.equal(conn._socket, pair.server, gone('SMTPConnection#_socket'));
    assert.equal(typeof conn._socket.destroyed, 'boolean', gone('SMTPConnection#_socket.destroyed'));
    assert.equal(conn._dataStream, false, gone('SMTPConnection#_dataStream (false outside DATA)'));
    assert.equal(typeof conn.session, 'object', gone('SMTPConnection#session'));
    assert.equal(conn.remoteAddress, '127.0.0.1', gone('SMTPConnection#remoteAddress'));
    assert.ok(conn._parser, gone('SMTPConnection#_parser'));
    const parser = conn._parser;
    assert.equal(parser._remainder, '', gone('SMTPConnection#_parser._remainder'));
    await new Promise<void>((r) => parser.write(Buffer.from('NOO'), () => r()));
    assert.equal(
      parser._remainder,
      'NOO',
      gone('SMTPConnection#_parser._remainder holding an incomplete command line'),
    );
  });

  test('EHLO answers with one synchronous send(250, lines)', async () => {
    const pair = await socketPair();
    cleanup.push(pair.close);
    const conn = new SMTPConnection(newServer(), pair.server, {});
    const sent: Array<[number, unknown]> = [];
    conn.send = (code: number, data?: string | string[] | null) => {
      sent.push([code, data]);
    };
    conn.handler_EHLO(Buffer.from('EHLO client.example'), () => undefined);
    assert.equal(sent.length, 1, gone('handler_EHLO replying with one send() before it returns'));
    const [code, data] = sent[0]!;
    assert.equal(code, 250, gone('handler_EHLO replying 250'));
    assert.ok(Array.isArray(data), gone('handler_EHLO passing its reply lines to send() as an array'));
    assert.ok(
      data.some((l) => /^PIPELINING$/.test(String(l))),
      gone('handler_EHLO passing the feature lines to send()'),
    );
  });

  test('commands pass through _onCommand and a closed socket reaches _onClose (as SMTPServer.connect wires them)', async () => {
    const commands: string[] = [];
    let closes = 0;
    class Probe extends SMTPConnection {
      override _onCommand(command: Buffer, callback?: () => void): void {
        commands.push(command.toString('latin1'));
        super._onCommand(command, callback);
      }
      override _onClose(): void {
        closes++;
        super._onClose();
      }
    }
    const pair = await socketPair();
    cleanup.push(pair.close);
    const server = newServer();
    const conn = new Probe(server, pair.server, {});
    server.connections.add(conn);
    conn.on('error', () => undefined);
    conn.init();
    let received = '';
    pair.client.on('data', (b: Buffer) => {
      received += b.toString('latin1');
    });
    await waitFor(() => /^220 /m.test(received), 30_000, 'the greeting');
    pair.client.write('NOOP\r\n');
    await waitFor(() => /^250 /m.test(received), 30_000, 'the NOOP reply');
    assert.deepEqual(commands, ['NOOP'], gone('every command line passing through SMTPConnection#_onCommand'));
    pair.client.destroy();
    await waitFor(() => closes > 0, 30_000, 'the close');
    assert.equal(closes, 1, gone('SMTPConnection#_onClose called once when the socket closes'));
    assert.equal(
      server.connections.has(conn),
      false,
      gone('_onClose removing the connection from SMTPServer#connections'),
    );
  });

  test('SMTPServer.connect builds the SMTPConnection of the internal module connection.ts imports', async () => {
    const pair = await socketPair();
    cleanup.push(pair.close);
    const server = newServer();
    server.connect(pair.server, {});
    const [conn] = [...server.connections];
    assert.ok(conn instanceof SMTPConnection, gone('smtp-server/lib/smtp-connection.js as the class SMTPServer uses'));
    conn.close();
  });
});
