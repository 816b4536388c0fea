/**
 * The benchmark's pure parts: goal verdicts, ratio figures, number formatting and the tables
 * printed and written to docs/benchmarks.md (bench/figures.ts, bench/report.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  best,
  type Figure,
  failedFigures,
  formatValue,
  median,
  ratioFigure,
  textTable,
  verdict,
} from '../../bench/figures.js';
import { markdownReport, markdownTable, type Results } from '../../bench/report.js';

const fig = (value: number | null, goal?: Figure['goal']): Figure => ({
  id: 'x',
  row: 1,
  name: 'x',
  unit: 'ms',
  value,
  ...(goal ? { goal } : {}),
});

describe('bench figures', () => {
  it('judges each goal operator, a failed measurement, and a figure without a goal', () => {
    assert.equal(verdict(fig(0.8, { op: '<=', value: 0.8 })), 'met');
    assert.equal(verdict(fig(0.81, { op: '<=', value: 0.8 })), 'missed');
    assert.equal(verdict(fig(2, { op: '<', value: 2 })), 'missed');
    assert.equal(verdict(fig(500, { op: '>=', value: 500 })), 'met');
    assert.equal(verdict(fig(499, { op: '>=', value: 500 })), 'missed');
    assert.equal(verdict(fig(null, { op: '<', value: 2 })), 'failed');
    assert.equal(verdict(fig(Number.NaN)), 'failed');
    assert.equal(verdict(fig(3)), '');
  });

  it('makes a ratio of localpost over the peer, or a failed figure when either is missing', () => {
    const r = ratioFigure({ id: 'r', row: 2, name: 'r', goal: { op: '<=', value: 0.2 } }, 2, 8, 'fetchmail', 's');
    assert.equal(r.value, 0.25);
    assert.equal(r.unit, '×');
    assert.deepEqual(r.ratioOf, { localpost: 2, peer: 8, peerName: 'fetchmail', baseUnit: 's' });
    assert.equal(verdict(r), 'missed');
    const f = ratioFigure({ id: 'r', row: 2, name: 'r' }, null, 8, 'fetchmail', 's');
    assert.equal(f.value, null);
    assert.equal(verdict(f), 'failed');
    assert.equal(ratioFigure({ id: 'r', row: 2, name: 'r' }, 1, 0, 'p', 's').value, null);
  });

  it('marks every figure of a failed section with its error', () => {
    const [a, b] = failedFigures(
      [
        { id: 'a', row: 8, name: 'a', unit: 'x' },
        { id: 'b', row: 8, name: 'b', unit: 'y' },
      ],
      new Error('no Postfix'),
    );
    assert.deepEqual([a?.value, a?.error, b?.id, b?.error], [null, 'no Postfix', 'b', 'no Postfix']);
    assert.equal(verdict(b as Figure), 'failed');
  });

  it('formats about three significant digits, and ratios with ×', () => {
    assert.equal(formatValue(0.4123, '×'), '0.41×');
    assert.equal(formatValue(12.345, 's'), '12.3 s');
    assert.equal(formatValue(1275.6, 'messages/s'), '1,276 messages/s');
    assert.equal(formatValue(null, 'ms'), '-');
  });

  it('takes the best and the median of the finite values only', () => {
    assert.equal(best([3, null, 1, Number.NaN]), 1);
    assert.equal(best([null]), null);
    assert.equal(median([5, 1, 3, null]), 3);
    assert.equal(median([4, 2]), 2);
  });

  it('prints and writes one row per figure, in row order, with goal, value and verdict', () => {
    const figures: Figure[] = [
      { ...fig(1500, { op: '<', value: 2000 }), row: 4, name: 'stat 1M' },
      ratioFigure({ id: 'p', row: 2, name: 'pop3 | pull', goal: { op: '<=', value: 0.2 } }, 2, 4, 'fetchmail', 's'),
    ];
    const text = textTable(figures).split('\n');
    assert.equal(text.length, 3);
    assert.match(text[1] ?? '', /^2 +pop3 \| pull +<= 0\.20× +0\.50× +missed +2\.00 s vs fetchmail 4\.00 s$/);
    assert.match(text[2] ?? '', /^4 +stat 1M +< 2,000 ms +1,500 ms +met/);
    const md = markdownTable(figures).split('\n');
    assert.equal(md[2], '| 2 | pop3 \\| pull | <= 0.20× | **0.50×** | missed | 2.00 s vs fetchmail 4.00 s |');
    const results: Results = {
      date: '2026-12-07T01:00:00.000Z',
      seconds: 600,
      quick: false,
      only: null,
      machine: { cpus: 2, cpuModel: 'cpu', memoryMB: 24_000, loadAverageAtStart: 3 },
      tools: { node: 'v20' },
      sections: { pull: { date: '2026-12-07T01:05:00.000Z', seconds: 300, quick: false, loadAverage: 3 } },
      figures,
    };
    const doc = markdownReport(results);
    assert.match(doc, /1 of 2 goals met/);
    assert.match(doc, /10\.0 min/);
    assert.ok(doc.includes(md.join('\n')));
  });
});
