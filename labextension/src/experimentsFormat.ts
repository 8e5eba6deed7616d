/**
 * Pure logic of the experiment views: table columns and cells, the filter box, sorting, the
 * virtual window of the runs table, EMA smoothing, series alignment for the chart, the param
 * diff of a comparison and parallel-coordinate scaling (no DOM, no JupyterLab imports:
 * unit-tested as is).
 */
import type { IRun } from './api';

/** A column of the runs table: "name", "status", "start_time", "params.lr", "metrics.loss",
 * "tags.team". */
export type Column = string;

export const BASE_COLUMNS: Column[] = ['name', 'status', 'start_time'];

/** How many params and metrics the table shows before the user picks columns. */
export const DEFAULT_PER_KIND = 6;

function sortedKeys(runs: IRun[], kind: 'params' | 'metrics' | 'tags'): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    for (const key of Object.keys(run[kind] ?? {})) {
      keys.add(key);
    }
  }
  return [...keys].sort();
}

/** Every column the runs offer: the base ones, then params, metrics and tags by name. */
export function availableColumns(runs: IRun[]): Column[] {
  return [
    ...BASE_COLUMNS,
    ...sortedKeys(runs, 'params').map(k => `params.${k}`),
    ...sortedKeys(runs, 'metrics').map(k => `metrics.${k}`),
    ...sortedKeys(runs, 'tags').map(k => `tags.${k}`)
  ];
}

/** The columns shown by default: the base ones, the first params and metrics (no tags). */
export function defaultColumns(available: Column[]): Column[] {
  const first = (prefix: string) =>
    available.filter(c => c.startsWith(prefix)).slice(0, DEFAULT_PER_KIND);
  return [
    ...available.filter(c => BASE_COLUMNS.includes(c)),
    ...first('params.'),
    ...first('metrics.')
  ];
}

/** The column's kind and key: "params.lr" -> ["params", "lr"]; "name" -> ["attributes", "name"]. */
export function splitColumn(column: Column): [string, string] {
  const dot = column.indexOf('.');
  const kind = dot < 0 ? '' : column.slice(0, dot);
  if (kind === 'params' || kind === 'metrics' || kind === 'tags') {
    return [kind, column.slice(dot + 1)];
  }
  return ['attributes', column];
}

/** A column's header text: "lr", "loss", "name". */
export function columnLabel(column: Column): string {
  return splitColumn(column)[1];
}

/** A metric as a user reads it: 4 significant digits, integers as they are. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (Math.abs(value) === Number.MAX_VALUE) {
    // MLflow's SQL store keeps an infinity as the largest float
    return value > 0 ? 'Infinity' : '-Infinity';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e9) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

function formatTime(ms: number | null | undefined): string {
  if (!ms) {
    return '';
  }
  const date = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** The text of a run's cell in a column. */
export function cellText(run: IRun, column: Column): string {
  const [kind, key] = splitColumn(column);
  switch (kind) {
    case 'params':
      return run.params?.[key] ?? '';
    case 'metrics':
      return formatNumber(run.metrics?.[key]);
    case 'tags':
      return run.tags?.[key] ?? '';
  }
  switch (key) {
    case 'name':
      return run.name || run.run_id.slice(0, 8);
    case 'status':
      return run.status ?? '';
    case 'start_time':
      return formatTime(run.start_time);
    case 'end_time':
      return formatTime(run.end_time);
  }
  return '';
}

/** MLflow's name of a column in `order_by` and filters. */
const ATTRIBUTE_NAMES: Record<string, string> = {
  name: 'attributes.run_name',
  status: 'attributes.status',
  start_time: 'attributes.start_time',
  end_time: 'attributes.end_time'
};

function quoteKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : '`' + key.replace(/`/g, '') + '`';
}

/** The `order_by` entry of runs/search for a sort: "metrics.loss ASC", "attributes.start_time DESC". */
export function orderBy(column: Column, descending: boolean): string {
  const [kind, key] = splitColumn(column);
  const name = kind === 'attributes' ? (ATTRIBUTE_NAMES[key] ?? `attributes.${key}`) : `${kind}.${quoteKey(key)}`;
  return `${name} ${descending ? 'DESC' : 'ASC'}`;
}

