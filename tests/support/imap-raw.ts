/**
 * A minimal raw IMAP client for reference answers from the testbed's Dovecot: APPEND a message
 * and run single-item UID FETCH commands, returning each item's value bytes exactly as sent
 * (quoted string, list or `{n}` literal), so they can be compared byte for byte with ours.
 */
import { connect, type Socket } from 'node:net';

export interface RawImap {
  /** APPEND to INBOX; returns the new UID (APPENDUID). */
  append(raw: Buffer): Promise<number>;
  /** `UID FETCH uid (item)`: the value of the one item in the response, or null if none came. */
  fetch(uid: number, item: string): Promise<Buffer | null>;
  /** `UID SEARCH CHARSET UTF-8 <criterion> <value as a literal>`: the UIDs found. */
  search(criterion: string, value: string): Promise<number[]>;
  close(): void;
}

export async function rawImap(port: number, user: string, password: string): Promise<RawImap> {
  const sock: Socket = connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiter?.();
  });
  const more = () => new Promise<void>((r) => (waiter = r));
  /** Next complete response line (literals included), without the final CRLF. */
  async function line(): Promise<Buffer> {
    let from = 0;
    for (;;) {
      const lf = buf.indexOf(10, from);
      if (lf < 0) {
        await more();
        continue;
      }
      const m = /\{(\d+)\}\r$/.exec(buf.subarray(Math.max(0, lf - 20), lf).toString('latin1'));
      if (m) {
        const need = lf + 1 + Number(m[1]);
        while (buf.length < need) await more();
        from = need;
        continue;
      }
      const out = buf.subarray(0, lf - 1);
      buf = buf.subarray(lf + 1);
      return out;
    }
  }
  let n = 0;
  async function command(text: string, literal?: Buffer): Promise<Buffer[]> {
    const tag = `t${++n}`;
    if (literal) {
      sock.write(`${tag} ${text} {${literal.length}}\r\n`);
      const cont = await line();
      if (cont[0] !== 0x2b) throw new Error(`no continuation: ${cont}`);
      sock.write(Buffer.concat([literal, Buffer.from('\r\n')]));
    } else sock.write(`${tag} ${text}\r\n`);
    const lines: Buffer[] = [];
    for (;;) {
      const l = await line();
      if (l.subarray(0, tag.length + 1).toString() === `${tag} `) {
        if (!l.subarray(tag.length + 1, tag.length + 3).equals(Buffer.from('OK'))) throw new Error(`${text}: ${l}`);
        lines.push(l);
        return lines;
      }
      lines.push(l);
    }
  }
  await line(); // greeting
  await command(`LOGIN ${user} ${password}`);
  await command('SELECT INBOX');
  return {
    async append(raw) {
      const r = await command('APPEND INBOX', raw);
      const m = /APPENDUID \d+ (\d+)/.exec(r[r.length - 1]?.toString('latin1') ?? '');
      if (!m) throw new Error('no APPENDUID');
      await command('NOOP');
      return Number(m[1]);
    },
    async fetch(uid, item) {
      const r = await command(`UID FETCH ${uid} (${item})`);
      for (const l of r) {
        const prefix = /^\* \d+ FETCH \(UID \d+ /.exec(l.subarray(0, 40).toString('latin1'));
        if (!prefix) continue;
        let i = prefix[0].length;
        // the item name: up to a space outside [...]
        let depth = 0;
        for (; i < l.length; i++) {
          const c = l[i];
          if (c === 0x5b) depth++;
          else if (c === 0x5d) depth--;
          else if (c === 0x20 && depth === 0) break;
        }
        return l.subarray(i + 1, l.length - 1);
      }
      return null;
    },
    async search(criterion, value) {
      const r = await command(`UID SEARCH CHARSET UTF-8 ${criterion}`, Buffer.from(value));
      const line = r.find((l) => l.subarray(0, 9).toString() === '* SEARCH ' || l.toString() === '* SEARCH');
      return (line?.toString().slice(9) ?? '').split(' ').filter(Boolean).map(Number);
    },
    close() {
      sock.end();
    },
  };
}
