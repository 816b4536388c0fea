/**
 * The IMAP fuzz generator (run by `fuzz-imap.ts`): seeded sessions of well-formed commands of
 * every state (a login and a SELECT usually first, so the later states are reached) mixed with
 * hostile pieces: literals that announce more than they carry, huge literals (synchronizing and
 * LITERAL+), unbalanced or too deep parentheses, 8-bit bytes in atoms, endless sequence sets,
 * random verbs and arguments, QRESYNC parameters and modifiers, IDLE without DONE, over-long lines, pipelined garbage; some streams
 * get bit flips or are cut (then the client disconnects, in a literal or not); every stream is
 * cut into random segments. `owed` is the model's count of literal octets still wanted at the
 * end (a literal inside a literal or a flipped size can make it wrong: the runner copes).
 */
import { Rng, segment } from './fuzz.js';
/** One generated IMAP session. */
export interface ImapCase {
  bytes: Buffer;
  segments: Buffer[];
  /** A certainly-bad command comes before anything that could swallow it (a literal). */
  expectError: boolean;
  /** Literal octets announced but not sent at the end of the stream. */
  owed: number;
  /** Disconnect right after the stream, without paying a literal or logging out. */
  abort: boolean;
}

const FOLDERS = ['INBOX', 'Trash', 'Sent', 'Drafts', 'fz', 'fz/sub', '"a b"', '&AOk-t&AOk-', 'Nope', '""'];
const SETS = ['1', '1:*', '*', '2:4', '1,3,5', '*:1', '0', '4294967295', '1:4294967296', '3:2', '$'];
const FLAGS = ['(\\Seen)', '(\\Deleted)', '(\\Flagged $Junk)', '()', '\\Answered', '(\\Recent)', '(\\*)'];
const FETCH_ATTS = [
  'FLAGS',
  '(UID RFC822.SIZE INTERNALDATE)',
  'ALL',
  'FULL',
  '(ENVELOPE BODYSTRUCTURE)',
  'BODY.PEEK[]',
  'BODY[HEADER.FIELDS (From Subject)]',
  'BODY.PEEK[1.MIME]',
  'BODY.PEEK[]<0.10>',
  'BINARY.PEEK[1]',
  '(FLAGS) (CHANGEDSINCE 1)',
  '(FLAGS) (CHANGEDSINCE 1 VANISHED)',
  '(FLAGS) (VANISHED CHANGEDSINCE 0)',
  '(FLAGS) (VANISHED)',
  '(FLAGS) (CHANGEDSINCE 9223372036854775808 VANISHED)',
  'RFC822',
];
/** QRESYNC select parameters (RFC 7162 §3.2.5), well-formed or not: `*`, unequal match sets, huge sets. */
const QRESYNC = [
  '(QRESYNC (1 1))',
  '(QRESYNC (1700000000 2 1:*))',
  '(QRESYNC (1 0 1:4294967295 (1:4294967295 1:4294967295)))',
  '(QRESYNC (1 5 1,3,5 (1:2 1,3)))',
  '(QRESYNC (1 5 1:9 (1:3 1:2)))',
  '(QRESYNC (0 1))',
  '(QRESYNC (1))',
  '(QRESYNC 1 1)',
  '(CONDSTORE QRESYNC (1 1))',
  '(QRESYNC (1 1) QRESYNC (1 1))',
  '(QRESYNC (4294967296 1))',
];
const SEARCH = [
  'ALL',
  'UNSEEN',
  'TEXT hello',
  'OR FROM a SUBJECT b',
  'NOT DELETED SINCE 1-Jan-2020',
  'UID 1:*',
  'LARGER 10',
];

/** LIST-EXTENDED / LIST-STATUS (RFC 5258, 5819): options well-formed or not, nested, repeated. */
function listExtended(rng: Rng): string {
  const opt = (pool: string[]): string => `(${Array.from({ length: rng.int(4) }, () => rng.pick(pool)).join(' ')})`;
  const select = opt([
    'SUBSCRIBED',
    'REMOTE',
    'RECURSIVEMATCH',
    'SPECIAL-USE',
    'X-NEW',
    '(SUBSCRIBED)',
    '"SUBSCRIBED"',
    'NIL',
  ]);
  const status = `STATUS ${opt(['MESSAGES', 'UNSEEN', 'RECENT', 'UIDNEXT', 'HIGHESTMODSEQ', 'SIZE', '()'])}`;
  const ret = opt(['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE', status, 'STATUS', 'X-NEW', '(CHILDREN)']);
  const patterns = rng.chance(0.5)
    ? rng.pick(['*', '%', '""', 'fz/%'])
    : `(${Array.from({ length: rng.int(4) }, () => rng.pick(['*', '%', '"INBOX"', '""', '"fz/*"', '()', 'NIL'])).join(' ')})`;
  return [
    'LIST',
    rng.chance(0.7) ? select : '',
    rng.pick(['""', 'fz', '()']),
    patterns,
    rng.chance(0.7) ? `${rng.pick(['RETURN', 'RETURN', 'return', 'BACK'])} ${rng.chance(0.9) ? ret : 'CHILDREN'}` : '',
  ]
    .filter((x) => x)
    .join(' ');
}