/** What a header click does to the sort: a new column sorts ascending (metrics too), the same
 * column flips. */
export function nextSort(
  current: { column: Column; descending: boolean } | null,
  column: Column
): { column: Column; descending: boolean } {
  if (current && current.column === column) {
    return { column, descending: !current.descending };
  }
  return { column, descending: column === 'start_time' };
}

/** Keys the filter box knows, to resolve a bare name ("lr") to params/metrics/tags. */
export interface IKnownKeys {
  params: string[];
  metrics: string[];
  tags: string[];
}

const TERM = /^\s*([A-Za-z_][\w.\-/`]*)\s*(<=|>=|!=|=|<|>|LIKE|ILIKE)\s*(.+?)\s*$/i;

function quoteValue(value: string): string {
  if (/^'.*'$/.test(value) || /^".*"$/.test(value)) {
    return value;
  }
  return `'${value.replace(/'/g, "\\'")}'`;
}

/** The MLflow filter of what a user typed in the filter box, or an error that says what is wrong.
 *
 * Terms are joined by "and". A term is MLflow's own syntax ("metrics.loss < 0.1",
 * "params.lr = '0.01'") or a bare key the runs have ("lr = 0.01", "loss < 0.1", "team = vision"):
 * params and tags compare as quoted strings, metrics as numbers.
 */
