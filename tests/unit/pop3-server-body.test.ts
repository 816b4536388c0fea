/**
 * What RETR and TOP send before dot-stuffing (src/listeners/pop3/body.ts) and the header-end
 * finder it shares with the cache (src/shared/pop3-wire/header-end.ts), at every chunking.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { servedBody, servedSize } from '../../src/listeners/pop3/body.js';
import { HeaderEndFinder } from '../../src/shared/pop3-wire/index.js';

function chunks(s: string, size: number): Buffer[] {
  const b = Buffer.from(s, 'latin1');
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

async function served(s: string, size: number, repairEoh: boolean, topLines?: number): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of servedBody(chunks(s, size), { repairEoh, topLines })) parts.push(p);
  return Buffer.concat(parts).toString('latin1');
}

describe('HeaderEndFinder', () => {
  const cases: Array<[string, number]> = [
    ['A: b\r\n\r\nbody', 8],
    ['A: b\n\nbody', 6],
    ['\r\nbody', 2],
    ['\nbody', 1],
    ['A: b\r\n\r\n', 8],
    ['A: b\r\nC: d\r\n', -1],
    ['A: b\r\r\n', -1],
    ['A: b\r\n \r\nx', -1],
    ['', -1],
    ['A: b\n\r\nx', 7],
  ];
  for (const [text, end] of cases) {
    test(`${JSON.stringify(text)} → ${end}, at every chunk size`, () => {
      for (let size = 1; size <= Math.max(1, text.length); size++) {
        const f = new HeaderEndFinder();
        for (const c of chunks(text, size)) f.update(c);
        assert.equal(f.end, end, `chunk size ${size}`);
      }
    });
  }
});

describe('servedBody', () => {
  const msg = 'A: 1\r\nB: 2\r\n\r\nl1\r\nl2\nl3';
  test('RETR is the stored bytes; TOP n m cuts after m body lines; TOP n 99999999 is everything', async () => {
    for (let size = 1; size <= msg.length; size++) {
      assert.equal(await served(msg, size, true), msg);
      assert.equal(await served(msg, size, true, 0), 'A: 1\r\nB: 2\r\n\r\n');
      assert.equal(await served(msg, size, true, 1), 'A: 1\r\nB: 2\r\n\r\nl1\r\n');
      assert.equal(await served(msg, size, true, 2), 'A: 1\r\nB: 2\r\n\r\nl1\r\nl2\n');
      assert.equal(await served(msg, size, true, 99999999), msg);
    }
  });

  test('the oe-ns-eoh repair adds exactly the 2 octets servedSize() counts', async () => {
    assert.equal(await served('A: 1\r\n', 3, true), 'A: 1\r\n\r\n');
    assert.equal(await served('A: 1', 3, true), 'A: 1\r\n\r\n');
    assert.equal(await served('', 3, true), '\r\n');
    assert.equal(await served('A: 1\r\n', 3, false), 'A: 1\r\n');
    assert.equal(await served('A: 1\r\n', 3, true, 0), 'A: 1\r\n\r\n');
    assert.equal(servedSize(6, false, true), 8);
    assert.equal(servedSize(6, true, true), 6);
    assert.equal(servedSize(6, false, false), 6);
  });
});
