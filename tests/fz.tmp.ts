import { runImapFuzz } from './reliability/fuzz-imap.js';
const t = setInterval(() => console.error('inflight', [...((globalThis as any).inflight ?? [])].join(' ')), 3000);
const r = await runImapFuzz({ seed: 20260601, sessions: 800, probeEvery: 100, onProgress: (s) => console.log('progress', s.sessions) });
clearInterval(t);
console.log(JSON.stringify(r.stats));
for (const f of r.failures.slice(0, 15)) console.log(f.what, f.seed, (f.detail ?? '').slice(0, 400));
process.exit(0);
