/**
 * A raw IMAP test client over `Pop3Conn` (any bytes, lines with a timeout): `run(cmd)` sends a
 * tagged command and returns every line up to and including its tagged reply.
 */
import { Pop3Conn } from './pop3-server.js';

export class ImapTestClient {
  private n = 0;
  private constructor(readonly conn: Pop3Conn) {}

  /** Connects, reads the greeting and, when a user is given, logs in. */
  static async open(port: number, user?: [string, string]): Promise<ImapTestClient> {
    const c = new ImapTestClient(await Pop3Conn.open(port));
    await c.conn.line();
    if (user) {
      const r = await c.run(`LOGIN ${user[0]} ${user[1]}`);
      if (!r.at(-1)?.includes(' OK ')) throw new Error(`login failed: ${r.join('\n')}`);
    }
    return c;
  }

  /** Sends `tag command` and collects the lines up to the tagged reply. */
  async run(command: string, timeoutMs = 10_000): Promise<string[]> {
    const tag = `t${++this.n}`;
    this.conn.cmd(`${tag} ${command}`);
    const lines: string[] = [];
    for (;;) {
      const l = await this.conn.line(timeoutMs);
      lines.push(l);
      if (l.startsWith(`${tag} `)) return lines;
    }
  }

  close(): void {
    this.conn.close();
  }
}
