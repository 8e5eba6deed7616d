import { describe, expect, it } from 'vitest';

import type { IRun } from '../api';
import {
  alignSeries,
  appendPoints,
  availableColumns,
  cellText,
  defaultColumns,
  emaSmooth,
  formatNumber,
  nextSort,
  orderBy,
  parallelAxes,
  paramRows,
  parseFilter,
  visibleWindow
} from '../experimentsFormat';

function run(overrides: Partial<IRun> = {}): IRun {
  return {
    run_id: 'a'.repeat(32),
    name: 'first',
    experiment: 'p/e',
    status: 'FINISHED',
    start_time: null,
    end_time: null,
    params: {},
    metrics: {},
    tags: {},
    ...overrides
  };
}

const KNOWN = { params: ['lr', 'seed'], metrics: ['loss'], tags: ['team'] };

describe('columns', () => {
  it('lists base columns, then params, metrics and tags by name', () => {
    const runs = [
      run({ params: { seed: '1', lr: '0.1' }, metrics: { loss: 1 } }),
      run({ params: { batch: '32' }, metrics: { acc: 0.5 }, tags: { team: 'cv' } })
    ];
    expect(availableColumns(runs)).toEqual([
      'name',
      'status',
      'start_time',
      'params.batch',
      'params.lr',
      'params.seed',
      'metrics.acc',
      'metrics.loss',
      'tags.team'
    ]);
  });

  it('shows base, the first params and metrics by default, no tags', () => {
    const available = ['name', 'status', 'start_time', 'params.a', 'metrics.m', 'tags.t'];
    expect(defaultColumns(available)).toEqual(['name', 'status', 'start_time', 'params.a', 'metrics.m']);
    const many = Array.from({ length: 10 }, (_, i) => `params.p${i}`);
    expect(defaultColumns(many)).toHaveLength(6);
  });

  it('formats cells: metrics to 4 digits, a missing name as the id prefix', () => {
    const r = run({ name: null, params: { lr: '0.01' }, metrics: { loss: 0.123456, n: 3 } });
    expect(cellText(r, 'name')).toBe('aaaaaaaa');
    expect(cellText(r, 'params.lr')).toBe('0.01');
    expect(cellText(r, 'metrics.loss')).toBe('0.1235');
    expect(cellText(r, 'metrics.n')).toBe('3');
    expect(cellText(r, 'metrics.missing')).toBe('');
    expect(cellText(r, 'tags.x')).toBe('');
    expect(formatNumber(0.00001234)).toBe('1.234e-5');
    expect(formatNumber(NaN)).toBe('NaN');
    expect(formatNumber(1.7976931348623157e308)).toBe('Infinity');
    expect(formatNumber(-Number.MAX_VALUE)).toBe('-Infinity');
  });
});

describe('sorting', () => {
  it('maps columns to MLflow order_by', () => {
    expect(orderBy('metrics.loss', false)).toBe('metrics.loss ASC');
    expect(orderBy('params.learning-rate', true)).toBe('params.`learning-rate` DESC');
    expect(orderBy('name', false)).toBe('attributes.run_name ASC');
    expect(orderBy('start_time', true)).toBe('attributes.start_time DESC');
  });

  it('flips the same column, starts a new one ascending (time descending)', () => {
    expect(nextSort(null, 'metrics.loss')).toEqual({ column: 'metrics.loss', descending: false });
    expect(nextSort({ column: 'metrics.loss', descending: false }, 'metrics.loss')).toEqual({
      column: 'metrics.loss',
      descending: true
    });
    expect(nextSort({ column: 'metrics.loss', descending: true }, 'start_time').descending).toBe(true);
  });
});

