/**
 * Small shared pieces of the IMAP upstream code: folder names (local names use `/`), UID sets
 * and their chunks per command (the pull's FETCH chunks: fetch-chunks.ts), and what an imapflow
 * error says about a folder.
 */
import type { ImapFlow } from 'imapflow';

/** The upstream name of a local folder (local names use `/`). */
export function upstreamPath(client: ImapFlow, name: string): string {
  const delimiter = client.namespace?.delimiter;
  return delimiter && delimiter !== '/' && name.includes('/') ? name.split('/').join(delimiter) : name;
}

/** A UID set in ranges (`1:4,7`). */
export function uidSet(uids: readonly number[]): string {
  return uidRanges(uids).join(',');
}

/** The ranges of a UID set (`1:4`, `7`), ascending. */
function uidRanges(uids: readonly number[]): string[] {
  const s = [...new Set(uids)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === (s[j] as number) + 1) j++;
    out.push(i === j ? String(s[i]) : `${s[i]}:${s[j]}`);
    i = j + 1;
  }
  return out;
}

/**
 * `uidSet(uids)` cut into sets of at most `maxChars` characters each (a range is never cut), so
 * a command naming a scattered set of UIDs stays under a server's line limit: one set for a
 * folder whose UIDs run in long ranges, a few for one full of holes.
 */
export function uidSetChunks(uids: readonly number[], maxChars: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const r of uidRanges(uids)) {
    if (cur && cur.length + 1 + r.length > maxChars) {
      out.push(cur);
      cur = '';
    }
    cur = cur ? `${cur},${r}` : r;
  }
  if (cur) out.push(cur);
  return out;
}

/** Whether an imapflow error says the folder does not exist upstream. */
export function isMissingFolder(err: unknown): boolean {
  const e = err as { serverResponseCode?: unknown; responseText?: unknown; message?: unknown };
  if (e?.serverResponseCode === 'NONEXISTENT' || e?.serverResponseCode === 'TRYCREATE') return true;
  const text = `${String(e?.responseText ?? '')} ${String(e?.message ?? '')}`;
  return /does ?n.t exist|not exist|no such (mailbox|folder)|unknown mailbox/i.test(text);
}
