/**
 * The benchmark's figures and their goals, and the plain-text table `npm run bench` prints (pure:
 * no I/O; tests/unit/bench-figures.test.ts). A figure is one number with its unit and, when the
 * table in docs/benchmarks.md sets one, a goal; a ratio figure carries the two measured values it
 * divides, so the report can show both beside the ratio.
 */

/** A goal: the figure must be `op` `value` (in the figure's unit). */
export interface Goal {
  op: '<' | '<=' | '>=' | '>';
  value: number;
}

/** One figure of the run. */
export interface Figure {
  /** Stable id, e.g. `imap-pull-10000` (latest.json, docs). */
  id: string;
  /** The table row it belongs to (1–10) and its heading. */
  row: number;
  name: string;
  unit: string;
  /** Null when the measurement failed (see `error`). */
  value: number | null;
  goal?: Goal;
  /** For ratios: localpost's figure and the peer's, in `baseUnit`. */
  ratioOf?: { localpost: number; peer: number; peerName: string; baseUnit: string };
  /** Extra facts shown beside the figure (samples, sizes, command lines). */
  detail?: string;
  error?: string;
  /** The bench section that measured it (bench/run.ts). */
  section?: string;
}

export type Verdict = 'met' | 'missed' | 'failed' | '';

/** Whether a figure meets its goal ('' when it has none). */
export function verdict(f: Figure): Verdict {
  if (f.value === null || !Number.isFinite(f.value)) return 'failed';
  if (!f.goal) return '';
  const { op, value } = f.goal;
  const ok =
    op === '<' ? f.value < value : op === '<=' ? f.value <= value : op === '>=' ? f.value >= value : f.value > value;
  return ok ? 'met' : 'missed';
}

/** Digits enough for ~3 significant figures, at most 2 decimals. */
export function formatNumber(n: number): string {
  const a = Math.abs(n);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** `12.3 ms`, `0.41×`, `1,276 messages/s`. */
export function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return unit === '×' ? `${formatNumber(value)}×` : `${formatNumber(value)} ${unit}`;
}

export function formatGoal(f: Figure): string {
  return f.goal ? `${f.goal.op} ${formatValue(f.goal.value, f.unit)}` : '';
}

/** `7.83 s vs fetchmail 19.2 s` for a ratio figure, else ''. */
export function formatRatioOf(f: Figure): string {
  const r = f.ratioOf;
  if (!r) return '';
  return `${formatValue(r.localpost, r.baseUnit)} vs ${r.peerName} ${formatValue(r.peer, r.baseUnit)}`;
}

/** First line of an error, at most 200 characters. */
export function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').slice(0, 200);
}

/** The measured values behind a figure and its detail, `; `-separated. */
export function describe(f: Figure): string {
  return [formatRatioOf(f), f.detail ?? ''].filter(Boolean).join('; ');
}

/** Fixed-width text table of the figures, in row order. */
export function textTable(figures: readonly Figure[]): string {
  const head = ['#', 'figure', 'goal', 'measured', 'verdict', 'from'];
  const rows = [...figures]
    .sort((a, b) => a.row - b.row)
    .map((f) => [
      String(f.row),
      f.name,
      formatGoal(f),
      formatValue(f.value, f.unit),
      verdict(f),
      f.error ? `ERROR: ${firstLine(f.error)}` : describe(f),
    ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === 5 ? 0 : (r[i] ?? '').length))));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 5 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** A ratio figure from localpost's value and a peer's (value null when either is missing). */
export function ratioFigure(
  base: Omit<Figure, 'value' | 'unit' | 'ratioOf'>,
  localpost: number | null,
  peer: number | null,
  peerName: string,
  baseUnit: string,
): Figure {
  if (localpost === null || peer === null || peer <= 0)
    return { ...base, unit: '×', value: null, error: base.error ?? 'a contestant failed' };
  return { ...base, unit: '×', value: localpost / peer, ratioOf: { localpost, peer, peerName, baseUnit } };
}

/** The figures of a section that failed, each carrying the error. */
export function failedFigures(bases: readonly Omit<Figure, 'value'>[], err: unknown): Figure[] {
  const error = err instanceof Error ? err.message : String(err);
  return bases.map((b) => ({ ...b, value: null, error }));
}

/** Smallest of the finite values, or null. */
export function best(xs: readonly (number | null)[]): number | null {
  const ok = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return ok.length ? Math.min(...ok) : null;
}

/** Median of the finite values, or null. */
export function median(xs: readonly (number | null)[]): number | null {
  const ok = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  return ok.length ? (ok[Math.floor((ok.length - 1) / 2)] ?? null) : null;
}
