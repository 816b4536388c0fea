/**
 * Finds, reads and validates the config file. The file is rejected as a whole, with every
 * problem listed on a line of its own that starts with its path
 * (`accounts[1].incoming.port: expected a number, got a string (line 14)`); YAML syntax errors
 * carry `line:col`. Every failure, a missing file included, is a ConfigError (exit 78).
 * Problem lines never quote a value the user wrote, so a misplaced password is not echoed.
 * Before it is read, the file and its directories must pass the trust rule (`checkConfigTrust`,
 * docs/security.md): every command and a reload load the config here, so none runs a
 * `{ command }` secret from a file another user could change.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../shared/errors.js';
import { checkConfigTrust } from '../shared/trust.js';
import { type Config, configSchema } from './schema.js';

/** The config file to use: `--config`, else `$LOCALPOST_CONFIG`, else the XDG location. */
export function configPath(cliFlag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (cliFlag) return cliFlag;
  if (env.LOCALPOST_CONFIG) return env.LOCALPOST_CONFIG;
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.config');
  return join(base, 'localpost', 'config.yaml');
}

/** Reads and validates the config file (default: `configPath()`); throws ConfigError. */
export async function loadConfig(path: string = configPath()): Promise<Config> {
  let text: string;
  try {
    text = await readFile(await checkConfigTrust(path), 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(
        `no config file at ${path} (looked at --config, then $LOCALPOST_CONFIG, then ` +
          `$XDG_CONFIG_HOME/localpost/config.yaml); run \`localpost init\` to write one`,
      );
    }
    throw new ConfigError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  return parseConfigText(text, path);
}

/** Parses and validates config YAML text; `source` names the file in the error message. */
export function parseConfigText(text: string, source = 'config'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? (e.pos ? lineCounter.linePos(e.pos[0]) : undefined);
      const where = pos ? `${pos.line}:${pos.col}` : '?';
      const [firstLine = ''] = e.message.split('\n');
      const message = firstLine.replace(/ at line \d+, column \d+:?$/, '');
      return `${where}: ${message}`;
    });
    throw new ConfigError(`${source}: invalid YAML`, problems);
  }
  const value = doc.toJS() ?? {};
  const result = configSchema.safeParse(value);
  if (result.success) return result.data;

  const lineOf = (path: PropertyKey[]): number | undefined => {
    for (let p = path; p.length > 0; p = p.slice(0, -1)) {
      const node = doc.getIn(p as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  // Listed in file order; problems without a position (a missing key) after the rest.
  const problems = formatIssues(result.error.issues)
    .map(({ path, line }) => ({ line, at: lineOf(path) }))
    .sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity))
    .map(({ line, at }) => (at === undefined ? line : `${line} (line ${at})`));
  throw new ConfigError(`${source}: invalid configuration`, problems);
}

/** Renders a zod path as `accounts[1].incoming.port`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out || '(top level)';
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'nothing',
  undefined: 'nothing',
  int: 'a whole number',
};

/** Turns zod issues into `path: message` lines, one per issue (one per unknown key). */
function formatIssues(issues: readonly z.core.$ZodIssue[]): Array<{ path: PropertyKey[]; line: string }> {
  const out: Array<{ path: PropertyKey[]; line: string }> = [];
  const add = (path: PropertyKey[], message: string) => out.push({ path, line: `${formatPath(path)}: ${message}` });
  for (const issue of issues) {
    const path = [...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) add([...path, key], unknownKeyMessage(key, knownKeys(path)));
        break;
      case 'invalid_type': {
        const received = /received (\w+)/.exec(issue.message)?.[1];
        if (received === 'undefined') add(path, 'required');
        else if (/^Invalid input/.test(issue.message)) {
          const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
          add(
            path,
            received ? `expected ${expected}, got ${TYPE_NAMES[received] ?? received}` : `expected ${expected}`,
          );
        } else add(path, issue.message);
        break;
      }
      case 'invalid_value':
        add(path, `expected one of ${issue.values.map((v) => String(v)).join(' | ')}`);
        break;
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        if (!/^Too (small|big)/.test(issue.message)) add(path, issue.message);
        else if (issue.origin === 'number')
          add(path, `must be ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound}`);
        else add(path, issue.message);
        break;
      }
      default:
        add(path, issue.message);
    }
  }
  return out;
}

/** The keys allowed at `path` of the schema, for "did you mean" hints. */
function knownKeys(path: PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = configSchema as unknown as z.core.$ZodType;
  const unwrap = (s: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = s._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if (def.innerType) s = def.innerType;
      else if (def.type === 'pipe' && def.in) s = def.in;
      else return s;
    }
  };
  for (const seg of path) {
    if (!schema) return [];
    const def = unwrap(schema)._zod.def as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      element?: z.core.$ZodType;
    };
    schema = typeof seg === 'number' ? def.element : def.shape?.[String(seg)];
  }
  if (!schema) return [];
  const def = unwrap(schema)._zod.def as { shape?: Record<string, unknown> };
  return def.shape ? Object.keys(def.shape) : [];
}

function unknownKeyMessage(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const hint =
    best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean ${best}?)` : '';
  return `unknown key${hint}`;
}

function editDistance(a: string, b: string): number {
  // one row per prefix of `a`, one cell per prefix of `b`
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = i - 1;
    let left = i;
    const cur = [left];
    for (const [k, up] of prev.slice(1).entries()) {
      left = Math.min(up + 1, left + 1, diagonal + (a[i - 1] === b[k] ? 0 : 1));
      diagonal = up;
      cur.push(left);
    }
    prev = cur;
  }
  return prev.at(-1) ?? b.length; // a row is never empty
}
