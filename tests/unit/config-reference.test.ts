/**
 * The configuration reference in docs/configuration.md is generated from the schema
 * (`src/config/reference.ts`): the committed section must equal the generated text, and
 * the generated text must name every key of the example config.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { renderExampleConfig } from '../../src/config/example.js';
import {
  currentReference,
  REFERENCE_END,
  REFERENCE_FILE,
  REFERENCE_START,
  renderConfigReference,
  replaceReference,
} from '../../src/config/reference.js';

describe('configuration reference', () => {
  it('equals the text generated from the schema', async () => {
    const doc = await readFile(new URL(`../../${REFERENCE_FILE}`, import.meta.url), 'utf8');
    assert.equal(
      currentReference(doc),
      renderConfigReference(),
      `${REFERENCE_FILE}'s configuration reference is stale: run \`node --import tsx src/config/reference.ts\``,
    );
  });

  it('lives in one place: README.md holds no second copy to go stale', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(currentReference(readme), undefined);
  });

  it('has a row for every key of the example config, with pipes escaped', () => {
    const ref = renderConfigReference();
    const paths: string[] = [];
    const walk = (v: unknown, prefix: string) => {
      if (Array.isArray(v)) {
        if (v.some((x) => x && typeof x === 'object')) for (const x of v) walk(x, `${prefix}[]`);
        return;
      }
      if (!v || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v)) {
        const key = prefix ? `${prefix}.${k}` : k;
        paths.push(key);
        walk(x, key);
      }
    };
    walk(parseYaml(renderExampleConfig({ activeDefaults: true })), '');
    assert.ok(paths.length > 30);
    // a secret's { env } form is described on the password row itself
    for (const p of new Set(paths.filter((x) => !/\.password\./.test(x)))) {
      assert.ok(ref.includes(`| \`${p}\` |`) || ref.includes(`| \`${p}[]\` |`), `no row for ${p}`);
    }
    for (const line of ref.split('\n').filter((l) => l.startsWith('| `')))
      assert.equal(line.split(/(?<!\\)\|/).length, 5, line);
  });

  it('replaces only the marked section', () => {
    const text = `intro\n${REFERENCE_START}\nold\n${REFERENCE_END}\noutro\n`;
    assert.equal(replaceReference(text, 'new\n'), `intro\n${REFERENCE_START}\nnew\n${REFERENCE_END}\noutro\n`);
    assert.throws(() => replaceReference('no markers', 'x'), /no <!-- config-reference:start -->/);
  });
});
