/**
 * LIST-EXTENDED, LIST-STATUS and SPECIAL-USE selection against a live Dovecot from the testbed:
 * the same folder tree and subscriptions on both (Dovecot's delimiter is `.`), the same extended
 * LIST commands, and the answers required equal once normalised (delimiter, line order within a
 * response with each STATUS kept after its LIST line, Dovecot's `\UnMarked`). Names that are only
 * parents (`\NonExistent`) are left out: Dovecot's Maildir++ keeps a deleted parent listed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImapTestClient } from '../support/imap-client.js';
import { dovecotAndLocal } from '../support/imap-dovecot-pair.js';

const ports = dovecotAndLocal();

const TREE = ['Cmp', 'Cmp/Foo', 'Cmp/Foo/Bar', 'Cmp/Foo/Bar/Baz', 'Cmp/Solo', 'Cmp/Work', 'Cmp/Work/Projects'];
const SUBSCRIBED = ['Cmp/Foo/Bar/Baz', 'Cmp/Solo', 'Cmp/Work'];
const MESSAGE = 'Subject: hi\r\n\r\nbody\r\n';

const COMMANDS = [
  'LIST () "" "Cmp/*"',
  'LIST "" "Cmp/%" RETURN (CHILDREN SUBSCRIBED)',
  'LIST (SUBSCRIBED) "" "Cmp/*" RETURN (CHILDREN)',
  'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Cmp/%"',
  'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Cmp/%/%" RETURN (CHILDREN)',
  'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Cmp/*"',
  'LIST (REMOTE SUBSCRIBED) "" ("Cmp/Solo" "Cmp/Work/*" "Cmp/Nope")',
  'LIST "" ("Cmp/Solo" "Cmp/Foo/%") RETURN (STATUS (MESSAGES UNSEEN))',
  'LIST (SUBSCRIBED) "" "Cmp/%" RETURN (STATUS (MESSAGES) CHILDREN)',
  'LIST (SPECIAL-USE) "" "Cmp/*"',
  'LIST "" "Cmp/Solo" RETURN (SPECIAL-USE)',
  'LIST (RECURSIVEMATCH) "" "Cmp/*"',
  'LIST (BOGUS) "" "Cmp/*"',
  'LIST "" "Cmp/*" RETURN (BOGUS)',
  'LIST "" "Cmp/*" RETURN (STATUS ())',
];

/** Runs `cmd` (names written with `/`) and returns its answer normalised. */
async function answer(c: ImapTestClient, cmd: string, dot: boolean): Promise<string[]> {
  const wire = dot ? cmd.replace(/Cmp\/[^" )]*|Cmp\//g, (n) => n.replaceAll('/', '.')) : cmd;
  const lines = await c.run(wire);
  const tagged = (lines.pop() as string).split(' ')[1] as string;
  const units: string[] = [];
  for (const l of lines) {
    let n = l.replace(/\\UnMarked ?|\\Marked ?/g, '').replace(' )', ')');
    if (dot) n = n.replace(/ "\." /, ' "/" ').replace(/Cmp(\.[^ ()"]+)*/g, (x) => x.replaceAll('.', '/'));
    if (n.startsWith('* STATUS ') && units.length) units[units.length - 1] += `\n${n}`;
    else units.push(n);
  }
  return [...units.sort(), tagged];
}

async function build(c: ImapTestClient, dot: boolean): Promise<void> {
  const name = (n: string): string => (dot ? n.replaceAll('/', '.') : n);
  for (const n of TREE) assert.match((await c.run(`CREATE ${name(n)}`)).at(-1) as string, / OK /);
  for (const n of TREE) await c.run(`UNSUBSCRIBE ${name(n)}`);
  for (const n of SUBSCRIBED) assert.match((await c.run(`SUBSCRIBE ${name(n)}`)).at(-1) as string, / OK /);
  const r = await c.run(`APPEND ${name('Cmp/Solo')} {${MESSAGE.length}+}\r\n${MESSAGE}`);
  assert.match(r.at(-1) as string, / OK /);
}

test('extended LIST answers equal Dovecot', async () => {
  const theirs = await ImapTestClient.open(ports.theirs, ['alice', 'alicepw']);
  const ours = await ImapTestClient.open(ports.ours, ['alice', 'localpw']);
  await build(theirs, true);
  await build(ours, false);
  for (const cmd of COMMANDS) {
    assert.deepEqual(await answer(ours, cmd, false), await answer(theirs, cmd, true), cmd);
  }
  theirs.conn.close();
  ours.conn.close();
});
