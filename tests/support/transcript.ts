/**
 * Transcript fixtures: `tests/fixtures/transcripts/pop3/*.txt` files of
 * client and server lines, replayed against a live server.
 *
 * Syntax, one item per line:
 * - `# text` and blank lines: comments.
 * - `! messages N`: the maildrop holds N sample messages (default 3); must come first.
 * - `C: line`: send the line (with CRLF) in its own write. `<x*3000>` expands to 3000 `x`.
 * - `P: line`: queue the line; all queued lines go out in ONE write with the next `C:` line
 *   (pipelining in one packet).
 * - `S: pattern`: the next server line must match; `*` matches any run of characters, `?` one,
 *   `<=name>` a run of digits remembered as `name`, written back as `<name>` in later lines.
 * - `CLOSED`: the server must close the connection.
 * - A digit before the letter (`2C:`, `2S:`, `2CLOSED`) addresses a second connection, opened
 *   (and its greeting expected through `2S:`) at first use.
 */
import { readFileSync } from 'node:fs';
import { Pop3Conn } from './pop3-server.js';

/** One parsed step. */
export type Step =
  | { conn: number; kind: 'send'; line: string; pipelined: boolean }
  | { conn: number; kind: 'expect'; pattern: string; lineNo: number }
  | { conn: number; kind: 'closed'; lineNo: number };

/** A parsed transcript. */
export interface Transcript {
  name: string;
  messages: number;
  steps: Step[];
}

/** Parses a transcript file. */
export function parseTranscript(file: string, name = file): Transcript {
  const t: Transcript = { name, messages: 3, steps: [] };
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      if (line.trim() === '' || line.startsWith('#')) return;
      const dir = /^!\s*messages\s+(\d+)\s*$/.exec(line);
      if (dir) {
        t.messages = Number(dir[1]);
        return;
      }
      const m = /^(\d)?(C|P|S|CLOSED)(?:: ?(.*))?$/.exec(line);
      if (!m) throw new Error(`${name}:${i + 1}: cannot parse ${JSON.stringify(line)}`);
      const conn = Number(m[1] ?? 1);
      const text = (m[3] ?? '').replace(/<(.)\*(\d+)>/g, (_, c: string, n: string) => c.repeat(Number(n)));
      if (m[2] === 'CLOSED') t.steps.push({ conn, kind: 'closed', lineNo: i + 1 });
      else if (m[2] === 'S') t.steps.push({ conn, kind: 'expect', pattern: text, lineNo: i + 1 });
      else t.steps.push({ conn, kind: 'send', line: text, pipelined: m[2] === 'P' });
    });
  return t;
}

/** True when `line` matches the glob `pattern` (`*`, `?`). */
export function globMatch(pattern: string, line: string): boolean {
  return captures(pattern, line) !== undefined;
}

/** The `<=name>` values when `line` matches `pattern`, else undefined. */
function captures(pattern: string, line: string): Record<string, string> | undefined {
  const names: string[] = [];
  const source = pattern
    .split(/<=(\w+)>/)
    .map((piece, i) => {
      if (i % 2) {
        names.push(piece);
        return '(\\d+)';
      }
      return piece
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.');
    })
    .join('');
  const m = new RegExp(`^${source}$`, 's').exec(line);
  if (!m) return undefined;
  return Object.fromEntries(names.map((n, i) => [n, m[i + 1] as string]));
}

/** Replays a transcript against the server on `port`; throws on the first mismatch. */
export async function runTranscript(t: Transcript, port: number): Promise<void> {
  const conns = new Map<number, Pop3Conn>();
  const queued = new Map<number, string[]>();
  const vars = new Map<string, string>();
  const fill = (line: string): string => line.replace(/<(\w+)>/g, (all, n: string) => vars.get(n) ?? all);
  const conn = async (n: number): Promise<Pop3Conn> => {
    let c = conns.get(n);
    if (!c) {
      c = await Pop3Conn.open(port);
      conns.set(n, c);
    }
    return c;
  };
  try {
    for (const step of t.steps) {
      const c = await conn(step.conn);
      if (step.kind === 'send') {
        const q = queued.get(step.conn) ?? [];
        q.push(`${fill(step.line)}\r\n`);
        if (step.pipelined) queued.set(step.conn, q);
        else {
          queued.delete(step.conn);
          c.send(q.join(''));
        }
      } else if (step.kind === 'expect') {
        let got: string;
        try {
          got = await c.line();
        } catch (err) {
          throw new Error(
            `${t.name}:${step.lineNo}: expected ${JSON.stringify(step.pattern)}: ${(err as Error).message}`,
          );
        }
        const found = captures(fill(step.pattern), got);
        if (!found) {
          throw new Error(
            `${t.name}:${step.lineNo}: expected ${JSON.stringify(step.pattern)}, got ${JSON.stringify(got)}`,
          );
        }
        for (const [k, v] of Object.entries(found)) vars.set(k, v);
      } else {
        try {
          await c.waitClosed();
        } catch {
          throw new Error(`${t.name}:${step.lineNo}: expected the server to close the connection`);
        }
      }
    }
  } finally {
    for (const c of conns.values()) c.close();
  }
}
