/**
 * The MIME corpus against a live Dovecot from the testbed: APPEND every message, FETCH ENVELOPE,
 * BODY, BODYSTRUCTURE and BODY.PEEK[section] for every part path and section kind, run SEARCH
 * keys, and require
 * (1) Dovecot still answers what tests/fixtures/mime/expected.json recorded (the unit test's
 * reference), and (2) our answers equal Dovecot's (known, documented differences aside).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseMessage } from '../../src/listeners/imap/mime/index.js';
import {
  type Answers,
  dovecotAnswers,
  EXPECTED_FILE,
  EXPECTED_SEARCH_FILE,
  mimeCorpus,
  ourAnswer,
  ourSearchAnswers,
} from '../support/mime-reference.js';

test('live Dovecot FETCH and SEARCH answers equal the recorded ones and ours', async () => {
  const { answers: live, search } = await dovecotAnswers();
  const recorded = JSON.parse(readFileSync(EXPECTED_FILE, 'utf8')) as Answers;
  assert.deepEqual(search, JSON.parse(readFileSync(EXPECTED_SEARCH_FILE, 'utf8')), 'Dovecot SEARCH answers changed');
  assert.deepEqual(ourSearchAnswers(), search);
  assert.deepEqual(
    live,
    recorded,
    'Dovecot answers changed: re-record with node --import tsx tests/support/mime-reference.ts',
  );
  let equal = 0;
  let total = 0;
  for (const m of mimeCorpus()) {
    const root = parseMessage(m.raw);
    for (const [item, theirs] of Object.entries(live[m.name] ?? {})) {
      total++;
      if (ourAnswer(m.raw, root, item) === theirs) equal++;
    }
  }
  // bare-LF line ends (Dovecot sends CRLF) and one section of the 1,000-deep message differ
  assert.ok(total >= 780 && equal >= total - 10, `${equal}/${total} equal`);
});
