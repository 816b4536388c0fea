/**
 * QRESYNC (RFC 7162 §3.2): what a resynchronising client is told of the messages expunged since
 * a MODSEQ it names, for SELECT/EXAMINE `(QRESYNC ...)` and `UID FETCH ... (CHANGEDSINCE m VANISHED)`.
 *
 * The store keeps no MODSEQ per expunged message (docs/imap-server.md "Sessions", QRESYNC).
 * RFC 7162 §5.1 lets such a server answer `VANISHED (EARLIER)` with every UID of the client's set
 * that is not in the mailbox; §5.2: a MODSEQ at or above the folder's HIGHESTMODSEQ (every expunge
 * raises it) means nothing was expunged since, and nothing is sent. The message sequence match
 * data (§3.2.5) narrows the answer to UIDs above the last pair that still matches.
 *
 * Invariants: sets are walked as ranges, never expanded; the work and the answer are bounded by
 * the ranges the client gave plus the messages of the view. UIDs at or above UIDNEXT never existed
 * and are never reported.
 */
import type { QresyncParam } from './command-args.js';
import { flagsFetchLine } from './responses.js';
import type { SelectedMailbox } from './selected.js';
import { lowerBound, RangeList } from './sequence-set.js';
import type { SessionContext } from './types.js';
import { Coalescer } from './writer.js';

/** Known UIDs left out: the client may know any (RFC 7162 §3.2.5). */
export const EVERY_UID = new RangeList(Uint32Array.of(1), Uint32Array.of(0xffffffff));

const range = (a: number, b: number): string => (a === b ? String(a) : `${a}:${b}`);

/**
 * The UIDs of `within` above `floor` and below `uidNext` that `present` (ascending) lacks, as a
 * wire sequence set ('' when none). Cost: a binary search per range plus one step per present UID.
 */
export function missingUids(present: readonly number[], within: RangeList, floor: number, uidNext: number): string {
  const parts: string[] = [];
  let p = 0;
  for (let r = 0; r < within.length; r++) {
    let a = Math.max(within.starts[r] as number, floor + 1);
    const b = Math.min(within.ends[r] as number, uidNext - 1);
    if (a > b) continue;
    p = lowerBound(present, a, p);
    while (a <= b) {
      const next = p < present.length ? (present[p] as number) : Number.POSITIVE_INFINITY;
      if (next > b) {
        parts.push(range(a, b));
        break;
      }
      if (next > a) parts.push(range(a, next - 1));
      a = next + 1;
      p++;
    }
  }
  return parts.join(',');
}

/** The numbers of a range list in ascending order, lazily. */
function* numbers(r: RangeList): Generator<number> {
  for (let i = 0; i < r.length; i++) for (let n = r.starts[i] as number; n <= (r.ends[i] as number); n++) yield n;
}

/**
 * RFC 7162 §3.2.5 message sequence match data: the UID of the last pair, in ascending order, whose
 * sequence number still holds that UID before the first that does not (0: none). UIDs only grow,
 * so nothing at or below it was expunged. Stops at the first mismatch: at most one step per message.
 */
export function seqMatchFloor(uids: readonly number[], seqs: RangeList, known: RangeList): number {
  let floor = 0;
  const u = numbers(known);
  for (const seq of numbers(seqs)) {
    const want = u.next();
    if (want.done || seq > uids.length || uids[seq - 1] !== want.value) break;
    floor = want.value;
  }
  return floor;
}

/** `* VANISHED (EARLIER) ...` for a resync from `modseq` over `within` ('' when there is nothing to say). */
export function vanishedEarlier(
  box: SelectedMailbox,
  within: RangeList,
  modseq: bigint,
  folder: { highestModseq: number; uidNext: number },
  floor = 0,
): string {
  if (modseq >= BigInt(Math.max(1, folder.highestModseq))) return '';
  const set = missingUids(box.uids, within, floor, folder.uidNext);
  return set ? `* VANISHED (EARLIER) ${set}\r\n` : '';
}

/**
 * After the SELECT/EXAMINE responses (RFC 7162 §3.2.5): VANISHED (EARLIER) of the known UIDs, then
 * `FETCH (UID FLAGS MODSEQ)` of every message changed since the client's MODSEQ, only the known
 * UIDs when the client named them (as Dovecot). Nothing when the UIDVALIDITY is not the folder's
 * (the client must resynchronise in full).
 */
export async function writeResync(
  s: SessionContext,
  box: SelectedMailbox,
  q: QresyncParam,
  folder: { highestModseq: number; uidNext: number },
): Promise<void> {
  if (q.uidValidity !== box.uidValidity) return;
  const out = new Coalescer(s);
  const within = q.knownUids ? q.knownUids.resolve(0) : EVERY_UID;
  const floor = q.seqMatch ? seqMatchFloor(box.uids, q.seqMatch.seqs.resolve(0), q.seqMatch.uids.resolve(0)) : 0;
  const vanished = vanishedEarlier(box, within, q.modseq, folder, floor);
  if (vanished) out.add(vanished);
  const { msgs } = box;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i] as (typeof msgs)[number];
    if (BigInt(m.modseq || 1) <= q.modseq || (q.knownUids && !within.has(m.uid))) continue;
    const wrote = out.add(flagsFetchLine(i + 1, m, true, true, box.isRecent(m.uid)));
    if (wrote) await wrote;
  }
  await out.flush();
}