/** Commands valid in some state (the session may still refuse them in the state it is in). */
function command(rng: Rng, tag: string): string {
  const f = () => rng.pick(FOLDERS);
  const all = [
    () => 'CAPABILITY',
    () => 'NOOP',
    () => 'ID ("name" "fuzz")',
    () => 'LOGIN alice localpw',
    () => `SELECT ${f()}`,
    () => `EXAMINE ${f()}`,
    () => `${rng.pick(['SELECT', 'EXAMINE'])} ${f()} ${rng.pick(QRESYNC)}`,
    () => `CREATE ${f()}`,
    () => `DELETE ${f()}`,
    () => `RENAME ${f()} ${f()}`,
    () => `SUBSCRIBE ${f()}`,
    () => `LIST "" ${rng.pick(['*', '%', 'fz/%', '""', '*/*/*/*'])}`,
    () => 'LSUB "" *',
    () => listExtended(rng),
    () => `STATUS ${f()} (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)`,
    () => 'NAMESPACE',
    () => rng.pick(['ENABLE CONDSTORE', 'ENABLE QRESYNC', 'ENABLE QRESYNC CONDSTORE X-NONE']),
    () => 'CHECK',
    () => `${rng.chance(0.5) ? 'UID ' : ''}FETCH ${rng.pick(SETS)} ${rng.pick(FETCH_ATTS)}`,
    () =>
      `${rng.chance(0.5) ? 'UID ' : ''}STORE ${rng.pick(SETS)} ${rng.pick(['+FLAGS', '-FLAGS.SILENT', 'FLAGS'])} ${rng.pick(FLAGS)}`,
    () => `${rng.chance(0.5) ? 'UID ' : ''}SEARCH ${rng.pick(SEARCH)}`,
    () => `${rng.chance(0.5) ? 'UID ' : ''}COPY ${rng.pick(SETS)} ${f()}`,
    () => `${rng.chance(0.5) ? 'UID ' : ''}MOVE ${rng.pick(SETS)} ${f()}`,
    () => (rng.chance(0.5) ? 'EXPUNGE' : `UID EXPUNGE ${rng.pick(SETS)}`),
    () => rng.pick(['CLOSE', 'UNSELECT']),
  ];
  return `${tag} ${rng.pick(all)()}`;
}

/** Commands no state accepts, with no literal in them. */
const CERTAINLY_BAD = [
  'NOSUCHVERB',
  'FETCH 1 (FLAGS',
  'FETCH 1 FLAGS)',
  'STORE 1 +FLAGS (\\Seen))',
  `SEARCH ${'('.repeat(40)}ALL${')'.repeat(40)}`,
  'UID NOOP',
  'LOGIN',
  'SELECT',
  'FETCH 1:* (BODY[HEADER.FIELDS (From)]',
  'FETCH 1.5 FLAGS',
  'SEARCH CHARSET',
  'LIST (RECURSIVEMATCH) "" *',
  'LIST "" * RETURN (STATUS ())',
];

