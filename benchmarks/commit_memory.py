"""Datasets: peak Python memory and time of an update commit over a version of many files.

Builds, in a temporary folder (SQLite + local blob store), version v1 of a dataset holding
``--files`` small files (default 200,000; ``--quick``: 20,000), each one chunk of 64 bytes
(16 distinct contents, stored once). Then an update commit changing 10 files (4 replaced, 3 new,
3 deleted) goes through the upload API: ``start_upload`` declaring the 7 files put (nothing to
send: the store has their chunks), then ``finish_upload(mode="update", delete_paths=...)``,
which is what is measured: its peak traced Python memory (``tracemalloc``: the allocations of
the commit alone, the interpreter and the service excluded) and its wall time. The new version
is checked (file count, the files changed).

``--upload-files N`` also measures ``finish_upload`` of an upload declaring N new files (mode
"replace"): there every file is a changed one, so it holds the whole declared manifest.

There is no second contender in the run: the anchor is the implementation before bounded-memory
updates (commit 2994d73), measured with this script on the same machine (2 cores, shared with
a CI run, so the times are noisy), tracemalloc on (it slows Python down severalfold):

    figure                                   before (2994d73)          after
    update of 10 files over 200,000          166.7 MB peak, 176 s      1.9 MB peak, 46 s
    update of 10 files over 20,000 (--quick) 16.5 MB peak, 3.3 s       1.5 MB peak, 2.8 s
    upload commit of 20,000 declared files   20.2 MB peak, 69.5 s      20.2 MB peak, 11.0 s
    (building v1 of 200,000 files, unmeasured: 177 s before, 18 s after)

The update's memory no longer grows with the files kept (it reads the parent's a page of
``datasets.FILE_PAGE`` at a time and copies them in the database); its time is that of copying
the kept files' rows and spans, and of reading the new version's chunk list from its spans
(a page of files at a time now: it was quadratic in the files of a version on SQLite).

An upload commit still holds its whole declared manifest: it is one JSON value
(``CommitSession.files``), read whole -- loading it (the parsed JSON and its ``FileEntry``
list) is the 20.2 MB peak -- and every declared file is a changed one. Its time fell with the
verification of the declared files' digests looking their chunks up many files at once
instead of one transaction per file.

Run (from the repository root)::

    .venv/bin/python benchmarks/commit_memory.py            # 200,000 files
    .venv/bin/python benchmarks/commit_memory.py --quick    # 20,000 files
    .venv/bin/python benchmarks/commit_memory.py --quick --upload-files 20000
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from traitlets.config import Config

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.dataset_jobs import frame_chunks
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench
from jupyter_workbench.storage.chunking import blake3_hex

ALICE = Identity("alice", "Alice")
CONTENTS = [bytes([i]) * 64 for i in range(16)]  # 16 chunks, one per content


def _file(path: str, i: int) -> dict[str, Any]:
    data = CONTENTS[i % len(CONTENTS)]
    digest = blake3_hex(data)
    return {"path": path, "size": len(data), "digest": digest, "chunks": [[digest, len(data)]]}


def _path(i: int) -> str:
    return f"part-{i // 1000:04d}/file-{i:07d}.bin"


def build(service: WorkbenchService, files: int) -> None:
    """v1 of dataset 'big' with ``files`` files (the chunks stored through a small upload)."""
    service.call(ALICE, lambda s, ctx: projects.create(s, ctx, name="Lab", slug="lab"), write=True)
    seed = [_file(f"seed/{i}", i) for i in range(len(CONTENTS))]
    status = service.datasets.start_upload(ALICE, "lab", "seed", seed)
    chunks = {blake3_hex(c): c for c in CONTENTS}
    service.datasets.receive_chunks(
        ALICE, "lab", "seed", status["id"], frame_chunks(list(chunks.items()))
    )
    service.datasets.finish_upload(ALICE, "lab", "seed", status["id"])

    def publish(s: Any, ctx: Any) -> None:
        session_id = "b" * 32
        ds.begin_session(s, ctx, "lab", "big", session_id)
        entries = [
            ds.FileEntry(f["path"], f["size"], f["digest"], [tuple(c) for c in f["chunks"]])
            for f in (_file(_path(i), i) for i in range(files))
        ]
        ds.publish(s, ctx, "lab", "big", session_id, ds.Changes(put=entries, replace_all=True))

    service.call(ALICE, publish, write=True)


def measure(label: str, fn: Any) -> Any:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label}: peak traced memory {peak / 1e6:8.2f} MB, time {seconds:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200_000, help="files of the parent version")
    parser.add_argument("--quick", action="store_true", help="20,000 files")
    parser.add_argument("--upload-files", type=int, default=0, help="also: a replace upload")
    parser.add_argument("--dir", default=None, help="where the temporary folder goes")
    args = parser.parse_args()
    files = 20_000 if args.quick else args.files
    root = Path(tempfile.mkdtemp(prefix="wb-commit-memory-", dir=args.dir))
    config = {"database_url": f"sqlite:///{root / 'wb.db'}", "data_dir": str(root / "data")}
    service = WorkbenchService(Workbench(config=Config({"Workbench": config})))
    try:
        started = time.perf_counter()
        build(service, files)
        print(f"built v1 of {files:,} files in {time.perf_counter() - started:.1f} s")
        put = [_file(_path(i), i + 1) for i in (0, files // 3, files // 2, files - 1)]
        put += [_file(f"new/{i}.bin", i) for i in range(3)]
        deleted = [_path(i) for i in (1, files // 4, files - 2)]
        status = service.datasets.start_upload(ALICE, "lab", "big", put)
        assert status["missing"] == []
        result = measure(
            f"update of 10 files over {files:,}",
            lambda: service.datasets.finish_upload(
                ALICE, "lab", "big", status["id"], mode="update", delete_paths=deleted
            ),
        )
        assert result.version["version"] == 2
        assert result.version["file_count"] == files + 3 - 3, result.version
        if args.upload_files:
            declared = [_file(f"up/{i:07d}", i) for i in range(args.upload_files)]
            status = service.datasets.start_upload(ALICE, "lab", "up", declared)
            result = measure(
                f"upload commit of {args.upload_files:,} declared files",
                lambda: service.datasets.finish_upload(ALICE, "lab", "up", status["id"]),
            )
            assert result.version["file_count"] == args.upload_files
    finally:
        service.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
