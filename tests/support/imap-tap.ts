/**
 * A counting TCP proxy in front of an IMAP server: records every command line the client sends
 * (tag removed) and counts the untagged FETCH responses the server sends back, skipping the
 * bytes of literals so a message body never counts as a response, and the bytes each way. Tests
 * and benchmarks assert on these counts (the work done on the wire), never on time.
 */
import net from 'node:net';

export interface ImapTap {
  port: number;
  /** Client command lines without their tag, e.g. `UID FETCH 1:40 (UID RFC822.SIZE BODY.PEEK[]<0.1048576>)`. */
  commands: string[];
  /** Untagged `* n FETCH` responses received from the server. */
  fetchResponses: number;
  /** Bytes the client sent and the server sent back. */
  bytesSent: number;
  bytesReceived: number;
  /** Forget what was counted so far. */
  reset(): void;
  close(): Promise<void>;
}

/** Line scanner that skips `{n}` literals, calling `onLine` for each protocol line. */
function lineScanner(onLine: (line: string) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let literalLeft = 0;
  return (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (literalLeft > 0) {
        const n = Math.min(literalLeft, buf.length);
        literalLeft -= n;
        buf = buf.subarray(n);
        if (literalLeft > 0) break;
      }
      const lf = buf.indexOf(0x0a);
      if (lf < 0) break;
      const line = buf.subarray(0, lf).toString('latin1').replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      onLine(line);
      const lit = /\{(\d+)\+?\}$/.exec(line);
      if (lit) literalLeft = Number(lit[1]);
    }
    pending = Buffer.from(buf);
  };
}

/** Listen on 127.0.0.1:0 and forward every connection to `upstreamPort`. */
export async function startImapTap(upstreamPort: number): Promise<ImapTap> {
  const sockets = new Set<net.Socket>();
  const tap: ImapTap = {
    port: 0,
    commands: [],
    fetchResponses: 0,
    bytesSent: 0,
    bytesReceived: 0,
    reset() {
      tap.commands = [];
      tap.fetchResponses = 0;
      tap.bytesSent = 0;
      tap.bytesReceived = 0;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const fromClient = lineScanner((line) => {
      const [tag = '', ...rest] = line.split(' ');
      if (tag && rest.length) tap.commands.push(rest.join(' '));
    });
    const fromServer = lineScanner((line) => {
      if (/^\* \d+ FETCH /i.test(line)) tap.fetchResponses++;
    });
    client.on('data', (b: Buffer) => {
      tap.bytesSent += b.length;
      fromClient(b);
    });
    upstream.on('data', (b: Buffer) => {
      tap.bytesReceived += b.length;
      fromServer(b);
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  tap.port = (server.address() as net.AddressInfo).port;
  return tap;
}
