/**
 * Builds dist/ from src/ (tsconfig.build.json) after removing the old dist/, so no file of a
 * renamed module is left behind. npm runs it as `prepack` (`npm pack`, `npm publish`) and, with
 * `--prepare`, as `prepare` (`npm install` or `npm ci` in a clone, `npm install -g .`).
 *
 * `--prepare` does nothing where there is no src/ (an installed copy: npm runs `prepare` only
 * for folders and git checkouts, never for a tarball, which holds dist/ already) and under
 * `npm pack`/`npm publish`, whose `prepack` builds. Without TypeScript (a clone whose
 * dependencies are not installed yet) it fails with the command to run first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prepare = process.argv.includes('--prepare');

if (prepare && (!existsSync(path.join(root, 'src')) || ['pack', 'publish'].includes(process.env.npm_command ?? ''))) {
  process.exit(0);
}

let tsc;
try {
  tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  process.stderr.write(
    'localpost: TypeScript is not installed here, so dist/ cannot be built.\n' +
      `Run \`npm ci\` in ${root} first (it installs the dependencies and builds dist/), then install from there.\n`,
  );
  process.exit(1);
}

rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
