import { describe, expect, it } from 'vitest';

import type { IDatasetDiff, IDatasetVersion } from '../api';
import {
  commitHints,
  defaultDiffPair,
  diffSummary,
  encodeFilePath,
  fileChanges,
  formatBytes,
  ITrans,
  tableChanges
} from '../datasetFormat';

/** A translation bundle that only fills in %1, %2 ... (as nullTranslator does). */
const trans: ITrans = {
  __: (msg: string, ...args: any[]) =>
    msg.replace(/%(\d+)/g, (_, n: string) => String(args[Number(n) - 1]))
};

function version(n: number): IDatasetVersion {
  return {
    version: n,
    name: `v${n}`,
    parent: n > 1 ? n - 1 : null,
    message: `commit ${n}`,
    author: 'alice',
    file_count: 1,
    total_bytes: 10,
    tags: [],
    created_at: '2026-11-26T08:00:00Z'
  };
}

const DIFF: IDatasetDiff = {
  from: 1,
  to: 2,
  added: [{ path: 'data/new.csv', size: 2048 }],
  removed: [{ path: 'old.txt', size: 5 }],
  modified: [{ path: 'data/events.csv', old_size: 1000, new_size: 1536 }],
  tables: [
    {
      path: 'data/events.csv',
      format: 'csv',
      schema: {
        added: ['country'],
        removed: ['legacy'],
        changed: [{ column: 'amount', old_type: 'int64', new_type: 'double' }],
        columns: ['user', 'amount', 'country']
      },
      rows: { old: 3, new: 5, added: 2, removed: 0 }
    }
  ]
};

describe('formatBytes', () => {
  it('reads like a file browser', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(900_000)).toBe('879 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatBytes(-1)).toBe('?');
  });
});

describe('encodeFilePath', () => {
  it('escapes each segment and keeps the slashes', () => {
    expect(encodeFilePath('data/part 0.csv')).toBe('data/part%200.csv');
    expect(encodeFilePath('a/b#c?d.txt')).toBe('a/b%23c%3Fd.txt');
  });
});

describe('defaultDiffPair', () => {
  it('compares the newest version with the one before', () => {
    expect(defaultDiffPair([version(3), version(1), version(2)])).toEqual(['v2', 'v3']);
  });

  it('has nothing to compare below two versions', () => {
    expect(defaultDiffPair([version(1)])).toBeNull();
    expect(defaultDiffPair([])).toBeNull();
  });
});

describe('fileChanges', () => {
  it('lists every changed file by path, with sizes', () => {
    expect(fileChanges(DIFF)).toEqual([
      { change: 'modified', path: 'data/events.csv', detail: '1000 B → 1.5 KiB' },
      { change: 'added', path: 'data/new.csv', detail: '2.0 KiB' },
      { change: 'removed', path: 'old.txt', detail: '5 B' }
    ]);
  });
});

describe('diffSummary', () => {
  it('counts the changes', () => {
    expect(diffSummary(DIFF, trans)).toBe('v1 → v2: files 1 added, 1 removed, 1 modified');
  });

  it('says when nothing changed', () => {
    const same = { ...DIFF, added: [], removed: [], modified: [], tables: [] };
    expect(diffSummary(same, trans)).toBe('v1 → v2: no file changed');
  });
});

describe('tableChanges', () => {
  it('lists the schema changes, then the rows', () => {
    expect(tableChanges(DIFF.tables[0], trans)).toEqual([
      'column added: country',
      'column removed: legacy',
      'column amount: int64 → double',
      'rows: 3 → 5 (2 added, 0 removed)'
    ]);
  });

  it('says when the schema is unchanged', () => {
    const schema = { added: [], removed: [], changed: [], columns: ['a'] };
    const table = { ...DIFF.tables[0], schema };
    expect(tableChanges(table, trans)[0]).toBe('schema unchanged');
  });

  it('explains a table that was not compared', () => {
    const big = { path: 'big.parquet', format: 'parquet', skipped: 'too large' };
    expect(tableChanges(big, trans)).toEqual(['not compared (too large)']);
    expect(
      tableChanges({ path: 'x.csv', format: 'csv', error: 'Error tokenizing data' }, trans)
    ).toEqual(['could not be read as csv: Error tokenizing data']);
  });
});

describe('commitHints', () => {
  it('gives the notebook call and the terminal command', () => {
    expect(commitHints('sales', 'orders')).toEqual({
      python: 'wb.datasets.commit("orders", "PATH", project="sales", message="first version")',
      shell: 'jupyter workbench datasets commit sales/orders PATH -m "first version"'
    });
    expect(commitHints('sales').shell).toBe(
      'jupyter workbench datasets commit sales/NAME PATH -m "first version"'
    );
  });
});
