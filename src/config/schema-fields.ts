/**
 * The building blocks of the configuration schema: units (durations, sizes, paths), the field
 * types every part uses (port, host, TLS mode), the default ports, and the helpers for error
 * messages and metadata. Parsing a field yields its final form: milliseconds, bytes, an
 * absolute path with `~` and `$VARS` expanded.
 */
import { homedir } from 'node:os';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { TLS_MODES } from '../upstream/types.js';

export { defaultPort } from '../upstream/types.js';

/** Extra metadata the example renderer reads: a sample value, and whether a default is computed. */
export interface FieldMeta {
  /** A value shown in the example file for keys that have no static default. */
  example?: unknown;
  /** The default is computed from other keys (shown in the example, not a static default). */
  derived?: boolean;
  /** true: optional, but one of a required choice, written uncommented in the example; false on an
   * optional object: the whole block is written commented out. */
  active?: boolean;
  /** A setting that is a word or a block (`listen.*.tls`): the block's schema, for the renderers. */
  block?: z.core.$ZodType;
}

/** An error message for a wrong type; a missing key is reported as "required". */
export const expect = (message: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message),
});

/** Run a cross-field check even when other parts of the value already failed (code defensively). */
export const always = { when: () => true };

// Units: durations, sizes, paths

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Parses `500ms`, `10s`, `5m`, `1h`, `5d` (or the number 0) into milliseconds; undefined if malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return value === 0 ? 0 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(value);
  const factor = DURATION_UNITS[m?.[2]?.toLowerCase() ?? ''];
  return m && factor !== undefined ? Math.round(Number(m[1]) * factor) : undefined;
}

/** Parses `512KB`, `50MB`, `1GB` (1 KB = 1024 bytes) or a plain number of bytes; undefined if malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(value);
  const factor = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  return m && factor !== undefined ? Math.round(Number(m[1]) * factor) : undefined;
}

/**
 * Expands a leading `~` and `$NAME` / `${NAME}` from `env`. Throws an Error naming the first
 * variable that is not set.
 */
export function expandPath(path: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = path.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, a, b) => {
    const name = (a ?? b) as string;
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`environment variable $${name} is not set`);
    return value;
  });
  if (out === '~' || out.startsWith('~/')) out = (env.HOME || homedir()) + out.slice(1);
  return out;
}

/** The default data directory: `$XDG_DATA_HOME/localpost`, else `~/.local/share/localpost`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  return xdg && isAbsolute(xdg) ? `${xdg}/localpost` : '~/.local/share/localpost';
}

export const duration = z
  .union([z.string(), z.number()], expect('expected a duration like 500ms, 10s, 5m, 1h or 5d'))
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms !== undefined) return ms;
    ctx.issues.push({ code: 'custom', input: v, message: 'expected a duration like 500ms, 10s, 5m, 1h or 5d' });
    return z.NEVER;
  });

export const size = z
  .union([z.string(), z.number()], expect('expected a size like 512KB, 50MB or 1GB'))
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes !== undefined) return bytes;
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: 'expected a size like 512KB, 50MB, 1GB or a number of bytes',
    });
    return z.NEVER;
  });

export const path = z
  .string(expect('expected a path'))
  .min(1, 'must not be empty')
  .transform((v, ctx) => {
    try {
      const expanded = expandPath(v);
      if (isAbsolute(expanded)) return expanded;
      ctx.issues.push({
        code: 'custom',
        input: v,
        message: 'expected an absolute path (or one starting with ~ or $VAR)',
      });
      return z.NEVER;
    } catch (err) {
      ctx.issues.push({ code: 'custom', input: v, message: (err as Error).message });
      return z.NEVER;
    }
  });

// Servers

/** Said of a port out of range (a zod error map on the number would otherwise answer "expected a number"). */
const PORT_RANGE = 'must be a port number from 1 to 65535';
export const port = z
  .number(expect('expected a number'))
  .int('expected a whole number')
  .min(1, PORT_RANGE)
  .max(65535, PORT_RANGE);
/** A local listener's port: 0 picks a free one. */
export const listenPort = z
  .number(expect('expected a number'))
  .int('expected a whole number')
  .min(0, `${PORT_RANGE}, or 0 for any free port`)
  .max(65535, `${PORT_RANGE}, or 0 for any free port`);
export const host = z.string(expect('expected a host name')).min(1, 'must not be empty');
export const tls = z.enum(TLS_MODES);
