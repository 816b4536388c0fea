/**
 * The local IMAP server replayed against the transcript fixtures
 * (`tests/fixtures/transcripts/imap/*.txt`, syntax in tests/support/transcript.ts): RFC 3501 §8,
 * RFC 2177, UIDPLUS, MOVE and CONDSTORE examples, every command in every state.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { type ImapFixture, startImap } from '../support/imap-server.js';
import { ROOT } from '../support/localpost.js';
import { sampleMessage } from '../support/pop3-server.js';
import { parseTranscript, runTranscript } from '../support/transcript.js';

const DIR = path.join(ROOT, 'tests/fixtures/transcripts/imap');
const fixtures: ImapFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.close();
});

for (const realCache of [false, true]) {
  describe(`IMAP transcripts (${realCache ? 'real cache' : 'in-memory store'})`, () => {
    for (const file of readdirSync(DIR)
      .filter((f) => f.endsWith('.txt'))
      .sort()) {
      test(file, async () => {
        const t = parseTranscript(path.join(DIR, file), file);
        const messages = Array.from({ length: t.messages }, (_, i) => sampleMessage(i + 1));
        const fx = await startImap({ messages, realCache });
        fixtures.push(fx);
        await runTranscript(t, fx.port);
      });
    }
  });
}
