import { describe, expect, it } from 'vitest';

import {
  BEAT_MS,
  CommitsUnderWay,
  datasetNameProblem,
  frameChunks,
  isCommittable,
  pathInDataset,
  progressText,
  STALE_MS,
  suggestDatasetName,
  tabId
} from '../commitFormat';

const trans = {
  __: (msg: string, ...args: any[]) =>
    msg.replace(/%(\d+)/g, (_, n: string) => String(args[Number(n) - 1]))
};

describe('isCommittable', () => {
  it('offers folders, CSV and Parquet files', () => {
    expect(isCommittable({ name: 'data', type: 'directory' })).toBe(true);
    expect(isCommittable({ name: 'Sales.CSV', type: 'file' })).toBe(true);
    expect(isCommittable({ name: 'x.parquet', type: 'file' })).toBe(true);
    expect(isCommittable({ name: 'notes.ipynb', type: 'notebook' })).toBe(false);
    expect(isCommittable({ name: 'csv.txt', type: 'file' })).toBe(false);
  });
});

describe('suggestDatasetName', () => {
  it('makes a valid name from the file or folder name', () => {
    expect(suggestDatasetName('work/Sales 2026.csv')).toBe('sales-2026');
    expect(suggestDatasetName('data/raw/')).toBe('raw');
    expect(suggestDatasetName('_Weird__Name!.parquet')).toBe('weird__name');
    expect(suggestDatasetName('...')).toBe('dataset');
    expect(datasetNameProblem(suggestDatasetName('A/B C.csv'))).toBeNull();
  });

  it('explains an invalid name', () => {
    expect(datasetNameProblem('')).toContain('name');
    expect(datasetNameProblem('Sales')).toContain('lowercase');
    expect(datasetNameProblem('sales-v2')).toBeNull();
  });
});

describe('pathInDataset', () => {
  it('keeps the paths below the folder, or the file name', () => {
    expect(pathInDataset('data/raw', true, 'data/raw/a/b.csv')).toBe('a/b.csv');
    expect(pathInDataset('data/raw/', true, 'data/raw/c.csv')).toBe('c.csv');
    expect(pathInDataset('data/x.csv', false, 'data/x.csv')).toBe('x.csv');
  });
});

describe('frameChunks', () => {
  it('frames digest, big-endian length, bytes', () => {
    const digest = '01'.repeat(31) + 'ff';
    const body = frameChunks([
      { digest, data: new Uint8Array([7, 8, 9]) },
      { digest: '00'.repeat(32), data: new Uint8Array([]) }
    ]);
    expect(body.length).toBe(36 + 3 + 36);
    expect(body[0]).toBe(1);
    expect(body[31]).toBe(255);
    expect(Array.from(body.subarray(32, 39))).toEqual([0, 0, 0, 3, 7, 8, 9]);
    expect(Array.from(body.subarray(71, 75))).toEqual([0, 0, 0, 0]);
  });
});

describe('progressText', () => {
  it('says what is happening and how far', () => {
    expect(progressText('sending', 3 * 1024 * 1024, 12 * 1024 * 1024, trans)).toBe(
      'Sending 3.0 MiB of 12 MiB (25%)'
    );
    expect(progressText('hashing', 10, 0, trans)).toBe('Reading 10 B of 0 B (100%)');
    expect(progressText('committing', 1, 1, trans)).toBe('Publishing the version…');
  });
});

describe('retries of a chunk batch', () => {
  it('retries what a dropped connection or an overloaded server fails, not refusals', async () => {
    const { isTransient, retryDelay, SEND_TRIES } = await import('../commitFormat');
    expect([0, 429, 500, 502, 503].map(isTransient)).toEqual([true, true, true, true, true]);
    expect([400, 403, 404, 409, 413].map(isTransient)).toEqual([false, false, false, false, false]);
    expect([0, 1, 2, 3, 4, 10].map(retryDelay)).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(SEND_TRIES).toBeGreaterThan(1);
  });
});

describe('CommitsUnderWay', () => {
  const memory = () => {
    const data = new Map<string, string>();
    return {
      data,
      getItem: (k: string) => data.get(k) ?? null,
      setItem: (k: string, v: string) => void data.set(k, v),
      removeItem: (k: string) => void data.delete(k)
    };
  };
  const item = (path: string, dataset = 'exports', tab = 't1', beat = 1_000_000) => ({
    path,
    project: 'lab',
    dataset,
    message: 'm',
    tab,
    beat
  });

  it('remembers each commit once, until it ends', () => {
    const store = memory();
    const commits = new CommitsUnderWay(store);
    commits.add(item('a'));
    commits.add(item('b'));
    commits.add({ ...item('a'), message: 'again' }); // the same path and dataset: replaced
    expect(new CommitsUnderWay(store).list().map(u => [u.path, u.message])).toEqual([
      ['b', 'm'],
      ['a', 'again']
    ]);
    commits.remove(item('b'));
    expect(commits.list().map(u => u.path)).toEqual(['a']);
    commits.remove(item('a'));
    expect(store.data.size).toBe(0); // nothing left behind
  });

  it("offers this tab's commits and silent tabs' ones, once; a live tab's stay", () => {
    const store = memory();
    const now = 2_000_000;
    const commits = new CommitsUnderWay(store);
    commits.add(item('mine', 'one', 't1', now - 1_000)); // this tab, before its reload
    commits.add(item('closed', 'two', 't2', now - STALE_MS - 1)); // a tab silent too long
    commits.add(item('running', 'three', 't3', now - BEAT_MS)); // another tab, still beating
    const offered = new CommitsUnderWay(store).takeInterrupted('t1', now);
    expect(offered.map(u => u.path)).toEqual(['mine', 'closed']);
    expect(new CommitsUnderWay(store).takeInterrupted('t1', now)).toEqual([]);
    expect(commits.list().map(u => u.path)).toEqual(['running']);
  });

  it('keeps a tab id across reloads, a new one per tab', () => {
    const session = memory();
    let n = 0;
    const fresh = () => `id${++n}`;
    expect(tabId(session, fresh)).toBe('id1');
    expect(tabId(session, fresh)).toBe('id1'); // a reload: the same session storage
    expect(tabId(memory(), fresh)).toBe('id2'); // another tab
    expect(tabId(null, fresh)).toBe('id3');
  });

  it('survives broken, foreign or missing storage', () => {
    const store = memory();
    store.setItem('jupyter-workbench:commits-under-way', '{not json');
    expect(new CommitsUnderWay(store).list()).toEqual([]);
    store.setItem('jupyter-workbench:commits-under-way', '[{"path": 3}, null, "x"]');
    expect(new CommitsUnderWay(store).list()).toEqual([]);
    const full = {
      ...memory(),
      setItem: () => {
        throw new Error('QuotaExceededError');
      }
    };
    expect(() => new CommitsUnderWay(full).add(item('a'))).not.toThrow();
    const none = new CommitsUnderWay(null);
    none.add(item('a'));
    expect(none.list()).toEqual([]);
  });
});
