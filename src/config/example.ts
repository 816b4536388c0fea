/**
 * Renders `config/localpost.example.yaml` from the schema, so the example can
 * never disagree with the code: each key is preceded by its `.describe()` text; keys that have a
 * default are written commented out with that default; keys that must be given are written with
 * a sample value (`meta({ example })`). The result is itself a valid config.
 *
 * With `{ activeDefaults: true }` the defaults are written uncommented; the unit test checks that
 * both forms parse to the same configuration, which proves every default shown is the real one.
 *
 * Regenerate the committed file with `node --import tsx src/config/example.ts`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { z } from 'zod';
import { configSchema, type FieldMeta } from './schema.js';

/** Where the committed example lives, relative to the project root. */
export const EXAMPLE_CONFIG_PATH = 'config/localpost.example.yaml';

/** Rendering options. */
export interface RenderOptions {
  /** Write defaults as active lines instead of comments (used by the test). */
  activeDefaults?: boolean;
  /** Comment out every line (inside an optional block marked `meta({ active: false })`). */
  off?: boolean;
}

const WIDTH = 96;
const HEADER = [
  '# localpost configuration: an example with every key.',
  '#',
  '# Generated from src/config/schema.ts; edit the schema, not this file.',
  '# A commented-out "key: value" line shows the default; uncomment it to change the value.',
  '# Durations: 500ms, 10s, 5m, 1h, 5d. Sizes: 512KB, 50MB, 1GB (1 KB = 1024 bytes) or bytes.',
  '# `~` and $VARS expand in paths. Unknown keys are errors.',
  '#',
  '# Copy it to ~/.config/localpost/config.yaml (or run `localpost init`), then check it with',
  '# `localpost check`.',
];

/** A schema field with its wrappers peeled. */
export interface Field {
  core: z.core.$ZodType;
  description?: string;
  meta: FieldMeta;
  optional: boolean;
  hasDefault: boolean;
  defaultValue?: unknown;
}

/** The parts of a zod definition the renderers read. */
export type Def = {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  defaultValue?: unknown;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
};

/** Peels optional/default/prefault/pipe wrappers, collecting description, meta and default. */
export function inspect(schema: z.core.$ZodType): Field {
  const field: Field = { core: schema, meta: {}, optional: false, hasDefault: false };
  for (let s: z.core.$ZodType | undefined = schema; s; ) {
    const meta = z.globalRegistry.get(s) as (FieldMeta & { description?: string }) | undefined;
    if (meta) {
      field.description ??= meta.description;
      field.meta = { ...meta, ...field.meta };
    }
    const def = s._zod.def as Def;
    field.core = s;
    if (def.type === 'optional') field.optional = true;
    if ((def.type === 'default' || def.type === 'prefault') && !field.hasDefault) {
      field.hasDefault = true;
      field.defaultValue = def.defaultValue;
    }
    s = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  }
  return field;
}

/** The keys of an object schema's definition. */
export function shapeOf(def: Def): Record<string, z.core.$ZodType> {
  if (!def.shape) throw new Error(`a schema of type ${def.type} has no keys`);
  return def.shape;
}

/** The definition of an array schema's items, wrappers peeled; undefined for any other schema. */
export function itemDefOf(def: Def): Def | undefined {
  if (def.type !== 'array') return undefined;
  if (!def.element) throw new Error('an array schema without an element');
  return inspect(def.element).core._zod.def as Def;
}

/** A value as a one-line YAML flow scalar, list or mapping. */
export function formatValue(value: unknown, inFlow = false): string {
  if (Array.isArray(value)) return `[${value.map((v) => formatValue(v, true)).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${formatValue(v, true)}`)
      .join(', ')} }`;
  }
  if (inFlow && typeof value === 'string' && !/^[A-Za-z][\w.-]*$/.test(value)) return JSON.stringify(value);
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/)) {
    if (cur && indent.length + 2 + cur.length + 1 + word.length > WIDTH) {
      lines.push(`${indent}# ${cur}`);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(`${indent}# ${cur}`);
  return lines;
}

interface Rendered {
  lines: string[];
  active: boolean;
}

/** Renders the keys of an object schema at `indent`. */
function renderShape(shape: Record<string, z.core.$ZodType>, indent: string, opts: RenderOptions): Rendered {
  const lines: string[] = [];
  let active = false;
  for (const [key, schema] of Object.entries(shape)) {
    const f = inspect(schema);
    const def = f.core._zod.def as Def;
    const doc = f.description ? wrap(f.description, indent) : [];
    const itemDef = itemDefOf(def);
    if (def.type === 'object') {
      const off = opts.off === true || (f.optional && f.meta.active === false);
      const inner = renderShape(shapeOf(def), `${indent}  `, { ...opts, off });
      lines.push(...doc, `${indent}${inner.active ? '' : '# '}${key}:`, ...inner.lines);
      active ||= inner.active;
    } else if (itemDef?.type === 'object') {
      const item = renderShape(shapeOf(itemDef), `${indent}    `, opts);
      const first = item.lines.findIndex((l) => !l.trimStart().startsWith('#'));
      const firstLine = item.lines[first];
      if (firstLine === undefined) throw new Error(`example.ts: the items of ${key} have no active key`);
      item.lines[first] = `${indent}  - ${firstLine.trimStart()}`;
      lines.push(...doc, `${indent}${key}:`, ...item.lines);
      active = true;
    } else {
      const value = f.meta.example !== undefined ? f.meta.example : f.defaultValue;
      if (value === undefined) throw new Error(`example.ts: ${key} has neither a default nor meta({ example })`);
      const required = (!f.optional && !f.hasDefault) || f.meta.active === true;
      const on = !opts.off && (required || (opts.activeDefaults === true && (f.hasDefault || f.meta.derived === true)));
      lines.push(...doc, `${indent}${on ? '' : '# '}${key}: ${formatValue(value)}`);
      active ||= on;
      // a word-or-block setting: the block form follows, always commented out
      const block = f.meta.block && (inspect(f.meta.block).core._zod.def as Def);
      if (block) {
        const inner = renderShape(shapeOf(block), `${indent}  `, { ...opts, off: true });
        lines.push(`${indent}# or:`, `${indent}# ${key}:`, ...inner.lines);
      }
    }
  }
  return { lines, active };
}

/** The commented example config generated from the schema. */
export function renderExampleConfig(opts: RenderOptions = {}): string {
  const shape = shapeOf(configSchema._zod.def as Def);
  const body: string[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    body.push('', ...renderShape({ [key]: schema }, '', opts).lines);
  }
  return `${[...HEADER, ...body].join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = fileURLToPath(new URL(`../../${EXAMPLE_CONFIG_PATH}`, import.meta.url));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, renderExampleConfig());
  console.log(`wrote ${target}`);
}
