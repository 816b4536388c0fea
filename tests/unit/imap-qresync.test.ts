/**
 * QRESYNC pieces (RFC 7162 §3.2): the SELECT parameter and the VANISHED fetch modifier as parsed,
 * the UIDs a resync reports as vanished (`missingUids`) and the sequence match floor
 * (`seqMatchFloor`), on sets far larger than the mailbox (never expanded).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSelect } from '../../src/listeners/imap/command-args.js';
import { CommandReader, type Token } from '../../src/listeners/imap/command-reader.js';
import { parseFetch } from '../../src/listeners/imap/fetch-args.js';
import { EVERY_UID, missingUids, seqMatchFloor } from '../../src/listeners/imap/qresync.js';
import { SequenceSet } from '../../src/listeners/imap/sequence-set.js';

function args(line: string): readonly Token[] {
  const r = new CommandReader();
  r.push(Buffer.from(`${line}\r\n`));
  const ev = r.next();
  if (ev?.kind !== 'command') throw new Error(`not a command: ${line}`);
  return ev.command.args;
}

const set = (s: string) => {
  const r = SequenceSet.parse(s);
  if (!r.ok) throw new Error(r.error);
  return r.value.resolve(0);
};

test('SELECT (QRESYNC ...): every form, and what is BAD', () => {
  const full = parseSelect(
    args('a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3,5 41,43,44,50)))'),
  );
  assert.ok(full.ok);
  const q = full.value.qresync;
  assert.equal(q?.uidValidity, 67890007);
  assert.equal(q?.modseq, 20050715194045000n);
  assert.equal(q?.knownUids?.toString(), '41,43:211,214:541');
  assert.equal(q?.seqMatch?.seqs.toString(), '1:3,5');
  const short = parseSelect(args('a EXAMINE INBOX (CONDSTORE QRESYNC (1 0))'));
  assert.ok(short.ok && short.value.condstore && short.value.qresync?.knownUids === undefined);
  for (const bad of [
    'a SELECT INBOX (QRESYNC)',
    'a SELECT INBOX (QRESYNC (1))',
    'a SELECT INBOX (QRESYNC (0 1))',
    'a SELECT INBOX (QRESYNC (1 1 1:*))',
    'a SELECT INBOX (QRESYNC (1 1 1:4 (1:3 *)))',
    'a SELECT INBOX (QRESYNC (1 1 1:4 (1:3 1:2)))',
    'a SELECT INBOX (QRESYNC (1 1 1:4 (1:3)))',
    'a SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))',
    'a SELECT INBOX (QRESYNC 1 1)',
  ]) {
    assert.equal(parseSelect(args(bad)).ok, false, bad);
  }
});

test('UID FETCH (CHANGEDSINCE m VANISHED): VANISHED needs CHANGEDSINCE, once each', () => {
  const f = parseFetch(args('a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)'));
  assert.ok(f.ok && f.value.vanished && f.value.changedSince === 12345n);
  assert.ok(parseFetch(args('a UID FETCH 1:* FLAGS (VANISHED CHANGEDSINCE 1)')).ok);
  for (const bad of ['(VANISHED)', '(CHANGEDSINCE 1 VANISHED VANISHED)', '(VANISHED 1)']) {
    assert.equal(parseFetch(args(`a UID FETCH 1 FLAGS ${bad}`)).ok, false, bad);
  }
});

test('missingUids: the gaps of the known set below UIDNEXT, as ranges', () => {
  const present = [3, 4, 9, 20];
  assert.equal(missingUids(present, set('1:10'), 0, 100), '1:2,5:8,10');
  assert.equal(missingUids(present, set('1:10'), 4, 100), '5:8,10');
  assert.equal(missingUids(present, set('3:4,9'), 0, 100), '');
  assert.equal(missingUids(present, set('15:30'), 0, 22), '15:19,21');
  // Every UID up to 2^32-1 known: one range per gap, bounded by the messages, not the set.
  assert.equal(missingUids(present, EVERY_UID, 0, 4294967295), '1:2,5:8,10:19,21:4294967294');
  assert.equal(missingUids([], EVERY_UID, 0, 1), '');
});

test('seqMatchFloor: the last pair still matching before the first that does not', () => {
  const uids = [1, 3, 4, 9];
  assert.equal(seqMatchFloor(uids, set('1:2'), set('1,3')), 3);
  assert.equal(seqMatchFloor(uids, set('1:3'), set('1:3')), 1);
  assert.equal(seqMatchFloor(uids, set('2'), set('2')), 0);
  // Sets of 2^32-1 numbers stop at the first mismatch past the last message.
  assert.equal(seqMatchFloor([1, 2, 3], set('1:4294967295'), set('1:4294967295')), 3);
});
