/**
 * node-cron is loaded only to check a schedule the config sets: a config that keeps the default
 * (what `status` and `outbox` load most often) never loads it. Counted by the modules in the
 * CommonJS cache of a fresh process, not by time.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const script = `
import { createRequire } from 'node:module';
const { parseConfigText } = await import('./src/config/load.ts');
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node-cron/'));
const account = (extra) => 'accounts:\\n  - id: a\\n    email: a@x.test\\n    login: { password: x }\\n' +
  '    incoming: { ' + extra + 'protocol: pop3, host: h, username: u, password: p }\\n';
parseConfigText(account(''));
const before = loaded();
let bad = '';
try { parseConfigText(account('schedule: "every day", ')); } catch (e) { bad = e.message; }
console.log(JSON.stringify({ before, after: loaded(), bad }));
`;

test('node-cron is loaded only when the config sets a schedule, which is still checked', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { before: boolean; after: boolean; bad: string };
  assert.equal(out.before, false, 'the default schedule needs no check');
  assert.equal(out.after, true);
  assert.match(out.bad, /schedule: not a valid cron expression/);
});
