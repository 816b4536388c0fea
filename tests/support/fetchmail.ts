/**
 * Running the real fetchmail against a POP3 server: a home directory per client (its UIDL file
 * `fetchids`, its rc file, and `mail/`, where an MDA script files each message it delivers).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One fetchmail client's home. */
export interface FetchmailHome {
  dir: string;
  /** The MDA to name in the rc file's `mda "..."`. */
  deliver: string;
  /** Names of the messages delivered so far (in `mail/`). */
  delivered(): string[];
  /** Write the rc file (after `set no syslog`) and run `fetchmail -v` once. */
  run(rc: string[]): Promise<{ code: number; out: string }>;
}

/** A fresh fetchmail home under `parent`. */
export function fetchmailHome(parent: string): FetchmailHome {
  const dir = mkdtempSync(path.join(parent, 'fm-'));
  const mail = path.join(dir, 'mail');
  mkdirSync(mail);
  const deliver = path.join(dir, 'deliver.sh');
  writeFileSync(deliver, `#!/bin/sh\ncat > "${mail}/$(date +%s%N).$$"\n`);
  chmodSync(deliver, 0o755);
  return {
    dir,
    deliver,
    delivered: () => readdirSync(mail),
    run: (rc) => {
      const file = path.join(dir, 'fetchmailrc');
      writeFileSync(file, ['set no syslog', ...rc, ''].join('\n'));
      chmodSync(file, 0o600);
      const args = ['-f', file, '-i', path.join(dir, 'fetchids'), '--pidfile', path.join(dir, 'pid'), '-v'];
      return run('fetchmail', args, { env: { ...process.env, HOME: dir, FETCHMAILHOME: dir } }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
    },
  };
}
