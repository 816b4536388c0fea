/**
 * QRESYNC (RFC 7162 §3.2) against a live Dovecot from the testbed: the same folder, the same
 * changes (own EXPUNGE and UID EXPUNGE, a flag change, MOVE, another session's expunge) and the
 * same resynchronisations (SELECT/EXAMINE with QRESYNC, known UIDs, sequence match data, a
 * foreign UIDVALIDITY, UID FETCH CHANGEDSINCE VANISHED), answers required equal once normalised
 * (MODSEQ and UIDVALIDITY values, \Recent, the target UIDs of COPYUID, response texts). Dovecot
 * remembers when each message was expunged; we do not (docs/imap-server.md "Sessions"), so every
 * resync starts from a MODSEQ taken before the first expunge, where the two must agree; the last
 * test shows the difference from a later MODSEQ. A SELECT refused as BAD leaves our selected
 * mailbox selected (Dovecot closes it first and says CLOSED).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImapTestClient } from '../support/imap-client.js';
import { dovecotAndLocal } from '../support/imap-dovecot-pair.js';

const ports = dovecotAndLocal();

/** The lines that carry QRESYNC meaning, normalised; the tagged line as status and code. */
function norm(lines: string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    let n = l
      .replace(/MODSEQ \(\d+\)/g, 'MODSEQ (m)')
      .replace(/HIGHESTMODSEQ \d+/g, 'HIGHESTMODSEQ m')
      .replace(/COPYUID \d+ (\S+) \S+\]/, 'COPYUID v $1 u]')
      .replace(/ ?\\Recent/g, '')
      .replace(/\( /g, '(');
    if (!n.startsWith('* ')) {
      const m = /^\S+ (OK|NO|BAD)( \[[^\]]*\])?/.exec(n);
      out.push(m ? `${m[1]}${m[2] ?? ''}` : n);
      continue;
    }
    if (/^\* (VANISHED|\d+ FETCH|\d+ EXPUNGE|OK \[(CLOSED|COPYUID)|ENABLED)/.test(n)) {
      n = n.replace(/^\* OK \[(\w+)[^\]]*\].*/, (all, code: string) => (code === 'CLOSED' ? '* OK [CLOSED]' : all));
      out.push(n.replace(/^(\* OK \[COPYUID [^\]]*\]).*/, '$1'));
    }
  }
  return out;
}

interface Side {
  a: ImapTestClient;
  b: ImapTestClient;
  uv: string;
  /** HIGHESTMODSEQ before any change. */
  m0: string;
}

async function setUp(port: number, password: string): Promise<Side> {
  const a = await ImapTestClient.open(port, ['alice', password]);
  const b = await ImapTestClient.open(port, ['alice', password]);
  assert.match((await a.run('CREATE Q')).at(-1) as string, / OK /);
  for (let i = 1; i <= 6; i++) {
    const m = `Subject: m${i}\r\n\r\nbody ${i}\r\n`;
    assert.match((await a.run(`APPEND Q {${m.length}+}\r\n${m}`)).at(-1) as string, / OK /);
  }
  const st = (await a.run('STATUS Q (UIDVALIDITY HIGHESTMODSEQ)'))[0] as string;
  const [, uv, m0] = /UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)/.exec(st) as RegExpExecArray;
  return { a, b, uv: uv as string, m0: m0 as string };
}

/** Runs the scenario on one server; returns every answer normalised, labelled by command. */
async function scenario(s: Side): Promise<Array<[string, string[]]>> {
  const got: Array<[string, string[]]> = [];
  const run = async (c: ImapTestClient, cmd: string): Promise<void> => {
    got.push([cmd, norm(await c.run(cmd.replaceAll('$UV', s.uv).replaceAll('$M0', s.m0)))]);
  };
  await run(s.a, 'SELECT Q (QRESYNC ($UV $M0))');
  await run(s.a, 'ENABLE QRESYNC');
  await run(s.a, 'SELECT Q');
  await s.a.run('UID STORE 2 +FLAGS.SILENT (\\Deleted)');
  await run(s.a, 'EXPUNGE');
  await s.a.run('UID STORE 4 +FLAGS.SILENT (\\Seen)');
  await s.a.run('UID STORE 5 +FLAGS.SILENT (\\Deleted)');
  await run(s.a, 'UID EXPUNGE 5');
  await run(s.a, 'MOVE 1 INBOX');
  // Another session expunges UID 6 after flagging it; the QRESYNC session hears VANISHED.
  await s.b.run('SELECT Q');
  await s.b.run('UID STORE 6 +FLAGS.SILENT (\\Deleted)');
  await run(s.b, 'UID EXPUNGE 6');
  await run(s.a, 'NOOP');
  await run(s.a, 'UID FETCH 1:10 (FLAGS) (CHANGEDSINCE $M0 VANISHED)');
  await run(s.a, 'UID FETCH 3:4 (FLAGS) (CHANGEDSINCE $M0 VANISHED)');
  await run(s.a, 'SELECT Q (QRESYNC ($UV $M0))');
  await run(s.a, 'EXAMINE Q (QRESYNC ($UV $M0 1:4))');
  await run(s.a, 'EXAMINE Q (QRESYNC ($UV $M0 1:3))');
  await run(s.a, 'SELECT Q (QRESYNC ($UV $M0 1:6 (1:6 1:6)))');
  await run(s.a, 'SELECT Q (QRESYNC (4294967295 $M0))');
  await run(s.a, 'SELECT Q (QRESYNC ($UV $M0 1:*))');
  return got;
}

test('QRESYNC answers equal Dovecot', async () => {
  const theirs = await setUp(ports.theirs, 'alicepw');
  const ours = await setUp(ports.ours, 'localpw');
  const expected = await scenario(theirs);
  const actual = await scenario(ours);
  for (let i = 0; i < expected.length; i++) {
    const [cmd, want] = expected[i] as [string, string[]];
    // A SELECT refused as BAD: Dovecot has closed the mailbox already; ours stays selected.
    const same = want.at(-1) === 'BAD' ? want.filter((l) => l !== '* OK [CLOSED]') : want;
    assert.deepEqual(actual[i]?.[1], same, cmd);
  }
  // From a MODSEQ after the first expunge: Dovecot leaves UID 2 out, we report it again (allowed,
  // RFC 7162 §5.1); the rest is the same.
  const later = async (s: Side): Promise<string[]> => {
    await s.a.run('SELECT Q');
    return norm(await s.a.run(`UID FETCH 1:10 (FLAGS) (CHANGEDSINCE ${Number(s.m0) + 2} VANISHED)`));
  };
  const [d, l] = [await later(theirs), await later(ours)];
  assert.equal(d[0], '* VANISHED (EARLIER) 1,5:6');
  assert.equal(l[0], '* VANISHED (EARLIER) 1:2,5:6');
  for (const s of [theirs, ours]) {
    s.a.close();
    s.b.close();
  }
});
