import { replayImap } from './reliability/fuzz-imap.js';
const r = await replayImap(Number(process.argv[2]));
console.log(r.c.abort, r.c.owed, JSON.stringify(r.c.bytes.toString('latin1').slice(0, 3000)));
console.log(JSON.stringify(r.received.slice(0, 3000)));
process.exit(0);
