"""Ranged reads of a file of very many chunks: finding the chunks a range needs.

A file of ``--chunks`` chunks (default 1,500,000: 100 GB at 64 KiB each) is written to a fresh
SQLite database the way a commit writes it (its row and its spans, where its chunk list lives).
Then ``--reads`` ranges of 1 MiB at random places are resolved to their chunks:

- old: read the file's whole chunk list (every span, ``chunk_lists``) and walk it (what a
  ranged GET did before 0011, when the list was a column of the file's row);
- ours: ``chunks_in_range`` over the spans holding the range.

It prints the median milliseconds per range of each and their ratio. No bytes are read: the
store's part is the same for both.

    python benchmarks/range_bench.py [--chunks N] [--reads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.db.bulk import insert_many
from jupyter_workbench.db.database import Database
from jupyter_workbench.db.models import (
    Dataset,
    DatasetFile,
    DatasetFileSpan,
    DatasetVersion,
    Project,
)

CHUNK = 64 * 1024


def old_way(s: Session, file_id: int, start: int, end: int) -> list[tuple[str, int]]:
    out, position = [], 0
    for digest, length in ds.chunk_lists(s, [file_id])[file_id]:
        if position + length > start and position < end:
            out.append((digest, length))
        position += length
        if position >= end:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1_500_000)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.migrate()
        chunks = [(f"{i:064x}", CHUNK) for i in range(args.chunks)]
        size = CHUNK * args.chunks
        with db.transaction(write=True) as s:
            project = Project(slug="p", name="P")
            s.add(project)
            s.flush()
            dataset = Dataset(project_id=project.id, name="d")
            s.add(dataset)
            s.flush()
            version = DatasetVersion(dataset_id=dataset.id, version=1)
            s.add(version)
            s.flush()
            row = DatasetFile(
                version_id=version.id,
                path="big",
                size=size,
                digest="0" * 64,
                chunk_count=len(chunks),
            )
            s.add(row)
            s.flush()
            file_id = row.id
            spans = list(ds.span_rows(file_id, chunks))
            insert_many(s, DatasetFileSpan.__table__, spans)  # type: ignore[arg-type]
        del chunks
        rng = random.Random(7)
        starts = [rng.randrange(0, size - 2**20) for _ in range(args.reads)]
        timings: dict[str, list[float]] = {"old": [], "ours": []}
        for start in starts:
            end = start + 2**20
            with db.transaction() as s:
                began = time.perf_counter()
                old = old_way(s, file_id, start, end)
                timings["old"].append(time.perf_counter() - began)
            with db.transaction() as s:
                began = time.perf_counter()
                _first, ours = ds.chunks_in_range(s, file_id, start, end)
                timings["ours"].append(time.perf_counter() - began)
            assert old == ours[: len(old)] and len(ours) == len(old)
        with db.transaction() as s:
            assert s.scalar(select(DatasetFile.size).where(DatasetFile.id == file_id)) == size
        db.dispose()
    old_ms = statistics.median(timings["old"]) * 1000
    ours_ms = statistics.median(timings["ours"]) * 1000
    print(
        f"file of {args.chunks:,} chunks ({size / 1e9:.0f} GB), "
        f"1 MiB ranges, median of {args.reads}"
    )
    print(f"  old (whole chunk list): {old_ms:9.2f} ms/range")
    print(f"  ours (spans)          : {ours_ms:9.2f} ms/range   ({old_ms / ours_ms:,.0f}x faster)")


if __name__ == "__main__":
    main()
