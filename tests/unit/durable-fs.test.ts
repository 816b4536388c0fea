/**
 * The exclusive writers of shared/durable-fs: a new file is written complete with mode 0600, an
 * existing one is never replaced and is reported as a FileExistsError, and no temp file stays.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { createExclusive, FileExistsError, writeFileExclusive } from '../../src/shared/durable-fs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-durable-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('exclusive creation', () => {
  test('writeFileExclusive writes a new file, mode 0600, and leaves no temp file', async () => {
    const file = path.join(dir, 'new.txt');
    await writeFileExclusive(file, 'hello\n');
    assert.equal(readFileSync(file, 'utf8'), 'hello\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['new.txt']);
  });

  test('writeFileExclusive never replaces an existing file', async () => {
    const file = path.join(dir, 'old.txt');
    writeFileSync(file, 'keep me');
    await assert.rejects(writeFileExclusive(file, 'replacement'), (err: unknown) => {
      assert.ok(err instanceof FileExistsError);
      assert.equal(err.code, 'EEXIST');
      assert.equal(err.file, file);
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    assert.ok(!readdirSync(dir).some((n) => n.includes('.tmp-')));
  });

  test('createExclusive refuses an existing file the same way', async () => {
    const file = path.join(dir, 'stream.txt');
    const fh = await createExclusive(file);
    await fh.close();
    await assert.rejects(createExclusive(file), FileExistsError);
  });
});
