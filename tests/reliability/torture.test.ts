/**
 * Crash torture, short run: a few kill -9 rounds of each durable operation — a pull
 * in delete mode, a POP3 QUIT/UPDATE, SMTP acceptance, SMTP delivery, the journal replay — with the on-disk
 * invariants checked after every round (tests/reliability/torture.ts). `npm run torture` runs 100
 * rounds of each.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Testbed } from '../support/testbed.js';
import {
  formatFigures,
  type TortureFigures,
  tortureAccept,
  tortureDeliver,
  torturePull,
  tortureTestbed,
  tortureUpdate,
} from './torture.js';
import { tortureJournal } from './torture-journal.js';

const ROUNDS = Number(process.env.TORTURE_ROUNDS ?? 2);
let tb: Testbed;
before(async () => {
  tb = await tortureTestbed();
});
after(async () => {
  await tb?.stop();
});

function check(f: TortureFigures): void {
  process.stdout.write(`# ${formatFigures(f)}\n`);
  assert.deepEqual(f.violations, []);
  assert.equal(f.rounds, ROUNDS);
  assert.ok(f.kills >= 1, 'the process was killed');
}

describe('kill -9 torture (short)', () => {
  test('during a pull in delete mode', async () => check(await torturePull(tb, { rounds: ROUNDS })));
  test('during POP3 QUIT/UPDATE', async () => check(await tortureUpdate(tb, { rounds: ROUNDS })));
  test('during SMTP acceptance', async () => check(await tortureAccept({ rounds: ROUNDS })));
  test('during SMTP delivery', async () => check(await tortureDeliver({ rounds: ROUNDS })));
  test('during the IMAP change journal replay', async () => check(await tortureJournal(tb, { rounds: ROUNDS })));
});
