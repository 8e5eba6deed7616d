"""Differences between two dataset versions: files, and for CSV/Parquet tables also the schema
and the rows added and removed (a multiset comparison of row hashes, streamed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .datasets import FileEntry

TABLE_TYPES = {"text/csv": "csv", "application/vnd.apache.parquet": "parquet"}
CSV_BLOCK_ROWS = 200_000


def table_kind(media_type: str) -> str | None:
    """'csv' or 'parquet' for a table's media type, whatever its parameters and letter case."""
    return TABLE_TYPES.get(media_type.partition(";")[0].strip().lower())


def diff_manifests(old: list[FileEntry], new: list[FileEntry]) -> dict[str, list[dict[str, Any]]]:
    """Paths added, removed and modified (by whole-file digest), with sizes."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    added = [{"path": p, "size": after[p].size} for p in sorted(after.keys() - before.keys())]
    removed = [{"path": p, "size": before[p].size} for p in sorted(before.keys() - after.keys())]
    modified = [
        {"path": p, "old_size": before[p].size, "new_size": after[p].size}
        for p in sorted(before.keys() & after.keys())
        if before[p].digest != after[p].digest
    ]
    return {"added": added, "removed": removed, "modified": modified}


def _csv_batches(stream: BinaryIO) -> tuple[list[str], Iterator[Any]]:
    import pandas as pd

    reader = pd.read_csv(
        stream, dtype=str, keep_default_na=False, chunksize=CSV_BLOCK_ROWS, engine="c"
    )
    first = next(reader, None)
    if first is None:  # pragma: no cover - pandas raises EmptyDataError first
        return [], iter(())
    columns = [str(c) for c in first.columns]

    def batches() -> Iterator[Any]:
        yield first
        yield from reader

    return columns, batches()


def _table_fingerprint(kind: str, stream: BinaryIO) -> tuple[dict[str, str], Any]:
    """Column name -> type, and the sorted uint64 hashes of every row."""
    import numpy as np
    import pandas as pd

    hashes = []
    if kind == "csv":
        try:
            names, batches = _csv_batches(stream)
        except pd.errors.EmptyDataError:
            return {}, np.empty(0, dtype=np.uint64)
        schema = {name: "string" for name in names}
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(stream)
        schema = {f.name: str(f.type) for f in parquet.schema_arrow}
        batches = (b.to_pandas() for b in parquet.iter_batches(batch_size=CSV_BLOCK_ROWS))
    for frame in batches:
        hashes.append(pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64))
    rows = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    rows.sort()
    return schema, rows


def _multiset_excess(a: Any, b: Any) -> int:
    """How many rows of ``a`` are not matched by a row of ``b`` (both sorted)."""
    import numpy as np

    if len(a) == 0:
        return 0
    keys_a, counts_a = np.unique(a, return_counts=True)
    keys_b, counts_b = np.unique(b, return_counts=True)
    idx = np.searchsorted(keys_b, keys_a)
    idx_clipped = np.minimum(idx, max(len(keys_b) - 1, 0))
    present = (idx < len(keys_b)) & (keys_b[idx_clipped] == keys_a) if len(keys_b) else idx < 0
    matched = np.where(present, counts_b[idx_clipped] if len(keys_b) else 0, 0)
    return int(np.maximum(counts_a - matched, 0).sum())


def table_diff(kind: str, old: BinaryIO | None, new: BinaryIO | None) -> dict[str, Any]:
    """Schema change and row counts of one table file between two versions."""
    old_schema, old_rows = _table_fingerprint(kind, old) if old else ({}, None)
    new_schema, new_rows = _table_fingerprint(kind, new) if new else ({}, None)
    import numpy as np

    empty = np.empty(0, dtype=np.uint64)
    old_rows = empty if old_rows is None else old_rows
    new_rows = empty if new_rows is None else new_rows
    return {
        "format": kind,
        "schema": {
            "added": [c for c in new_schema if c not in old_schema],
            "removed": [c for c in old_schema if c not in new_schema],
            "changed": [
                {"column": c, "old_type": old_schema[c], "new_type": new_schema[c]}
                for c in new_schema
                if c in old_schema and old_schema[c] != new_schema[c]
            ],
            "columns": list(new_schema or old_schema),
        },
        "rows": {
            "old": len(old_rows),
            "new": len(new_rows),
            "added": _multiset_excess(new_rows, old_rows),
            "removed": _multiset_excess(old_rows, new_rows),
        },
    }


def diff_versions(
    old: list[FileEntry],
    new: list[FileEntry],
    open_file: Callable[[FileEntry], BinaryIO],
    *,
    table_limit_bytes: int,
    max_tables: int,
) -> dict[str, Any]:
    """Files added/removed/modified, plus table diffs for changed CSV and Parquet files (the
    first ``max_tables`` by path; the others are listed as skipped)."""
    result: dict[str, Any] = diff_manifests(old, new)
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    tables = []
    compared = 0
    candidates = [
        (before.get(p), after.get(p))
        for p in sorted(before.keys() | after.keys())
        if before.get(p) is None or after.get(p) is None or before[p].digest != after[p].digest
    ]
    for a, b in candidates:
        entry = b or a
        assert entry is not None
        kind = table_kind(entry.media_type)
        if kind is None:
            continue
        biggest = max(a.size if a else 0, b.size if b else 0)
        if biggest > table_limit_bytes:
            tables.append({"path": entry.path, "format": kind, "skipped": "too large"})
            continue
        if compared >= max_tables:
            skipped = f"more than {max_tables} changed tables"
            tables.append({"path": entry.path, "format": kind, "skipped": skipped})
            continue
        compared += 1
        try:
            diff = table_diff(kind, open_file(a) if a else None, open_file(b) if b else None)
        except Exception as exc:  # a file that is not really a table: say so, do not fail
            tables.append({"path": entry.path, "format": kind, "error": str(exc)[:300]})
            continue
        tables.append({"path": entry.path, **diff})
    result["tables"] = tables
    result["summary"] = {
        "added": len(result["added"]),
        "removed": len(result["removed"]),
        "modified": len(result["modified"]),
        "bytes_added": sum(f["size"] for f in result["added"]),
        "bytes_removed": sum(f["size"] for f in result["removed"]),
    }
    return result
