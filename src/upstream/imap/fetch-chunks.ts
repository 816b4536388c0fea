/**
 * Pieces of the IMAP pull's download loop (fetcher.ts): the UID sets of its bulk FETCH commands
 * and a backpressure-aware write of a body held in memory.
 */
import type { Writable } from 'node:stream';

/**
 * `wanted` (a subset of the ascending `listed`) in chunks of at most `max` messages, each with
 * a UID set of ranges: `a:b` covers a run of listed UIDs that are all wanted (UIDs between them
 * that were not listed do not exist, and none can appear below the highest UID), so a chunk of
 * consecutive new messages is one short `a:b`, never a comma list of hundreds of UIDs.
 */
export function fetchChunks(
  listed: readonly number[],
  wanted: ReadonlySet<number>,
  max: number,
): Array<{ set: string; uids: number[] }> {
  const chunks: Array<{ set: string; uids: number[] }> = [];
  let uids: number[] = [];
  let ranges: string[] = [];
  let runStart: number | undefined;
  let runEnd = 0;
  const closeRun = () => {
    if (runStart !== undefined) ranges.push(runStart === runEnd ? String(runStart) : `${runStart}:${runEnd}`);
    runStart = undefined;
  };
  const closeChunk = () => {
    closeRun();
    if (uids.length) chunks.push({ set: ranges.join(','), uids });
    uids = [];
    ranges = [];
  };
  for (const uid of listed) {
    if (!wanted.has(uid)) {
      closeRun();
      continue;
    }
    runStart ??= uid;
    runEnd = uid;
    uids.push(uid);
    if (uids.length >= max) closeChunk();
  }
  closeChunk();
  return chunks;
}

/** Write a buffer honouring backpressure; returns its length. */
export async function writeAll(sink: Writable, buf: Buffer): Promise<number> {
  if (!sink.write(buf))
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        sink.off('error', onError);
        resolve();
      };
      const onError = (e: Error) => {
        sink.off('drain', onDrain);
        reject(e);
      };
      sink.once('drain', onDrain);
      sink.once('error', onError);
    });
  return buf.length;
}
