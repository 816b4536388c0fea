/**
 * A tiny in-process IMAP server (RFC 3501, just enough for imapflow and our fetcher): LOGIN,
 * EXAMINE/SELECT of one folder, UID SEARCH (ALL, UID n:*), UID FETCH of UID and RFC822.SIZE, and of bodies (BODY.PEEK[],
 * whole or partial). Only for what a real server cannot be made to do: `body` scripts the literal
 * sent for a UID, e.g. megabytes for a message declared 2,000 bytes
 * (docs/guarantees.md#hostile-upstream-servers). Listens on 127.0.0.1:0.
 */
import net from 'node:net';
import { listenOnLoopback } from './fake-pop3.js';

export interface FakeImapOptions {
  /** The messages, UID = index + 1; RFC822.SIZE is their length unless `declared` says otherwise. */
  messages: Buffer[];
  /** The RFC822.SIZE announced for a UID. */
  declared?: (uid: number) => number | undefined;
  /** The literal sent for a UID's body, whatever was asked (a partial fetch included). */
  body?: (uid: number) => Buffer | undefined;
}

export interface FakeImap {
  port: number;
  /** Every command received, without its tag. */
  log: string[];
  close(): Promise<void>;
}

/** The UIDs of a sequence set such as `1:*`, `3,5`, `2:4`, among 1..max. */
function uidSet(set: string, max: number): number[] {
  const out: number[] = [];
  for (const part of set.split(',')) {
    const [a = '', b] = part.split(':');
    const from = a === '*' ? max : Number(a);
    const to = b === undefined ? from : b === '*' ? max : Number(b);
    for (let u = Math.min(from, to); u <= Math.max(from, to) && u <= max; u++) if (u >= 1) out.push(u);
  }
  return out;
}

export async function startFakeImap(opts: FakeImapOptions): Promise<FakeImap> {
  const { messages } = opts;
  const fake: FakeImap = { port: 0, log: [], close: async () => {} };
  const sockets = new Set<net.Socket>();
  const size = (uid: number) => opts.declared?.(uid) ?? messages[uid - 1]?.length ?? 0;

  const answer = (sock: net.Socket, tag: string, verb: string, rest: string): void => {
    const w = (s: string | Buffer) => sock.write(s);
    switch (verb) {
      case 'CAPABILITY':
        w('* CAPABILITY IMAP4rev1\r\n');
        break;
      case 'LOGIN':
        w(`${tag} OK [CAPABILITY IMAP4rev1] logged in\r\n`);
        return;
      case 'LIST':
        w('* LIST () "/" INBOX\r\n');
        break;
      case 'SELECT':
      case 'EXAMINE':
        w(`* ${messages.length} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\n`);
        w(`* OK [UIDNEXT ${messages.length + 1}] ok\r\n* FLAGS (\\Seen)\r\n`);
        w(`${tag} OK [${verb === 'EXAMINE' ? 'READ-ONLY' : 'READ-WRITE'}] done\r\n`);
        return;
      case 'LOGOUT':
        w('* BYE bye\r\n');
        w(`${tag} OK bye\r\n`);
        sock.end();
        return;
      case 'UID': {
        const search = /^SEARCH (?:ALL|UID (\S+))$/i.exec(rest);
        if (search) {
          const uids = uidSet(search[1] ?? '1:*', messages.length);
          w(`* SEARCH${uids.map((u) => ` ${u}`).join('')}\r\n`);
          break;
        }
        const m = /^FETCH (\S+) \((.*)\)$/i.exec(rest);
        if (!m) break;
        const [, set = '', items = ''] = m;
        const wantsBody = /BODY\.PEEK\[\]/i.test(items);
        const partial = /BODY\.PEEK\[\]<(\d+)\.(\d+)>/i.exec(items);
        for (const uid of uidSet(set, messages.length)) {
          const head = `* ${uid} FETCH (UID ${uid} RFC822.SIZE ${size(uid)}`;
          if (!wantsBody) {
            w(`${head})\r\n`);
            continue;
          }
          const start = partial ? Number(partial[1]) : 0;
          const end = partial ? start + Number(partial[2]) : undefined;
          const lit = opts.body?.(uid) ?? (messages[uid - 1] as Buffer).subarray(start, end);
          w(`${head} BODY[]${partial ? `<${start}>` : ''} {${lit.length}}\r\n`);
          w(lit);
          w(')\r\n');
        }
        break;
      }
    }
    w(`${tag} OK done\r\n`);
  };

  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
        const line = buf.slice(0, lf).replace(/\r$/, '');
        buf = buf.slice(lf + 1);
        const [tag = '', verbRaw = '', ...rest] = line.split(' ');
        fake.log.push(`${verbRaw} ${rest.join(' ')}`.trim());
        answer(sock, tag, verbRaw.toUpperCase(), rest.join(' '));
      }
    });
    sock.write('* OK [CAPABILITY IMAP4rev1] fake IMAP ready\r\n');
  });
  Object.assign(fake, await listenOnLoopback(server, sockets));
  return fake;
}
