/**
 * The local POP3 server replayed against the transcript fixtures
 * (`tests/fixtures/transcripts/pop3/*.txt`): RFC edge cases one file each.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT } from '../support/localpost.js';
import { type Pop3Fixture, sampleMessage, startPop3 } from '../support/pop3-server.js';
import { parseTranscript, runTranscript } from '../support/transcript.js';

const DIR = path.join(ROOT, 'tests/fixtures/transcripts/pop3');
const fixtures: Pop3Fixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

describe('POP3 transcripts', () => {
  for (const file of readdirSync(DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort()) {
    test(file, async () => {
      const t = parseTranscript(path.join(DIR, file), file);
      const fx = await startPop3({ messages: Array.from({ length: t.messages }, (_, i) => sampleMessage(i + 1)) });
      fixtures.push(fx);
      await runTranscript(t, fx.port);
    });
  }
});
