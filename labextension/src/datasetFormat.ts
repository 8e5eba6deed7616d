/**
 * Pure formatting of datasets for the lab views: sizes, file paths in URLs, and the diff of two
 * versions as lines a user reads (no DOM, no JupyterLab imports: unit-tested as is).
 */
import type { IDatasetDiff, IDatasetVersion, ITableDiff } from './api';

/** The part of a translation bundle these helpers use (`trans.__` with %1, %2 ... arguments). */
export interface ITrans {
  __(msg: string, ...args: any[]): string;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; whole bytes below 1 KiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '?';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) {
    return `${value} B`;
  }
  const digits = value < 10 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** A file path inside a dataset as URL segments: each part escaped, the slashes kept. */
export function encodeFilePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The versions to compare by default: the one before the newest, and the newest. */
export function defaultDiffPair(versions: IDatasetVersion[]): [string, string] | null {
  if (versions.length < 2) {
    return null;
  }
  const sorted = [...versions].sort((a, b) => b.version - a.version);
  return [`v${sorted[1].version}`, `v${sorted[0].version}`];
}

/** One changed file of a diff. */
export interface IFileChange {
  change: 'added' | 'removed' | 'modified';
  path: string;
  /** sizes, e.g. "1.0 KiB" or "1.0 KiB → 2.0 KiB" */
  detail: string;
}

/** The changed files of a diff, sorted by path. */
export function fileChanges(diff: IDatasetDiff): IFileChange[] {
  const changes: IFileChange[] = [
    ...diff.added.map(f => ({
      change: 'added' as const,
      path: f.path,
      detail: formatBytes(f.size)
    })),
    ...diff.removed.map(f => ({
      change: 'removed' as const,
      path: f.path,
      detail: formatBytes(f.size)
    })),
    ...diff.modified.map(f => ({
      change: 'modified' as const,
      path: f.path,
      detail: `${formatBytes(f.old_size)} → ${formatBytes(f.new_size)}`
    }))
  ];
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A one-line summary: "2 files added, 1 removed, 1 modified" or "No file changed". */
export function diffSummary(diff: IDatasetDiff, trans: ITrans): string {
  const parts: string[] = [];
  if (diff.added.length) {
    parts.push(trans.__('%1 added', diff.added.length));
  }
  if (diff.removed.length) {
    parts.push(trans.__('%1 removed', diff.removed.length));
  }
  if (diff.modified.length) {
    parts.push(trans.__('%1 modified', diff.modified.length));
  }
  if (!parts.length) {
    return trans.__('v%1 → v%2: no file changed', diff.from, diff.to);
  }
  return trans.__('v%1 → v%2: files %3', diff.from, diff.to, parts.join(', '));
}

/** What changed in one CSV/Parquet file: schema lines, then the row counts. */
export function tableChanges(table: ITableDiff, trans: ITrans): string[] {
  if (table.skipped) {
    return [trans.__('not compared (%1)', table.skipped)];
  }
  if (table.error) {
    return [trans.__('could not be read as %1: %2', table.format, table.error)];
  }
  const lines: string[] = [];
  const schema = table.schema;
  if (schema) {
    for (const column of schema.added) {
      lines.push(trans.__('column added: %1', column));
    }
    for (const column of schema.removed) {
      lines.push(trans.__('column removed: %1', column));
    }
    for (const c of schema.changed) {
      lines.push(trans.__('column %1: %2 → %3', c.column, c.old_type, c.new_type));
    }
    if (!schema.added.length && !schema.removed.length && !schema.changed.length) {
      lines.push(trans.__('schema unchanged'));
    }
  }
  const rows = table.rows;
  if (rows) {
    lines.push(
      trans.__('rows: %1 → %2 (%3 added, %4 removed)', rows.old, rows.new, rows.added, rows.removed)
    );
  }
  return lines;
}

/** How to commit a first version of `name` (or NAME) in `project`: the notebook call and the
 * terminal command a user copies. */
export function commitHints(project: string, name = 'NAME'): { python: string; shell: string } {
  const quote = (text: string) => JSON.stringify(text);
  return {
    python:
      `wb.datasets.commit(${quote(name)}, "PATH", project=${quote(project)}, ` +
      'message="first version")',
    shell: `jupyter workbench datasets commit ${project}/${name} PATH -m "first version"`
  };
}
