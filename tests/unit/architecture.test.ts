/**
 * The shape of src/ (docs/architecture.md): imports run one way,
 * cli → daemon → {control, config} → {listeners, upstream} → cache → shared, with no import
 * cycle between files (type-only imports included), and no file over 400 lines.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** A folder may import its own files and any folder of a lower rank; folders of one rank stay apart. */
const RANK: Record<string, number> = {
  cli: 6,
  daemon: 5,
  control: 4,
  config: 4,
  listeners: 3,
  upstream: 3,
  cache: 2,
  shared: 1,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a file (static, type-only, re-exports and dynamic), as absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)];
  return specs.map((m) => path.resolve(path.dirname(file), (m[1] ?? '').replace(/\.js$/, '.ts')));
}

const folderOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0] ?? '';

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every relative import names a file that exists', () => {
  const known = new Set(files);
  const missing = [...graph].flatMap(([f, deps]) =>
    deps.filter((d) => !known.has(d)).map((d) => `${path.relative(SRC, f)} -> ${path.relative(SRC, d)}`),
  );
  assert.deepEqual(missing, []);
});

test('every file lives in a known folder', () => {
  const stray = files.filter((f) => !(folderOf(f) in RANK)).map((f) => path.relative(SRC, f));
  assert.deepEqual(stray, []);
});

test('imports run one way between folders', () => {
  const wrong: string[] = [];
  for (const [f, deps] of graph) {
    const from = folderOf(f);
    for (const d of deps) {
      const to = folderOf(d);
      if (from === to) continue;
      if ((RANK[to] ?? 99) >= (RANK[from] ?? 0)) wrong.push(`${path.relative(SRC, f)} -> ${path.relative(SRC, d)}`);
    }
  }
  assert.deepEqual(
    wrong,
    [],
    'an import against the direction cli → daemon → {control, config} → {listeners, upstream} → cache → shared',
  );
});

test('no import cycle between files', () => {
  // Tarjan's strongly connected components: any component of two or more files is a cycle.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        scc.push(path.relative(SRC, w));
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('no file in src/ over 400 lines', () => {
  const long = files
    .map((f) => ({ f: path.relative(SRC, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((x) => x.lines > 400)
    .map((x) => `${x.f}: ${x.lines}`);
  assert.deepEqual(long, []);
});
