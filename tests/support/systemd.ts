/**
 * systemd's offline checks of a unit, for the service tests: `systemd-analyze verify` and the
 * overall exposure of `systemd-analyze security --offline=yes`. No systemd needs to run; a user
 * unit (`--user`) needs a runtime directory even offline, so each call gets its own. Each unit is
 * written as `localpost.service` into its own directory under `tmp`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Runs a program; resolves with its exit code and output (never rejects). */
export function sh(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Writes a unit under its real name into a new directory with a runtime directory beside it. */
function place(tmp: string, unit: string): { file: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(path.join(tmp, 'unit-'));
  const file = path.join(dir, 'localpost.service');
  writeFileSync(file, unit);
  const runtime = path.join(dir, 'runtime');
  mkdirSync(runtime, { mode: 0o700 });
  return { file, env: { XDG_RUNTIME_DIR: runtime } };
}

/** `systemd-analyze [--user] verify` of a unit: its exit code and everything it printed. */
export async function verifyUnit(tmp: string, unit: string, user: boolean): Promise<{ code: number; stderr: string }> {
  const { file, env } = place(tmp, unit);
  const r = await sh('systemd-analyze', [...(user ? ['--user'] : []), 'verify', file], env);
  return { code: r.code, stderr: r.stderr + r.stdout };
}

/** The overall exposure `systemd-analyze [--user] security --offline=yes` gives a unit. */
export async function exposure(tmp: string, unit: string, user = false): Promise<number> {
  const { file, env } = place(tmp, unit);
  const r = await sh('systemd-analyze', [...(user ? ['--user'] : []), 'security', '--offline=yes', file], env);
  const m = /Overall exposure level for localpost\.service: (\d+(?:\.\d+)?)/.exec(r.stdout);
  assert.ok(m, `no score in:\n${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

/** The content of the file that a `service install --dry-run` text says it writes to `file`. */
export function writtenFile(planText: string, file: string): string {
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^write ${escaped} \\(mode 0644\\):\\n-----\\n([\\s\\S]*?)\\n-----`, 'm').exec(planText);
  assert.ok(m?.[1], `no write of ${file} in:\n${planText}`);
  return `${m[1]}\n`;
}
