"""Update commits over many parent files: read and copied a page at a time (``FILE_PAGE``), they
make exactly the version the whole-manifest computation makes (files, spans, chunks, digest),
whatever the page size, across page edges; and refuse the same clashes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import projects
from jupyter_workbench.core.errors import BadRequest
from jupyter_workbench.dataset_jobs import frame_chunks
from jupyter_workbench.db.models import (
    AuditEvent,
    DatasetFile,
    DatasetFileSpan,
    DatasetVersion,
    VersionChunk,
)
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.storage.chunking import blake3_hex

from ..conftest import ident

CONTENTS = [bytes([i]) * (10 + i) for i in range(12)]
CHUNKS = [(blake3_hex(c), len(c)) for c in CONTENTS]
FILES = 3000


def _entry(path: str, i: int, *, pieces: int = 1, kind: str = "application/octet-stream") -> Any:
    chunks = [CHUNKS[(i + k) % len(CHUNKS)] for k in range(pieces)]
    digest = blake3_hex(f"{path}:{i}:{pieces}".encode())  # (never read back by these tests)
    return ds.FileEntry(path, sum(n for _, n in chunks), digest, chunks, kind)


def _path(i: int) -> str:
    return f"d{i // 100:02d}/f{i:05d}"


@pytest.fixture
def lab(
    service: WorkbenchService, call: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, ds.FileEntry]:
    """Dataset 'big' v1: FILES files (every 7th of 3 chunks, in 2 spans), plus 'd05/café';
    returns them."""
    monkeypatch.setattr(ds, "SPAN_CHUNKS", 2)
    call("alice", lambda s, ctx: projects.create(s, ctx, name="Lab", slug="lab"))
    alice = ident("alice")
    seed = [
        {"path": f"seed/{i}", "size": n, "digest": d, "chunks": [[d, n]]}
        for i, (d, n) in enumerate(CHUNKS)
    ]
    status = service.datasets.start_upload(alice, "lab", "seed", seed)
    service.datasets.receive_chunks(
        alice,
        "lab",
        "seed",
        status["id"],
        frame_chunks(list(zip([d for d, _ in CHUNKS], CONTENTS, strict=True))),
    )
    service.datasets.finish_upload(alice, "lab", "seed", status["id"])
    files = [_entry(_path(i), i, pieces=3 if i % 7 == 0 else 1) for i in range(FILES)]
    files.append(_entry("d05/caf\u00e9", 5))
    _commit(call, ds.Changes(put=files, replace_all=True))
    return {e.path: e for e in files}


def _commit(call: Callable[..., Any], changes: ds.Changes, parent: str | None = None) -> Any:
    def work(s: Any, ctx: Any) -> tuple[int, bool]:
        session_id = uuid.uuid4().hex
        ds.begin_session(s, ctx, "lab", "big", session_id)
        published = ds.publish(s, ctx, "lab", "big", session_id, changes, parent=parent)
        return published.version.version, published.created

    return call("alice", work)


def _stored(call: Callable[..., Any], number: int) -> dict[str, Any]:
    """Everything a version is made of, as rows read back (ids left out)."""

    def work(s: Any, ctx: Any) -> dict[str, Any]:
        version = s.scalar(
            select(DatasetVersion)
            .where(DatasetVersion.version == number)
            .join(ds.Dataset, ds.Dataset.id == DatasetVersion.dataset_id)
            .where(ds.Dataset.name == "big")
        )
        files = {
            row.path: (row.size, row.digest, row.media_type, row.chunk_count)
            for row in s.scalars(select(DatasetFile).where(DatasetFile.version_id == version.id))
        }
        spans: dict[str, list[Any]] = {}
        for path, first, nbytes, chunks in s.execute(
            select(DatasetFile.path, DatasetFileSpan.first_byte, DatasetFileSpan.nbytes,
                   DatasetFileSpan.chunks)
            .join(DatasetFile, DatasetFile.id == DatasetFileSpan.file_id)
            .where(DatasetFile.version_id == version.id)
            .order_by(DatasetFile.path, DatasetFileSpan.first_byte)
        ):  # fmt: skip
            spans.setdefault(path, []).append((first, nbytes, [tuple(c) for c in chunks]))
        needed = set(
            s.scalars(
                select(VersionChunk.chunk_digest).where(VersionChunk.version_id == version.id)
            )
        )
        audit = s.scalars(
            select(AuditEvent.summary)
            .where(AuditEvent.action == "dataset.commit")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one()
        return {
            "row": (version.file_count, version.total_bytes, version.manifest_digest),
            "files": files,
            "spans": spans,
            "chunks": needed,
            "audit": audit,
        }

    return call("alice", work)


def _expected(entries: dict[str, ds.FileEntry], number: int, parent: int) -> dict[str, Any]:
    """The version the whole-manifest computation makes of ``entries``."""
    manifest = sorted(entries.values(), key=lambda e: e.path)
    spans = {
        e.path: [
            (r["first_byte"], r["nbytes"], [tuple(c) for c in r["chunks"]])
            for r in ds.span_rows(0, e.chunks)
        ]
        for e in manifest
        if e.chunks
    }
    total = sum(e.size for e in manifest)
    return {
        "row": (len(manifest), total, ds.manifest_digest(manifest)),
        "files": {e.path: (e.size, e.digest, e.media_type, len(e.chunks)) for e in manifest},
        "spans": spans,
        "chunks": {d for e in manifest for d, _ in e.chunks},
        "audit": {"version": number, "parent": parent, "files": len(manifest), "bytes": total},
    }


# (a page of all files is what every smaller dataset of the suite commits)
@pytest.mark.parametrize("page", [7, 100])
def test_an_update_over_many_files_is_the_same_version_at_any_page_size(
    lab: dict[str, ds.FileEntry],
    call: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    page: int,
) -> None:
    monkeypatch.setattr(ds, "FILE_PAGE", page)
    assert _stored(call, 1) == {**_expected(lab, 1, None), "audit": _stored(call, 1)["audit"]}
    # deletes and replacements on the edges of pages of 7 and of 100, new paths between them,
    # before the first and after the last
    deleted = [_path(i) for i in (0, 6, 7, 99, 100, 2999)]
    put = [_entry(_path(i), i + 1, pieces=4, kind="text/csv") for i in (13, 14, 199, 200, 1500)]
    put += [_entry(p, 3) for p in ("a-first", _path(99) + "a", "d01/f00100-", "zz/last")]
    put.append(_entry("d05/caf\u00e9", 9, kind="text/plain"))  # replaced: same path
    assert _commit(call, ds.Changes(put=put, delete=deleted)) == (2, True)
    entries = {p: e for p, e in lab.items() if p not in deleted} | {e.path: e for e in put}
    assert _stored(call, 2) == _expected(entries, 2, 1)
    # the same files again: no new version (checked without reading the kept files)
    assert _commit(call, ds.Changes(put=put[:2])) == (2, False)
    # one media type changed is a new version
    changed = ds.FileEntry(**{**put[0].__dict__, "media_type": "text/plain"})
    assert _commit(call, ds.Changes(put=[changed])) == (3, True)
    # on v2 again, the same change: v3's files, from another parent (kept media types compared)
    assert _commit(call, ds.Changes(put=[changed]), parent="v2") == (3, False)
    # on v1, v3's files but one media type of a kept file: a new version
    assert _commit(call, ds.Changes(put=put, delete=deleted), parent="v1") == (4, True)
    assert _stored(call, 4) == _expected(entries, 4, 1)
    # deleting every file but those put
    everything = [p for p in entries if p not in {e.path for e in put}]
    assert _commit(call, ds.Changes(put=put, delete=everything)) == (5, True)
    assert _stored(call, 5) == _expected({e.path: e for e in put}, 5, 4)


# (put, delete, the refusal's message or None when the commit is accepted)
CLASHES: list[tuple[list[str], list[str], str | None]] = [
    # a kept file on a page edge is the folder of a file put
    ([_path(300) + "/inner"], [], "path: 'd03/f00300' is both a file and a folder (of "),
    # a file put is the folder of kept files (the first of them named)
    (["d04"], [], "path: 'd04' is both a file and a folder (of 'd04/f00400')"),
    # ... not once they are deleted
    (["d29"], [_path(i) for i in range(2900, 3000)], None),
    (["d05/cafe\u0301"], [], "path: 'd05/cafe\u0301' and 'd05/caf\u00e9' differ only in Unicode"),
    (["d05/cafe\u0301"], ["d05/caf\u00e9"], None),
    (["x"], ["nope"], "delete: 'nope' is not in the parent version"),
    (["x"], ["../up"], "delete: '../up' has an empty, '.' or '..' component"),
]


def test_an_update_over_many_files_refuses_clashes_with_kept_files(
    lab: dict[str, ds.FileEntry], call: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every case on v1 (one dataset of many files for them all: it takes a while to build)."""
    monkeypatch.setattr(ds, "FILE_PAGE", 100)
    made = 1
    for put, delete, message in CLASHES:
        changes = ds.Changes(put=[_entry(p, 1) for p in put], delete=delete)
        if message is None:
            made += 1
            assert _commit(call, changes, parent="v1") == (made, True), (put, delete)
            continue
        with pytest.raises(BadRequest) as err:
            _commit(call, changes, parent="v1")
        assert err.value.message.startswith(message), (put, delete, err.value.message)
