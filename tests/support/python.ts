/**
 * Fetch every message from a POP3 or IMAP server with Python's own poplib / imaplib (the system
 * `python3`), for byte-exact comparisons against what localpost or Dovecot serves.
 *
 * Python writes each message to a file in a temp dir (no encoding on the way back), and the
 * line limits (`_MAXLINE`) are raised to 100 MB so 20,000-character lines and 30 MB messages pass.
 *
 * What the bytes mean:
 * - POP3: the message as it crossed the wire, dot-unstuffed, every line ended by CRLF (poplib
 *   splits on line ends; we put CRLF back after each line, including the last).
 * - IMAP: the `BODY[]` literal exactly as sent.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The Python interpreter: the system one (a version-manager shim costs ~100 ms per start). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const POP_SCRIPT = String.raw`
import poplib, sys, os
poplib._MAXLINE = 100 * 1024 * 1024
host, port, user, pw, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
p = poplib.POP3(host, port, timeout=120)
p.user(user); p.pass_(pw)
n = p.stat()[0]
for i in range(1, n + 1):
    resp, lines, octets = p.retr(i)
    with open(os.path.join(out, '%08d' % i), 'wb') as f:
        f.write(b''.join(l + b'\r\n' for l in lines))
p.quit()
print(n)
`;

const UIDL_SCRIPT = `
import poplib, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3(host, port, timeout=120)
p.user(user); p.pass_(pw)
for line in p.uidl()[1]:
    print(line.decode('latin1').split(' ', 1)[1])
p.quit()
`;

const DELE_SCRIPT = `
import poplib, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3(host, port, timeout=120)
p.user(user); p.pass_(pw)
for n in sys.argv[5:]:
    p.dele(int(n))
p.quit()
`;

const IMAP_SCRIPT = String.raw`
import imaplib, sys, os, re
imaplib._MAXLINE = 100 * 1024 * 1024
host, port, user, pw, folder, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
m = imaplib.IMAP4(host, port, timeout=120)
m.login(user, pw)
typ, data = m.select('"%s"' % folder, readonly=True)
if typ != 'OK': raise SystemExit('select failed: %r' % data)
n = int(data[0])
count = 0
if n:
    typ, data = m.uid('FETCH', '1:*', '(BODY.PEEK[])')
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb'UID (\d+)', item[0]).group(1))
            with open(os.path.join(out, '%010d' % uid), 'wb') as f:
                f.write(item[1])
            count += 1
m.logout()
print(count)
`;

const IMAP_STATE_SCRIPT = String.raw`
import imaplib, sys, json, re
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
m.login(user, pw)
out = {}
typ, lines = m.list()
for line in lines:
    name = re.search(rb'"([^"]*)"$|(\S+)$', line)
    name = (name.group(1) or name.group(2)).decode()
    if b'\Noselect' in line: continue
    typ, cnt = m.select('"%s"' % name, readonly=True)
    uv = int(re.search(rb'UIDVALIDITY (\d+)', m.status('"%s"' % name, '(UIDVALIDITY)')[1][0]).group(1))
    msgs = []
    data = []
    if int(cnt[0]) > 0:
        typ, data = m.uid('FETCH', '1:*', '(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    for item in data:
        if not isinstance(item, tuple): continue
        uid = int(re.search(rb'UID (\d+)', item[0]).group(1))
        flags = re.search(rb'FLAGS \(([^)]*)\)', item[0]).group(1).decode().split()
        mid = re.search(rb'<([^>]*)>', item[1])
        msgs.append({'uid': uid, 'flags': sorted(flags), 'mid': mid.group(1).decode() if mid else None})
    out[name] = {'uidValidity': uv, 'messages': msgs}
m.logout()
print(json.dumps(out))
`;

/** One folder upstream as imaplib sees it: UIDVALIDITY and each message's UID, flags and Message-ID (no brackets). */
export interface ImapFolderState {
  uidValidity: number;
  messages: Array<{ uid: number; flags: string[]; mid: string | null }>;
}

/** Every selectable folder of an IMAP account, straight from the server with imaplib. */
export async function imaplibState(
  port: number,
  user: string,
  pass: string,
  host = '127.0.0.1',
): Promise<Record<string, ImapFolderState>> {
  return JSON.parse(await runPython(IMAP_STATE_SCRIPT, [host, String(port), user, pass])) as Record<
    string,
    ImapFolderState
  >;
}

/** Runs a Python script with arguments; resolves with its stdout. */
export function runPython(script: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(
      PYTHON,
      ['-c', script, ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
      (err, stdout, stderr) => {
        if (err) rej(new Error(`python failed: ${err.message}\n${stderr}`));
        else res(stdout);
      },
    );
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'lp-py-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** RETR every message with poplib (USER/PASS, plaintext); bytes as on the wire, dot-unstuffed, CRLF-terminated lines. */
export function poplibFetchAll(port: number, user: string, pass: string, host = '127.0.0.1'): Promise<Buffer[]> {
  return withTempDir(async (dir) => {
    await runPython(POP_SCRIPT, [host, String(port), user, pass, dir]);
    return readdirSync(dir)
      .sort()
      .map((f) => readFileSync(join(dir, f)));
  });
}

/** The UIDL listing of a POP3 maildrop with poplib, in message-number order. */
export async function poplibUidls(port: number, user: string, pass: string, host = '127.0.0.1'): Promise<string[]> {
  return (await runPython(UIDL_SCRIPT, [host, String(port), user, pass])).split('\n').filter(Boolean);
}

/** DELE these message numbers with poplib, then QUIT (the deletions commit). */
export async function poplibDele(port: number, user: string, pass: string, numbers: number[]): Promise<void> {
  await runPython(DELE_SCRIPT, ['127.0.0.1', String(port), user, pass, ...numbers.map(String)]);
}

/** `UID FETCH 1:* BODY.PEEK[]` of one folder with imaplib; each literal exactly as sent, in UID order. */
export function imaplibFetchAll(
  port: number,
  user: string,
  pass: string,
  folder = 'INBOX',
  host = '127.0.0.1',
): Promise<Array<{ uid: number; body: Buffer }>> {
  return withTempDir(async (dir) => {
    await runPython(IMAP_SCRIPT, [host, String(port), user, pass, folder, dir]);
    return readdirSync(dir)
      .sort()
      .map((f) => ({ uid: Number(f), body: readFileSync(join(dir, f)) }));
  });
}