export function parseFilter(text: string, known: IKnownKeys): { filter: string } | { error: string } {
  const trimmed = text.trim();
  if (!trimmed) {
    return { filter: '' };
  }
  const terms = trimmed.split(/\s+and\s+/i);
  const out: string[] = [];
  for (const term of terms) {
    const match = TERM.exec(term);
    if (!match) {
      return { error: `"${term.trim()}": write KEY OP VALUE, e.g. lr = 0.01 or metrics.loss < 0.1` };
    }
    const [, rawKey, rawOp, value] = match;
    const op = rawOp.toUpperCase();
    const lower = rawKey.toLowerCase();
    const prefix = ['params.', 'metrics.', 'tags.', 'attributes.', 'attribute.', 'param.', 'metric.', 'tag.', 'run.'].find(
      p => lower.startsWith(p)
    );
    if (prefix) {
      const isMetric = prefix.startsWith('metric');
      out.push(`${rawKey} ${op} ${isMetric ? value : quoteValue(value)}`);
      continue;
    }
    const key = rawKey.replace(/`/g, '');
    let kind: string;
    if (known.params.includes(key)) {
      kind = 'params';
    } else if (known.metrics.includes(key)) {
      kind = 'metrics';
    } else if (known.tags.includes(key)) {
      kind = 'tags';
    } else if (key === 'status' || key === 'run_name') {
      out.push(`attributes.${key} ${op} ${quoteValue(value)}`);
      continue;
    } else {
      return { error: `"${key}" is no param, metric or tag of these runs` };
    }
    if (kind === 'metrics') {
      if (!Number.isFinite(Number(value))) {
        return { error: `"${key}" is a metric: compare it with a number, not ${value}` };
      }
      out.push(`metrics.${quoteKey(key)} ${op} ${Number(value)}`);
    } else {
      out.push(`${kind}.${quoteKey(key)} ${op} ${quoteValue(value)}`);
    }
  }
  return { filter: out.join(' and ') };
}

/** The rows of a virtualised table to put in the DOM for a scroll position: [start, end) and
 * the offset of the first one, with `overscan` rows above and below the viewport. */
export function visibleWindow(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan = 8
): { start: number; end: number; offset: number } {
  if (total <= 0 || rowHeight <= 0) {
    return { start: 0, end: 0, offset: 0 };
  }
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + 1;
  const start = Math.max(0, Math.min(first - overscan, total - 1));
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end), offset: start * rowHeight };
}

/** Exponential moving average, debiased at the start (as TensorBoard's smoothing slider):
 * weight 0 returns the values, 0.99 nearly flattens them; gaps (null, NaN) stay gaps. */
export function emaSmooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values.slice();
  }
  const w = Math.min(weight, 0.999);
  let last = 0;
  let count = 0;
  return values.map(v => {
    if (v === null || !Number.isFinite(v)) {
      return v === null ? null : v;
    }
    last = last * w + (1 - w) * v;
    count++;
    return last / (1 - Math.pow(w, count));
  });
}

/** One run's points of a metric. */
export interface ISeries {
  steps: number[];
  values: (number | null)[];
}

/** Series with different steps on one x axis (what uPlot draws): the sorted union of the
 * steps, each series' values at those steps (null where it has no point). */
export function alignSeries(series: ISeries[]): [number[], ...(number | null)[][]] {
  const union = new Set<number>();
  for (const s of series) {
    for (const step of s.steps) {
      union.add(step);
    }
  }
  const xs = [...union].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = series.map(s => {
    const column: (number | null)[] = new Array(xs.length).fill(null);
    s.steps.forEach((step, i) => {
      column[index.get(step)!] = s.values[i];
    });
    return column;
  });
  return [xs, ...columns];
}

/** Add live points to a series (kept sorted by step; a step logged again takes the new value).
 * Returns how many points the series gained. */
export function appendPoints(series: ISeries, points: { step: number; value: number | null }[]): number {
  let added = 0;
  for (const p of points) {
    const n = series.steps.length;
    if (n === 0 || p.step > series.steps[n - 1]) {
      series.steps.push(p.step);
      series.values.push(p.value);
      added++;
      continue;
    }
    // out of order or a repeat: binary search
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (series.steps[mid] < p.step) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (series.steps[lo] === p.step) {
      series.values[lo] = p.value;
    } else {
      series.steps.splice(lo, 0, p.step);
      series.values.splice(lo, 0, p.value);
      added++;
    }
  }
  return added;
}

/** A param row of a comparison: its value in each run, and whether they differ. */
export interface IParamRow {
  key: string;
  values: (string | null)[];
  differs: boolean;
}

/** The params of compared runs as rows, those that differ first (then by name). */
export function paramRows(
  runIds: string[],
  params: { differ: Record<string, Record<string, string | null>>; same: Record<string, string | null> }
): IParamRow[] {
  const differ = Object.keys(params.differ)
    .sort()
    .map(key => ({
      key,
      values: runIds.map(id => params.differ[key][id] ?? null),
      differs: true
    }));
  const same = Object.keys(params.same)
    .sort()
    .map(key => ({ key, values: runIds.map(() => params.same[key]), differs: false }));
  return [...differ, ...same];
}

/** One axis of a parallel-coordinates plot and where each run sits on it (0 bottom, 1 top;
 * null: the run has no value). Numbers are scaled linearly; text values are spread evenly in
 * sorted order. */
export interface IAxis {
  key: string;
  labels: { position: number; text: string }[];
  positions: (number | null)[];
}

export function parallelAxes(keys: string[], values: (string | number | null | undefined)[][]): IAxis[] {
  return keys.map((key, k) => {
    const column = values.map(row => row[k]);
    const present = column.filter((v): v is string | number => v !== null && v !== undefined && v !== '');
    const numeric = present.length > 0 && present.every(v => Number.isFinite(Number(v)));
    if (numeric) {
      const numbers = present.map(Number);
      const lo = Math.min(...numbers);
      const hi = Math.max(...numbers);
      const scale = (v: number) => (hi === lo ? 0.5 : (v - lo) / (hi - lo));
      return {
        key,
        labels:
          hi === lo
            ? [{ position: 0.5, text: formatNumber(lo) }]
            : [
                { position: 0, text: formatNumber(lo) },
                { position: 1, text: formatNumber(hi) }
              ],
        positions: column.map(v => (v === null || v === undefined || v === '' ? null : scale(Number(v))))
      };
    }
    const levels = [...new Set(present.map(String))].sort();
    const at = (i: number) => (levels.length === 1 ? 0.5 : i / (levels.length - 1));
    return {
      key,
      labels: levels.map((text, i) => ({ position: at(i), text })),
      positions: column.map(v =>
        v === null || v === undefined || v === '' ? null : at(levels.indexOf(String(v)))
      )
    };
  });
}

/** Distinct hues that read on light and dark themes (the chart lines, the legends' swatches). */
export const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf'
];

export function colorAt(index: number): string {
  return PALETTE[index % PALETTE.length];
}