describe('parseFilter', () => {
  it('resolves bare keys to params (quoted), metrics (numbers) and tags', () => {
    expect(parseFilter('lr = 0.01 and loss < 0.5', KNOWN)).toEqual({
      filter: "params.lr = '0.01' and metrics.loss < 0.5"
    });
    expect(parseFilter('team != cv', KNOWN)).toEqual({ filter: "tags.team != 'cv'" });
    expect(parseFilter('status = RUNNING', KNOWN)).toEqual({ filter: "attributes.status = 'RUNNING'" });
  });

  it('passes MLflow syntax through', () => {
    expect(parseFilter("params.lr = '0.1'", KNOWN)).toEqual({ filter: "params.lr = '0.1'" });
    expect(parseFilter('metrics.loss <= 2 AND params.seed = 3', KNOWN)).toEqual({
      filter: "metrics.loss <= 2 and params.seed = '3'"
    });
  });

  it('is empty for an empty box', () => {
    expect(parseFilter('   ', KNOWN)).toEqual({ filter: '' });
  });

  it('says what is wrong', () => {
    expect(parseFilter('depth = 3', KNOWN)).toEqual({
      error: '"depth" is no param, metric or tag of these runs'
    });
    expect(parseFilter('loss < low', KNOWN)).toEqual({
      error: '"loss" is a metric: compare it with a number, not low'
    });
    expect('error' in parseFilter('just words', KNOWN)).toBe(true);
  });
});

describe('visibleWindow', () => {
  it('renders only the rows in view, plus overscan', () => {
    expect(visibleWindow(0, 100, 20, 10_000, 2)).toEqual({ start: 0, end: 8, offset: 0 });
    const mid = visibleWindow(20_000, 400, 20, 10_000, 5);
    expect(mid.start).toBe(995);
    expect(mid.end).toBe(1026);
    expect(mid.offset).toBe(995 * 20);
  });

  it('stays inside the table at its end and when empty', () => {
    expect(visibleWindow(1e9, 400, 20, 50, 5)).toEqual({ start: 49, end: 50, offset: 980 });
    expect(visibleWindow(0, 400, 20, 0)).toEqual({ start: 0, end: 0, offset: 0 });
  });
});

describe('emaSmooth', () => {
  it('returns the values with weight 0 and keeps a constant constant', () => {
    expect(emaSmooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    for (const v of emaSmooth([5, 5, 5, 5], 0.9)) {
      expect(v).toBeCloseTo(5);
    }
  });

  it('is debiased at the start and lags behind a jump', () => {
    const out = emaSmooth([0, 10, 10], 0.5) as number[];
    expect(out[0]).toBe(0);
    expect(out[1]).toBeCloseTo(10 * 0.5 / 0.75);
    expect(out[2]).toBeLessThan(10);
  });

  it('keeps gaps', () => {
    expect(emaSmooth([1, null, 3], 0.5)[1]).toBeNull();
  });
});

describe('series', () => {
  it('aligns runs with different steps on one x axis', () => {
    expect(
      alignSeries([
        { steps: [0, 2], values: [1, 3] },
        { steps: [1, 2], values: [5, 6] }
      ])
    ).toEqual([
      [0, 1, 2],
      [1, null, 3],
      [null, 5, 6]
    ]);
  });

  it('appends live points in step order, a repeated step takes the new value', () => {
    const s = { steps: [0, 1], values: [1, 2] as (number | null)[] };
    expect(appendPoints(s, [{ step: 2, value: 3 }, { step: 3, value: 4 }])).toBe(2);
    expect(appendPoints(s, [{ step: 1, value: 9 }])).toBe(0);
    expect(appendPoints(s, [{ step: -1, value: 0 }])).toBe(1);
    expect(s).toEqual({ steps: [-1, 0, 1, 2, 3], values: [0, 1, 9, 3, 4] });
  });
});

describe('comparison', () => {
  it('puts params that differ first', () => {
    const rows = paramRows(['a', 'b'], {
      differ: { seed: { a: '1', b: '2' } },
      same: { lr: '0.1' }
    });
    expect(rows).toEqual([
      { key: 'seed', values: ['1', '2'], differs: true },
      { key: 'lr', values: ['0.1', '0.1'], differs: false }
    ]);
  });

  it('scales parallel axes: numbers linearly, text evenly, gaps as null', () => {
    const [lr, opt] = parallelAxes(
      ['lr', 'optimizer'],
      [
        ['0.1', 'sgd'],
        ['0.3', 'adam'],
        [null, 'sgd']
      ]
    );
    expect(lr.positions).toEqual([0, 1, null]);
    expect(lr.labels.map(l => l.text)).toEqual(['0.1', '0.3']);
    expect(opt.positions).toEqual([1, 0, 1]);
    expect(opt.labels).toEqual([
      { position: 0, text: 'adam' },
      { position: 1, text: 'sgd' }
    ]);
    expect(parallelAxes(['x'], [[2], [2]])[0].positions).toEqual([0.5, 0.5]);
  });
});
