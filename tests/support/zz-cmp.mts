import { readFileSync } from 'node:fs';
import { mimeCorpus, EXPECTED_FILE, ourAnswer, type Answers } from './mime-reference.js';
import { parseMessage } from '../../src/listeners/imap/mime/index.js';
const exp = JSON.parse(readFileSync(EXPECTED_FILE, 'utf8')) as Answers;
let eq = 0, tot = 0;
const filter = process.argv[2];
for (const m of mimeCorpus()) {
  const root = parseMessage(m.raw);
  for (const [item, want] of Object.entries(exp[m.name] ?? {})) {
    tot++;
    const got = ourAnswer(m.raw, root, item);
    if (got === want) { eq++; continue; }
    if (filter && !m.name.includes(filter) && !item.includes(filter)) continue;
    console.log(`--- ${m.name} ${item}\n  want ${JSON.stringify(want).slice(0,400)}\n  got  ${JSON.stringify(got).slice(0,400)}`);
  }
}
console.log(`${eq}/${tot} equal`);
