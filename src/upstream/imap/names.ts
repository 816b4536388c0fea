/**
 * Small shared pieces of the IMAP upstream code: folder names (local names use `/`), UID sets,
 * and what an imapflow error says about a folder.
 */
import type { ImapFlow } from 'imapflow';

/** The upstream name of a local folder (local names use `/`). */
export function upstreamPath(client: ImapFlow, name: string): string {
  const delimiter = client.namespace?.delimiter;
  return delimiter && delimiter !== '/' && name.includes('/') ? name.split('/').join(delimiter) : name;
}

/** A UID set in ranges (`1:4,7`). */
export function uidSet(uids: readonly number[]): string {
  const s = [...new Set(uids)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === (s[j] as number) + 1) j++;
    out.push(i === j ? String(s[i]) : `${s[i]}:${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Whether an imapflow error says the folder does not exist upstream. */
export function isMissingFolder(err: unknown): boolean {
  const e = err as { serverResponseCode?: unknown; responseText?: unknown; message?: unknown };
  if (e?.serverResponseCode === 'NONEXISTENT' || e?.serverResponseCode === 'TRYCREATE') return true;
  const text = `${String(e?.responseText ?? '')} ${String(e?.message ?? '')}`;
  return /does ?n.t exist|not exist|no such (mailbox|folder)|unknown mailbox/i.test(text);
}