/** Hostile pieces; each returns the text and the literal octets it leaves owed. */
function hostile(rng: Rng, tag: string): { text: string; owed: number } {
  const n = rng.range(1, 3000);
  switch (rng.int(12)) {
    case 0: {
      // a literal that announces more than it carries: the rest of the stream is its data
      const sent = rng.int(n);
      return {
        text: `${tag} APPEND ${rng.pick(FOLDERS)} {${n}${rng.chance(0.5) ? '+' : ''}}\r\n${'x'.repeat(sent)}`,
        owed: n - sent,
      };
    }
    case 1: {
      // a well-counted literal full of CRLFs, parentheses, braces
      const body = Array.from({ length: rng.range(1, 40) }, () =>
        rng.pick(['\r\n', ')', '(', '{5}\r\n', 'x', '\0', '\xff']),
      ).join('');
      return { text: `${tag} APPEND INBOX (\\Seen) {${Buffer.byteLength(body, 'latin1')}+}\r\n${body}\r\n`, owed: 0 };
    }
    case 2:
      // huge literals: refused before any byte is stored
      return {
        text: `${tag} ${rng.pick(['APPEND INBOX', 'LOGIN', 'SELECT', 'SEARCH TEXT'])} {${rng.pick(['99999999999', '4294967296', '70000000', '18446744073709551616'])}${rng.chance(0.5) ? '+' : ''}}\r\n${'y'.repeat(rng.int(200))}\r\n`,
        owed: 0,
      };
    case 3:
      return { text: `${tag} FETCH 1 ${'('.repeat(rng.range(10, 60))}FLAGS\r\n`, owed: 0 };
    case 4:
      return {
        text: `${tag}${rng.pick(['\xe9', '\xff', '\x80\x81', ''])} ${rng.pick(['SELECT', 'LOGIN al\xffice', 'CREATE', 'NOOP'])} \xc3\xa4\xff\x01${rng.pick(FOLDERS)}\r\n`,
        owed: 0,
      };
    case 5: {
      // an endless sequence set (up to the line limit and past it)
      const count = rng.pick([100, 5000, 20000]);
      const set = Array.from({ length: count }, (_, i) => (rng.chance(0.3) ? `${i}:*` : String(i + 1))).join(',');
      return {
        text: `${tag} ${rng.pick(['FETCH', 'UID FETCH', 'STORE', 'UID SEARCH UID', 'COPY'])} ${set} ${rng.pick(['FLAGS', '+FLAGS (\\Seen)', 'INBOX', ''])}\r\n`,
        owed: 0,
      };
    }
    case 6:
      return {
        text: `${tag} IDLE\r\n${rng.chance(0.5) ? '' : `${command(rng, `${tag}i`)}\r\n`}${rng.chance(0.5) ? 'DONE\r\n' : ''}`,
        owed: 0,
      };
    case 7:
      return { text: `${'Z'.repeat(rng.pick([70 * 1024, 2000, 65 * 1024]))}${rng.chance(0.5) ? '\r\n' : ''}`, owed: 0 };
    case 8: {
      const junk = Buffer.from(
        Array.from({ length: rng.range(1, 300) }, () =>
          rng.pick([0x0a, 0x0d, 0x7b, 0x7d, 0x28, 0x29, 0x22, 0x5c, 0x00, 0xff, 0x20, 0x61, 0x31]),
        ),
      );
      return { text: junk.toString('latin1'), owed: 0 };
    }
    case 9:
      return {
        text: `${tag} AUTHENTICATE ${rng.pick(['PLAIN', 'LOGIN', 'XOAUTH2', 'CRAM-MD5'])}\r\n${rng.pick(['*', 'AGFsaWNlAGxvY2FscHc=', '====', ''])}\r\n`,
        owed: 0,
      };
    case 10:
      return {
        text: `${tag} ${rng.pick(['SEARCH', 'UID SEARCH'])} ${'OR '.repeat(rng.range(5, 3000))}ALL ALL\r\n`,
        owed: 0,
      };
    default:
      return { text: `${tag} ${rng.pick(CERTAINLY_BAD)} ${'\\'.repeat(rng.int(3))}"unterminated\r\n`, owed: 0 };
  }
}

/** A session from its seed. */
export function generateImapCase(seed: number): ImapCase {
  const rng = new Rng(seed);
  const parts: string[] = [];
  if (rng.chance(0.85)) parts.push('a0 LOGIN alice localpw\r\n');
  if (rng.chance(0.7)) parts.push(`a1 SELECT ${rng.chance(0.8) ? 'INBOX' : rng.pick(FOLDERS)}\r\n`);
  let expectError = false;
  if (rng.chance(0.4)) {
    parts.push(`b0 ${rng.pick(CERTAINLY_BAD)}\r\n`);
    expectError = true;
  }
  let owed = 0;
  const items = rng.range(1, 14);
  for (let i = 0; i < items; i++) {
    const tag = `c${i}`;
    if (rng.chance(0.4)) {
      const h = hostile(rng, tag);
      parts.push(h.text);
      owed = h.owed > 0 ? h.owed : Math.max(0, owed - Buffer.byteLength(h.text, 'latin1'));
    } else {
      const line = `${command(rng, tag)}\r\n`;
      parts.push(line);
      owed = Math.max(0, owed - line.length);
    }
  }
  let bytes = Buffer.from(parts.join(''), 'latin1');
  let abort = rng.chance(0.08);
  if (rng.chance(0.1)) {
    // bit flips: the model no longer knows what must fail, nor what a literal still wants
    for (let k = rng.range(1, 8); k > 0; k--) {
      const at = rng.int(bytes.length);
      bytes[at] = bytes[at]! ^ (1 << rng.int(8));
    }
    expectError = false;
  }
  if (rng.chance(0.05)) {
    // cut anywhere (in a literal too) and disconnect
    bytes = bytes.subarray(0, rng.int(bytes.length));
    abort = true;
  }
  return { bytes, segments: segment(rng, bytes), expectError, owed, abort };
}
