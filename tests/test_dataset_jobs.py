"""Dataset commits, reads, diffs, uploads, verification and garbage collection, end to end
through the chunk store (local folder and S3 via moto; SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import io
import os
import random
import tarfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from traitlets.config import Config

from jupyter_workbench import dataset_jobs
from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import operations, projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from jupyter_workbench.dataset_jobs import Cancelled, frame_chunks
from jupyter_workbench.db.models import (
    AuditEvent,
    BlobChunk,
    BlobPack,
    CommitSession,
    Dataset,
    SessionChunk,
    SessionPack,
)
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench
from jupyter_workbench.storage import chunk_bytes

from .conftest import storage_config

ALICE = Identity("alice", "Alice")
BOB = Identity("bob", "Bob")


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.fixture
def make_service(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., WorkbenchService]]:
    made: list[WorkbenchService] = []

    def make(storage: str = "local", **overrides: Any) -> WorkbenchService:
        config = {
            "database_url": db_url,
            "data_dir": str(tmp_path / "data"),
            "pack_target_mib": 1,
            **storage_config(storage, request, tmp_path),
            **overrides,
        }
        service = WorkbenchService(Workbench(config=Config({"Workbench": config})))
        made.append(service)
        service.call(
            ALICE,
            lambda s, ctx: (
                projects.create(s, ctx, name="Lab", slug="lab")
                if not s.scalar(select(func.count()).select_from(projects.Project))
                else None
            ),
            write=True,
        )
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture(params=["local", "s3"])
def service(
    request: pytest.FixtureRequest, make_service: Callable[..., WorkbenchService]
) -> WorkbenchService:
    return make_service(request.param)


def read_file(service: WorkbenchService, ref: str, path: str, dataset: str = "events") -> bytes:
    _n, entry = service.datasets.file_entry(ALICE, "lab", dataset, ref, path)
    return b"".join(service.datasets.store.read_range(entry.chunks))


def csv_rows(n: int, start: int = 0) -> bytes:
    return b"id,name,score\n" + b"".join(
        f"{i},name{i},{i % 97}\n".encode() for i in range(start, start + n)
    )


def test_commit_read_back_byte_identical(service: WorkbenchService, tmp_path: Path) -> None:
    big = random.Random(1).randbytes(3 * 1024 * 1024 + 17)
    src = write_tree(tmp_path / "src", {"data/big.bin": big, "a.csv": csv_rows(100), "empty": b""})
    result = service.datasets.commit_folder(ALICE, "lab", "events", src, message="first")
    assert result.version["version"] == 1 and result.version["file_count"] == 3
    assert result.bytes_new == len(big) + len(csv_rows(100))
    assert read_file(service, "v1", "data/big.bin") == big
    assert read_file(service, "latest", "a.csv") == csv_rows(100)
    assert read_file(service, "1", "empty") == b""
    _n, entry = service.datasets.file_entry(ALICE, "lab", "events", "v1", "data/big.bin")
    # ranged reads across chunk boundaries fetch exactly those bytes
    for start, end in [(0, 1), (65_000, 300_000), (len(big) - 5, len(big)), (1_000_000, 1_000_001)]:
        assert (
            b"".join(service.datasets.store.read_range(entry.chunks, start, end)) == big[start:end]
        )


def test_tar_stream_holds_every_file(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    files = {"x/1.txt": b"one", "x/2.bin": os.urandom(200_000), "top.md": b"# hi"}
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", files))
    _number, entries = service.datasets.version_entries(ALICE, "lab", "events", "v1")
    from jupyter_workbench.dataset_jobs import tar_stream

    archive = b"".join(tar_stream(service.datasets.store, entries, "events-v1"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert got == {f"events-v1/{k}": v for k, v in files.items()}


def test_second_version_stores_only_changed_chunks(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    rng = random.Random(7)
    big = bytearray(rng.randbytes(8 * 1024 * 1024))
    src = write_tree(tmp_path / "src", {"big.bin": bytes(big), "table.csv": csv_rows(20_000)})
    first = service.datasets.commit_folder(ALICE, "lab", "events", src)
    big[4_000_000:4_000_010] = b"0123456789"  # a small edit in the middle
    write_tree(src, {"big.bin": bytes(big), "table.csv": csv_rows(20_100)})  # rows appended
    second = service.datasets.commit_folder(ALICE, "lab", "events", src, message="edit")
    assert second.version["parent"] == 1
    assert second.bytes_new < 0.05 * first.bytes_new, (second.bytes_new, first.bytes_new)
    assert read_file(service, "v2", "big.bin") == bytes(big)
    diff = service.datasets.diff(ALICE, "lab", "events", "v1", "v2")
    assert [m["path"] for m in diff["modified"]] == ["big.bin", "table.csv"]
    table = next(t for t in diff["tables"] if t["path"] == "table.csv")
    assert table["rows"] == {"old": 20_000, "new": 20_100, "added": 100, "removed": 0}
    assert table["schema"]["added"] == [] and table["schema"]["columns"] == ["id", "name", "score"]


def test_parquet_diff_reports_schema_and_rows(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    import pandas as pd

    service = make_service()
    src = tmp_path / "src"
    src.mkdir()
    frame = pd.DataFrame({"id": range(1000), "value": [float(i) for i in range(1000)]})
    frame.to_parquet(src / "t.parquet", index=False)
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    changed = frame.drop(index=[3, 4]).assign(flag=True)
    changed.loc[10, "value"] = -1.0
    changed.to_parquet(src / "t.parquet", index=False)
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    table = service.datasets.diff(ALICE, "lab", "events", "v1", "v2")["tables"][0]
    assert table["format"] == "parquet"
    assert table["schema"]["added"] == ["flag"]
    # every row changed (new column), so all old rows are removed and all new ones added
    assert table["rows"]["old"] == 1000 and table["rows"]["new"] == 998


def test_a_diff_compares_the_first_tables_row_by_row_and_lists_the_others(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service(table_diff_max_files=2, table_diff_max_bytes=5_000)
    files = {f"t{i}.csv": csv_rows(10) for i in range(4)} | {"big.csv": csv_rows(600)}
    src = write_tree(tmp_path / "src", files)
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    write_tree(src, {f"t{i}.csv": csv_rows(11) for i in range(4)} | {"big.csv": csv_rows(601)})
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    tables = service.datasets.diff(ALICE, "lab", "events", "v1", "v2")["tables"]
    assert [(t["path"], t.get("skipped")) for t in tables] == [
        ("big.csv", "too large"),  # (not counted)
        ("t0.csv", None),
        ("t1.csv", None),
        ("t2.csv", "more than 2 changed tables"),
        ("t3.csv", "more than 2 changed tables"),
    ]
    assert tables[1]["rows"] == {"old": 10, "new": 11, "added": 1, "removed": 0}


def test_update_mode_keeps_parent_files(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "a", {"keep": b"k", "old": b"o"})
    )
    service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "b", {"old": b"new"}), mode="update"
    )
    _n, entries = service.datasets.version_entries(ALICE, "lab", "events", "latest")
    assert {e.path for e in entries} == {"keep", "old"}
    assert read_file(service, "v2", "old") == b"new"


def test_two_commits_on_one_parent_both_land_or_strict_gets_409(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "a", {"f": b"1"}))
    service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "b", {"f": b"2"}), parent="v1"
    )
    third = service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "c", {"f": b"3"}), parent="v1"
    )
    assert third.version["version"] == 3 and third.version["parent"] == 1
    with pytest.raises(Conflict) as err:
        service.datasets.commit_folder(
            ALICE,
            "lab",
            "events",
            write_tree(tmp_path / "d", {"f": b"4"}),
            parent="v1",
            strict_parent=True,
        )
    assert err.value.code == "stale_parent"
    assert (
        service.call(
            ALICE,
            lambda s, ctx: (
                ds.get(s, ctx, "lab", "events")[1].id
                and ds.latest(s, ds.get(s, ctx, "lab", "events")[1]).version
            ),
            write=False,
        )
        == 3
    )


def test_a_failed_folder_commit_is_audited_as_an_abandoned_upload(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    """A server-side folder commit that fails ends its session as a refused upload commit
    does: audited as dataset.upload_abandon with the error's code as the reason (it was ended
    without a trace)."""
    service = make_service()
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "a", {"f": b"1"}))
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "b", {"f": b"2"}))
    with pytest.raises(Conflict) as err:
        service.datasets.commit_folder(
            ALICE, "lab", "events", write_tree(tmp_path / "c", {"f": b"3"}),
            parent="v1", strict_parent=True,
        )  # fmt: skip
    assert err.value.code == "stale_parent"
    with service.db.transaction() as s:
        states = s.execute(select(CommitSession.state, CommitSession.id)).all()
        assert sorted(state for state, _id in states) == ["aborted", "published", "published"]
        aborted = next(i for state, i in states if state == "aborted")
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "dataset.upload_abandon")
        ).all()
        assert [(e.object_id, e.actor_name, e.project_slug, e.summary) for e in events] == [
            (
                "events",
                "alice",
                "lab",
                {"upload": aborted, "kind": "commit", "reason": "stale_parent"},
            )
        ]


def test_an_update_keeps_one_length_for_each_chunk_with_the_files_it_keeps(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    """An update commit copies the files it keeps without reading their chunk lists; a new
    file naming one of their chunks with another length was published. It is refused (400,
    naming the chunk), and nothing is published."""
    service = make_service()
    service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "a", {"keep": b"hello"})
    )
    _n, kept = service.datasets.file_entry(ALICE, "lab", "events", "v1", "keep")
    [(chunk, length)] = kept.chunks
    assert length == 5
    liar = ds.FileEntry("new", 7, "0" * 64, [(chunk, 7)])

    def commit(s: Any, ctx: Any) -> Any:
        ds.begin_session(s, ctx, "lab", "events", "liar")
        return ds.publish(s, ctx, "lab", "events", "liar", ds.Changes(put=[liar]))

    with pytest.raises(BadRequest) as err:
        service.call(ALICE, commit, write=True)
    assert err.value.code == "chunk_length_mismatch" and chunk in str(err.value)
    assert "7" in str(err.value) and "5" in str(err.value)
    _n, entries = service.datasets.version_entries(ALICE, "lab", "events", "latest")
    assert _n == 1 and [e.path for e in entries] == ["keep"]
    # the same chunk with its own length is fine
    honest = ds.FileEntry("new", 5, kept.digest, [(chunk, 5)])

    def commit_honest(s: Any, ctx: Any) -> Any:
        ds.begin_session(s, ctx, "lab", "events", "honest")
        return ds.publish(s, ctx, "lab", "events", "honest", ds.Changes(put=[honest]))

    assert service.call(ALICE, commit_honest, write=True).version.version == 2


def _counts(service: WorkbenchService) -> tuple[int, int]:
    with service.db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(BlobChunk)) or 0,
            s.scalar(select(func.count()).select_from(BlobPack)) or 0,
        )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bad\x01name.txt", "control character"),
        ("back\\slash", "backslash"),
        # a Latin-1 name on a UTF-8 system: Python reads it with a lone surrogate
        ("caf\udce9.txt", "not UTF-8"),
    ],
)
def test_bad_file_names_are_refused_before_anything_is_stored(
    make_service: Callable[..., WorkbenchService], tmp_path: Path, name: str, problem: str
) -> None:
    service = make_service()
    src = write_tree(tmp_path / "src", {"ok.txt": b"fine", name: b"x"})
    with pytest.raises(BadRequest) as err:
        service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert problem in err.value.message
    assert _counts(service) == (0, 0)


def test_symlink_leaving_the_folder_is_refused(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret")
    src = write_tree(tmp_path / "src", {"ok.txt": b"fine"})
    (src / "link.txt").symlink_to(outside)
    with pytest.raises(BadRequest) as err:
        service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert "leaves the folder" in err.value.message
    (src / "link.txt").unlink()
    (src / "inner.txt").symlink_to(src / "ok.txt")  # a link inside the folder is its content
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert read_file(service, "v1", "inner.txt") == b"fine"


def test_an_empty_folder_is_refused_before_anything_is_stored(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # folders, but not one file
    with pytest.raises(BadRequest) as err:
        service.datasets.commit_folder(ALICE, "lab", "events", tmp_path / "empty")
    assert "has no files" in err.value.message
    # no empty version was made: the next commit is the first
    done = service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "s", {"f": b"1"})
    )
    assert done.version["version"] == 1


def test_size_limit(make_service: Callable[..., WorkbenchService], tmp_path: Path) -> None:
    service = make_service(max_dataset_commit_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        service.datasets.commit_folder(
            ALICE, "lab", "events", write_tree(tmp_path / "s", {"a": b"x" * 1001})
        )
    assert _counts(service) == (0, 0)


def _declare(files: dict[str, bytes]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    declared, chunks = [], {}
    for path, data in files.items():
        pieces: list[tuple[str, int]] = []

        def keep(chunk: Any, pieces: list[tuple[str, int]] = pieces) -> None:
            pieces.append((chunk.digest, chunk.length))
            chunks[chunk.digest] = bytes(chunk.data)

        digest = chunk_bytes(data, on_chunk=keep)
        declared.append(
            {
                "path": path,
                "size": digest.size,
                "digest": digest.digest,
                "chunks": [[d, n] for d, n in pieces],
            }
        )
    return declared, chunks


def test_resumable_upload_with_a_corrupt_batch(service: WorkbenchService) -> None:
    payload = {"a/one.bin": os.urandom(700_000), "two.txt": b"hello world"}
    declared, chunks = _declare(payload)
    status = service.datasets.start_upload(ALICE, "lab", "events", declared)
    assert set(status["missing"]) == set(chunks)
    missing = status["missing"]
    half = missing[: len(missing) // 2]
    stored = service.datasets.receive_chunks(
        ALICE, "lab", "events", status["id"], frame_chunks([(d, chunks[d]) for d in half])
    )
    assert stored["stored"] == len(half)
    # the connection drops; the client asks what is still missing
    again = service.datasets.upload_status(ALICE, "lab", "events", status["id"])
    assert set(again["missing"]) == set(missing) - set(half)
    rest = again["missing"]
    bad = [(d, chunks[d]) for d in rest]
    bad[0] = (bad[0][0], bytes([bad[0][1][0] ^ 0xFF]) + bad[0][1][1:])  # always a change
    with pytest.raises(BadRequest) as err:
        service.datasets.receive_chunks(ALICE, "lab", "events", status["id"], frame_chunks(bad))
    assert err.value.code == "chunk_digest_mismatch"
    assert set(
        service.datasets.upload_status(ALICE, "lab", "events", status["id"])["missing"]
    ) == set(rest)
    with pytest.raises(Conflict) as incomplete:
        service.datasets.finish_upload(ALICE, "lab", "events", status["id"])
    assert incomplete.value.code == "incomplete_upload"
    service.datasets.receive_chunks(
        ALICE, "lab", "events", status["id"], frame_chunks([(d, chunks[d]) for d in rest])
    )
    result = service.datasets.finish_upload(
        ALICE, "lab", "events", status["id"], message="uploaded"
    )
    assert result.version["file_count"] == 2
    assert read_file(service, "v1", "a/one.bin") == payload["a/one.bin"]
    # the same content again: nothing to send
    status = service.datasets.start_upload(ALICE, "lab", "events", declared)
    assert status["missing"] == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../escape", "invalid_path"),
        ("/etc/passwd", "invalid_path"),
        ("a\\b", "invalid_path"),
        ("nul\x00byte", "invalid_path"),
        ("", "invalid_path"),
        ("a//b", "invalid_path"),
    ],
)
def test_upload_manifest_path_checks(
    make_service: Callable[..., WorkbenchService], path: str, code: str
) -> None:
    service = make_service()
    declared, _ = _declare({"x": b"data"})
    declared[0]["path"] = path
    with pytest.raises(BadRequest) as err:
        service.datasets.start_upload(ALICE, "lab", "events", declared)
    assert err.value.code == code


def test_upload_manifest_duplicates_and_lies(make_service: Callable[..., WorkbenchService]) -> None:
    service = make_service()
    declared, _ = _declare({"x": b"data"})
    with pytest.raises(BadRequest) as err:
        service.datasets.start_upload(ALICE, "lab", "events", declared + declared)
    assert err.value.code == "duplicate_path"
    declared[0]["size"] = 99
    with pytest.raises(BadRequest) as err:
        service.datasets.start_upload(ALICE, "lab", "events", declared)
    assert err.value.code == "invalid_manifest"
    # a file digest that does not match its chunks is caught at commit, nothing published
    declared, chunks = _declare({"y": b"other data"})
    declared[0]["digest"] = "0" * 64
    status = service.datasets.start_upload(ALICE, "lab", "events", declared)
    service.datasets.receive_chunks(
        ALICE, "lab", "events", status["id"], frame_chunks(list(chunks.items()))
    )
    with pytest.raises(BadRequest) as err:
        service.datasets.finish_upload(ALICE, "lab", "events", status["id"])
    assert err.value.code == "digest_mismatch"
    with pytest.raises(NotFound):
        service.datasets.version_entries(ALICE, "lab", "events", "v1")


def test_verify_finds_corrupt_and_missing_chunks(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    service.datasets.commit_folder(
        ALICE, "lab", "events", write_tree(tmp_path / "s", {"f.bin": os.urandom(500_000)})
    )
    assert service.datasets.verify_version(ALICE, "lab", "events", "v1")["ok"]
    assert service.datasets.verify_store()["ok"]
    packs = list((tmp_path / "blobs" / "packs").rglob("*.pack"))
    assert len(packs) == 1
    raw = bytearray(packs[0].read_bytes())
    raw[1000] ^= 0xFF
    packs[0].write_bytes(bytes(raw))
    report = service.datasets.verify_version(ALICE, "lab", "events", "v1")
    assert not report["ok"] and report["problems"][0]["problem"] == "corrupt chunk"
    store = service.datasets.verify_store()
    assert len(store["corrupt_chunks"]) == 1
    assert store["affected_versions"] == [{"project": "lab", "dataset": "events", "version": 1}]
    packs[0].unlink()
    store = service.datasets.verify_store()
    assert store["missing_chunks"] and not store["ok"]


def test_gc_frees_only_unreferenced_chunks(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service(gc_grace_minutes=0)
    shared = os.urandom(400_000)
    service.datasets.commit_folder(
        ALICE, "lab", "keep", write_tree(tmp_path / "k", {"shared": shared})
    )
    service.datasets.commit_folder(
        ALICE,
        "lab",
        "drop",
        write_tree(tmp_path / "d", {"shared": shared, "own": os.urandom(300_000)}),
    )
    assert service.datasets.gc(dry_run=True)["chunks_freed"] == 0
    service.call(ALICE, lambda s, ctx: ds.delete_dataset(s, ctx, "lab", "drop"), write=True)
    dry = service.datasets.gc(dry_run=True)
    assert dry["bytes_freed"] == 300_000 and dry["dry_run"]
    assert _counts(service)[0] == dry["chunks_freed"] + len(_declare({"s": shared})[1])
    report = service.datasets.gc(dry_run=False)
    assert report["bytes_freed"] == 300_000
    service.datasets.gc(dry_run=False)  # second pass deletes retired packs (grace 0)
    assert read_file(service, "v1", "shared", dataset="keep") == shared
    assert service.datasets.verify_store()["ok"]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "blobs").rglob("*.pack"))
    assert on_disk == 400_000


def test_gc_racing_commits_never_breaks_a_version(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    """Commits sharing chunks with deleted datasets while GC runs in a loop: every published
    version stays complete."""
    service = make_service(gc_grace_minutes=0)
    shared = [os.urandom(150_000) for _ in range(6)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def collect() -> None:
        while not stop.is_set():
            try:
                service.datasets.gc(dry_run=False)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        for i in range(8):
            files = {f"s{j}": shared[j] for j in range(6)} | {"own": os.urandom(50_000)}
            name = f"d{i % 2}"
            service.datasets.commit_folder(
                ALICE, "lab", name, write_tree(tmp_path / f"src{i}", files)
            )
            if i % 2:
                service.call(
                    ALICE, lambda s, ctx: ds.delete_dataset(s, ctx, "lab", "d1"), write=True
                )
    finally:
        stop.set()
        collector.join()
    assert not errors, errors
    assert service.datasets.verify_version(ALICE, "lab", "d0", "latest")["ok"]
    assert service.datasets.verify_store()["ok"]


def test_lineage_both_ways_and_access(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", {"f": b"1"}))
    service.call(
        ALICE,
        lambda s, ctx: ds.record_lineage(
            s, ctx, "lab", "events", "v1", consumer="run:abc", direction="read"
        ),
        write=True,
    )
    service.call(
        ALICE,
        lambda s, ctx: ds.record_lineage(
            s, ctx, "lab", "events", "v1", consumer="run:abc", direction="read"
        ),
        write=True,
    )
    readers = service.call(
        ALICE,
        lambda s, ctx: [
            ds.lineage_json(s, r) for r in ds.version_lineage(s, ctx, "lab", "events", "v1").items
        ],
        write=False,
    )
    assert [(r["consumer"], r["direction"]) for r in readers] == [("run:abc", "read")]
    used = service.call(
        ALICE,
        lambda s, ctx: [
            ds.lineage_json(s, r) for r in ds.consumer_lineage(s, ctx, "run:abc").items
        ],
        write=False,
    )
    assert [(u["dataset"], u["version"]) for u in used] == [("events", 1)]
    assert (
        service.call(BOB, lambda s, ctx: ds.consumer_lineage(s, ctx, "run:abc").items, write=False)
        == []
    )


def test_materialize_copies_from_the_cache(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    files = {"a/b.txt": b"bee", "c.bin": os.urandom(300_000)}
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", files))
    first = service.datasets.materialize(ALICE, "lab", "events", "v1", tmp_path / "out1")
    assert (first["fetched"], first["linked"]) == (2, 0)
    # the user edits a file in place: it is theirs, the cache is not touched
    with open(tmp_path / "out1" / "c.bin", "r+b") as f:
        f.write(b"edited")
    second = service.datasets.materialize(ALICE, "lab", "events", "v1", tmp_path / "out2")
    assert (second["fetched"], second["linked"]) == (0, 0)
    for path, data in files.items():
        assert (tmp_path / "out2" / path).read_bytes() == data
        assert os.stat(tmp_path / "out2" / path).st_nlink == 1
        assert os.access(tmp_path / "out2" / path, os.W_OK)


def test_materialize_with_link_notices_a_cached_file_written_through_its_link(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    files = {"a/b.txt": b"bee", "c.bin": os.urandom(300_000)}
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", files))
    first = service.datasets.materialize(ALICE, "lab", "events", "v1", tmp_path / "out1", link=True)
    assert (first["fetched"], first["linked"]) == (2, 2)
    linked = tmp_path / "out1" / "c.bin"
    assert os.stat(linked).st_nlink == 2 and not os.stat(linked).st_mode & 0o222
    # a write that keeps the size and the read-only mode (root is not stopped by the mode)
    os.chmod(linked, 0o644)
    with open(linked, "r+b") as f:
        f.write(b"edited")
    os.chmod(linked, 0o444)
    second = service.datasets.materialize(
        ALICE, "lab", "events", "v1", tmp_path / "out2", link=True
    )
    assert (second["fetched"], second["linked"]) == (1, 2)
    for path, data in files.items():
        assert (tmp_path / "out2" / path).read_bytes() == data
    # what the user wrote stays theirs
    assert linked.read_bytes().startswith(b"edited")


def test_the_cache_stamp_is_waived_where_the_file_system_cannot_keep_it() -> None:
    from jupyter_workbench.files import _stamp, _stamped

    digest = "ab" * 32
    second = 1_795_000_000 * 1_000_000_000
    assert _stamped(second + _stamp(digest), digest)
    assert not _stamped(second + 123_456_789, digest)  # a write on a nanosecond file system
    assert _stamped(second, digest)  # whole seconds (ext3, Lustre): trusted as it is
    assert _stamped(second + 10_000_000, digest)  # exFAT's 10 ms


def test_tags(make_service: Callable[..., WorkbenchService], tmp_path: Path) -> None:
    service = make_service()
    for i in range(2):
        service.datasets.commit_folder(
            ALICE, "lab", "events", write_tree(tmp_path / f"s{i}", {"f": bytes([i])})
        )
    service.call(
        ALICE, lambda s, ctx: ds.set_tag(s, ctx, "lab", "events", "production", "v1"), write=True
    )
    assert read_file(service, "production", "f") == b"\x00"
    assert read_file(service, "latest", "f") == b"\x01"
    with pytest.raises(BadRequest):
        service.call(
            ALICE, lambda s, ctx: ds.set_tag(s, ctx, "lab", "events", "latest", "v1"), write=True
        )


def test_a_dataset_has_at_most_max_tags(
    make_service: Callable[..., WorkbenchService],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ds, "MAX_TAGS", 3)
    service = make_service()
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", {"f": b"x"}))

    def tag(name: str) -> Any:
        return service.call(
            ALICE, lambda s, ctx: ds.set_tag(s, ctx, "lab", "events", name, "v1"), write=True
        )

    tag("a")
    tag("b")  # + latest: three
    with pytest.raises(Conflict, match="has 3 tags, the most a dataset may have"):
        tag("c")
    tag("a")  # moving a tag it has is always allowed
    service.call(ALICE, lambda s, ctx: ds.delete_tag(s, ctx, "lab", "events", "b"), write=True)
    tag("c")


def test_a_killed_commit_leaves_no_trace_after_gc(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service(gc_grace_minutes=0, dataset_session_hours=0)
    src = write_tree(tmp_path / "s", {"f": os.urandom(600_000)})
    session = "a" * 32
    service.call(
        ALICE, lambda s, ctx: ds.begin_session(s, ctx, "lab", "events", session), write=True
    )
    writer = service.datasets.store.writer(session)
    writer.add_file(src / "f")
    writer.finish()  # stored and pinned, but never published: as if killed here
    assert _counts(service)[0] > 0
    report = service.datasets.gc(dry_run=False)
    assert report["sessions_expired"] == 1 and report["bytes_freed"] == 600_000
    service.datasets.gc(dry_run=False)
    assert _counts(service) == (0, 0)
    with service.db.transaction() as s:  # gone with the dataset it made, which had no version
        assert s.get(CommitSession, session) is None
        assert s.scalar(select(Dataset).where(Dataset.name == "events")) is None


def test_an_upload_expired_by_gc_is_audited_as_the_system(
    make_service: Callable[..., WorkbenchService],
) -> None:
    """Garbage collection ends uploads idle past ``dataset_session_hours`` and frees what they
    stored: the audit trail shows it, done by the system, naming the upload and its owner (a dry
    run, which ends nothing, records nothing)."""
    service = make_service(dataset_session_hours=0)
    service.call(ALICE, lambda s, ctx: ds.create(s, ctx, "lab", name="events"), write=True)
    declared, _chunks = _declare({"a.txt": b"never committed"})
    upload_id = service.datasets.start_upload(ALICE, "lab", "events", declared)["id"]

    def expiries() -> list[tuple[str, str | None, dict[str, Any]]]:
        with service.db.transaction() as s:
            rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.upload_expire"))
            return [(e.actor_name, e.project_slug, e.summary) for e in rows]

    assert service.datasets.gc(dry_run=True)["sessions_expired"] == 1
    assert expiries() == []
    assert service.datasets.gc(dry_run=False)["sessions_expired"] == 1
    assert expiries() == [
        ("[system]", "lab", {"upload": upload_id, "kind": "upload", "owner": "alice"})
    ]
    assert service.datasets.upload_status(ALICE, "lab", "events", upload_id)["state"] == "expired"
    assert service.datasets.gc(dry_run=False)["sessions_expired"] == 0
    assert len(expiries()) == 1


def test_an_expired_first_upload_takes_the_dataset_it_made(
    make_service: Callable[..., WorkbenchService],
) -> None:
    """An upload to a new name that nobody commits: once garbage collection ends it, the
    dataset it made (no version) is deleted too, by the system, audited."""
    service = make_service(dataset_session_hours=0)
    declared, _chunks = _declare({"a.txt": b"never committed"})
    service.datasets.start_upload(ALICE, "lab", "fresh", declared)
    assert service.datasets.gc(dry_run=False)["sessions_expired"] == 1
    with service.db.transaction() as s:
        assert s.scalar(select(Dataset).where(Dataset.name == "fresh")) is None
        deletes = s.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.delete"))
        assert [(e.actor_name, e.object_id, e.summary) for e in deletes] == [
            ("[system]", "fresh", {"versions": 0, "reason": "first_upload_ended"})
        ]


# -- the chunk writer's background threads, O_DIRECT packs, scanning and path checks --------
def _open_session(service: WorkbenchService, session: str, dataset: str = "events") -> None:
    service.call(
        ALICE, lambda s, ctx: ds.begin_session(s, ctx, "lab", dataset, session), write=True
    )


def _writer_threads() -> list[threading.Thread]:
    names = ("chunk-store", "chunk-flush", "chunk-seal")
    return [t for t in threading.enumerate() if t.name in names]


def _temp_packs(service: WorkbenchService) -> list[Path]:
    return list(service.datasets.store.tmp_dir.glob("pack-*.tmp"))


@pytest.mark.parametrize("stage", ["flush", "seal"])
def test_a_seal_error_in_the_background_surfaces_and_stores_nothing(
    make_service: Callable[..., WorkbenchService],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
) -> None:
    """The disk (moving a pack into the store) or the database (indexing its chunks) fails:
    the commit says so, no thread or temporary file is left, and no chunk is indexed."""
    from jupyter_workbench.storage import StorageError, chunkstore

    service = make_service(gc_grace_minutes=0)
    src = write_tree(tmp_path / "s", {"big": random.Random(3).randbytes(24 * 1024 * 1024)})

    def broken(*args: Any) -> None:
        raise StorageError("the disk is full")

    if stage == "flush":
        monkeypatch.setattr(service.datasets.blobs, "move_in", broken)
    else:
        monkeypatch.setattr(chunkstore, "insert_ignore", broken)
    with pytest.raises(StorageError, match="disk is full"):
        service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert _temp_packs(service) == [] and _writer_threads() == []
    assert _counts(service)[0] == 0  # no chunk indexed
    with pytest.raises(NotFound):
        service.datasets.version_entries(ALICE, "lab", "events", "v1")
    # finish() raises it when it comes after the last batch was handed over (one batch here)
    _open_session(service, "b" * 32)
    writer = service.datasets.store.writer("b" * 32)
    writer.add_stream(io.BytesIO(os.urandom(3 * 1024 * 1024)))
    with pytest.raises(StorageError):
        writer.finish()
    writer.abort()  # harmless afterwards
    assert _temp_packs(service) == [] and _writer_threads() == []
    # packs stored before the error (a seal error leaves them with a 'writing' row) go with
    # the session, once it has expired
    monkeypatch.setattr(service.datasets, "session_ttl", timedelta(0))
    service.datasets.gc(dry_run=False)
    service.datasets.gc(dry_run=False)
    assert _counts(service) == (0, 0)
    assert list(service.datasets.blobs.list("packs/")) == []


def test_abort_stops_the_threads_and_leaves_no_temp_file(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    _open_session(service, "c" * 32)
    writer = service.datasets.store.writer("c" * 32)
    data = random.Random(4).randbytes(20 * 1024 * 1024)
    writer.add_stream(io.BytesIO(data))
    assert _writer_threads()  # storing in the background
    writer.abort()
    assert _writer_threads() == [] and _temp_packs(service) == []
    # what was sealed before the abort is pinned to the session only: GC may take it
    service.call(ALICE, lambda s, ctx: ds.end_session(s, "c" * 32, "aborted"), write=True)
    assert service.datasets.gc(dry_run=True)["chunks_freed"] == _counts(service)[0]


def test_every_chunk_added_is_pinned_after_finish(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    old = random.Random(5).randbytes(3 * 1024 * 1024)
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "a", {"a": old}))
    _open_session(service, "d" * 32, "other")
    writer = service.datasets.store.writer("d" * 32)
    digests = [
        writer.add_stream(io.BytesIO(old)),  # all reused
        writer.add_stream(io.BytesIO(random.Random(6).randbytes(2 * 1024 * 1024))),  # new
    ]
    writer.finish()
    wanted = sorted({d for digest in digests for d, _ in digest.chunks})
    assert writer.chunks_reused == len(digests[0].chunks) and writer.chunks_new > 0
    with service.db.transaction() as s:
        assert ds.pinned_digests(s, "d" * 32, wanted) == set(wanted)


def test_new_chunks_are_pinned_through_their_packs_and_keep_it_when_repacked(
    make_service: Callable[..., WorkbenchService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's new chunks are pinned by one row per pack (not one per chunk); GC leaves
    them alone while the session is open, also when it moves them into a new pack."""
    service = make_service(gc_grace_minutes=0)
    store = service.datasets.store
    rng = random.Random(12)
    # Another session stores 2.5 MiB first; ours then stores the same bytes (its lookup missed
    # them, as when both run at once) and 0.5 MiB of its own: its pack ends up mostly dead.
    theirs = rng.randbytes(2_500_000)
    ours = rng.randbytes(500_000)
    _open_session(service, "e" * 32)
    _open_session(service, "f" * 32, "other")
    first = store.writer("e" * 32)
    first.add_stream(io.BytesIO(theirs))
    first.finish()
    monkeypatch.setattr(store, "existing", lambda digests: set())
    second = store.writer("f" * 32)
    digests = [second.add_stream(io.BytesIO(theirs)), second.add_stream(io.BytesIO(ours))]
    second.finish()
    monkeypatch.undo()
    own = sorted({d for d, _ in digests[1].chunks})
    wanted = sorted({d for digest in digests for d, _ in digest.chunks})
    with service.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SessionChunk)) == len(
            {d for d, _ in digests[0].chunks}  # the other session's copies, one by one
        )
        assert s.scalar(select(func.count()).select_from(SessionPack)) == 2
        assert ds.pinned_digests(s, "f" * 32, wanted) == set(wanted)
        packs_before = set(s.scalars(select(BlobChunk.pack_id).where(BlobChunk.digest.in_(own))))
    report = service.datasets.gc(dry_run=False)
    assert report["packs_repacked"] == 1 and report["chunks_freed"] == 0
    with service.db.transaction() as s:
        moved = set(s.scalars(select(BlobChunk.pack_id).where(BlobChunk.digest.in_(own))))
        assert moved.isdisjoint(packs_before)  # in a new pack, still pinned
        assert ds.pinned_digests(s, "f" * 32, wanted) == set(wanted)
    assert service.datasets.gc(dry_run=False)["chunks_freed"] == 0
    for session in ("e" * 32, "f" * 32):
        service.call(ALICE, lambda s, ctx, i=session: ds.end_session(s, i, "aborted"), write=True)
    with service.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SessionPack)) == 0
    stored = _counts(service)[0]
    assert service.datasets.gc(dry_run=False)["chunks_freed"] == stored > 0


def test_a_reused_chunk_collected_before_its_pin_fails_the_publish(
    make_service: Callable[..., WorkbenchService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the late pins allow: a chunk found in the index, then deleted by GC before
    it is pinned. Simulated by a lookup that finds chunks the store does not have."""
    service = make_service()
    store = service.datasets.store
    monkeypatch.setattr(store, "existing", lambda digests: set(digests))
    src = write_tree(tmp_path / "s", {"f": os.urandom(400_000)})
    with pytest.raises(Conflict) as err:
        service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert err.value.code == "missing_chunks"
    with pytest.raises(NotFound):
        service.datasets.version_entries(ALICE, "lab", "events", "v1")


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_verify_and_repack_read_a_pack_a_window_at_a_time(
    make_service: Callable[..., WorkbenchService],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    storage: str,
) -> None:
    """GC's repack and verify never hold a pack whole: they read it a few chunks at a time.
    What is repacked reads back identical; a pack cut short loses only the chunks past the cut."""
    monkeypatch.setattr(dataset_jobs, "READ_WINDOW", 100_000)
    service = make_service(storage, gc_grace_minutes=0)
    blobs = service.datasets.blobs
    rng = random.Random(21)
    keep, drop = rng.randbytes(400_000), rng.randbytes(600_000)
    src = write_tree(tmp_path / "d", {"keep": keep, "drop": drop})
    service.datasets.commit_folder(ALICE, "lab", "drop", src)
    service.datasets.commit_folder(ALICE, "lab", "keep", write_tree(tmp_path / "k", {"keep": keep}))
    service.call(ALICE, lambda s, ctx: ds.delete_dataset(s, ctx, "lab", "drop"), write=True)
    reads: list[int] = []
    get_range = blobs.get_range
    monkeypatch.setattr(
        blobs, "get_range", lambda key, start, n: reads.append(n) or get_range(key, start, n)
    )
    assert service.datasets.gc(dry_run=False)["packs_repacked"] == 1
    assert len(reads) > 3 and max(reads) <= max(100_000, dataset_jobs.MAX_CHUNK)
    service.datasets.gc(dry_run=False)  # deletes the old pack (grace 0)
    assert _pack_bytes(service) == 400_000
    assert read_file(service, "v1", "keep", dataset="keep") == keep
    reads.clear()
    report = service.datasets.verify_store()
    assert report["ok"] and len(reads) > 1 and max(reads) <= max(100_000, dataset_jobs.MAX_CHUNK)
    (pack,) = [o.key for o in blobs.list("packs/")]
    blobs.put_bytes(pack, blobs.get_bytes(pack)[:250_000])
    report = service.datasets.verify_store()
    _n, entry = service.datasets.file_entry(ALICE, "lab", "keep", "v1", "keep")
    assert not report["ok"] and report["corrupt_chunks"] == []
    assert 0 < len(report["missing_chunks"]) < len(entry.chunks)
    assert report["chunks_checked"] == len(entry.chunks) - len(report["missing_chunks"])
    assert report["affected_versions"] == [{"project": "lab", "dataset": "keep", "version": 1}]


def test_stopping_the_workbench_stops_a_running_operation_at_its_next_step(
    make_service: Callable[..., WorkbenchService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl+C on a workbench verifying a big store: it stops within a chunk, not after the whole
    verify (Python waits for the job's thread before it exits); the operation says why."""
    service = make_service()
    data = os.urandom(3 * 1024 * 1024)
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", {"f": data}))
    check = dataset_jobs.blake3_hex
    monkeypatch.setattr(dataset_jobs, "blake3_hex", lambda b: (time.sleep(0.2), check(b))[1])
    jobs = service.datasets
    op_id = jobs.start_operation(ALICE, "verify", None)
    running = service.io_executor.submit(
        jobs.run_operation, op_id, lambda progress: jobs.verify_store(progress=progress)
    )
    time.sleep(0.5)
    service.close()  # what the server's shutdown does
    assert running.done()
    with pytest.raises(Cancelled):
        running.result()
    restarted = make_service()
    op = restarted.call(
        ALICE, lambda s, ctx: operations.operation_json(operations.get(s, ctx, op_id)), write=False
    )
    assert op["state"] == "cancelled" and op["error"] == operations.INTERRUPTED
    assert 0 < op["bytes_done"] < len(data)


def _pack_bytes(service: WorkbenchService) -> int:
    with service.db.transaction() as s:
        return sum(s.scalars(select(BlobPack.size)))


@pytest.mark.parametrize("direct", [True, False])
def test_packs_hold_exactly_the_new_bytes(
    make_service: Callable[..., WorkbenchService],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direct: bool,
) -> None:
    """O_DIRECT (or not) packs: padding (under ALIGN bytes) only after a full batch of new
    chunks, none where a commit ends or between the new chunks of batches that also hold
    reused ones; the bytes read back are the bytes committed."""
    from jupyter_workbench.storage import chunkstore

    if not direct:
        monkeypatch.setattr(chunkstore, "_O_DIRECT", 0)
    service = make_service(pack_target_mib=64)
    rng = random.Random(8)
    big = bytearray(rng.randbytes(12 * 1024 * 1024))
    small = {f"s/{i:03d}": rng.randbytes(rng.randrange(1, 5000)) for i in range(300)}
    src = write_tree(tmp_path / "src", {"big": bytes(big), **small})
    first = service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert first.bytes_new == len(big) + sum(map(len, small.values()))
    full_batches = first.bytes_new // chunkstore.ChunkWriter.PENDING_BYTES
    assert 0 <= _pack_bytes(service) - first.bytes_new < chunkstore.ALIGN * full_batches
    stored = _pack_bytes(service)
    for at in (100_000, 3_000_000, 9_000_000, 11_000_000):  # edits spread over batches
        big[at : at + 4] = b"edit"
    small["s/new"] = b"x" * 1234
    write_tree(src, {"big": bytes(big), "s/new": small["s/new"]})
    second = service.datasets.commit_folder(ALICE, "lab", "events", src)
    assert 0 < second.bytes_new < 0.2 * first.bytes_new
    assert _pack_bytes(service) == stored + second.bytes_new
    on_disk = sum(p.stat().st_size for p in (tmp_path / "blobs").rglob("*.pack"))
    assert on_disk == _pack_bytes(service)
    assert read_file(service, "v2", "big") == bytes(big)
    assert read_file(service, "v2", "s/new") == small["s/new"]
    assert service.datasets.verify_store()["ok"]


def test_a_refused_o_direct_write_falls_back_to_the_page_cache(
    make_service: Callable[..., WorkbenchService], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from jupyter_workbench.storage import chunkstore

    real_write = os.write
    refused: list[int] = []

    def write(fd: int, data: Any) -> int:
        if not refused and chunkstore._O_DIRECT and "pack-" in os.readlink(f"/proc/self/fd/{fd}"):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    if not chunkstore._O_DIRECT or not Path("/proc/self/fd").is_dir():
        pytest.skip("no O_DIRECT here")
    monkeypatch.setattr(chunkstore.os, "write", write)
    service = make_service()
    big = random.Random(9).randbytes(5 * 1024 * 1024 + 3)
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", {"b": big}))
    assert refused and read_file(service, "v1", "b") == big


def test_pack_objects_are_newer_than_their_rows(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    """GC deletes pack objects without a row once older than its grace period: a GC that read
    the rows just before a pack's row was written must still find that object too new."""
    service = make_service()
    src = write_tree(tmp_path / "s", {"f": os.urandom(3 * 1024 * 1024)})
    service.datasets.commit_folder(ALICE, "lab", "events", src)
    objects = {o.key: o.modified for o in service.datasets.blobs.list("packs/")}
    with service.db.transaction() as s:
        rows = list(s.execute(select(BlobPack.key, BlobPack.created_at)))
    assert rows and {k for k, _ in rows} == set(objects)
    for key, created in rows:
        assert objects[key] >= created.replace(tzinfo=objects[key].tzinfo)


def _walk_reference(root: Path) -> list[tuple[str, int]]:
    """The order and sizes ``scan_folder`` kept before it used os.scandir."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            local = Path(dirpath) / name
            if local.is_file():
                out.append((local.relative_to(root).as_posix(), local.stat().st_size))
    return out


def test_scan_folder_order_and_checks(tmp_path: Path) -> None:
    from jupyter_workbench.dataset_jobs import scan_folder

    files = {
        "z.txt": b"z",
        "a/b/c.bin": b"ccc",
        "a/b.txt": b"bb",
        "a/a/x": b"",
        "B/upper": b"12345",
        "a-b/y": b"y",
        "é/ü.csv": b"u",
    }
    root = write_tree(tmp_path / "src", files)
    (root / "a" / "link").symlink_to(root / "z.txt")  # a link inside: its content
    os.mkfifo(root / "a" / "pipe")  # not a regular file: skipped
    found, ignored = scan_folder(root, max_bytes=1000)
    assert [(f.path, f.size) for f in found] == _walk_reference(root) and ignored == []
    assert [f.path for f in found][:2] == ["z.txt", "B/upper"]  # a folder's files first
    assert all(Path(f.local).read_bytes()[: f.size] == Path(f.local).read_bytes() for f in found)
    with pytest.raises(PayloadTooLarge):
        scan_folder(root, max_bytes=10)
    (root / "a" / "b" / "dirlink").symlink_to(root / "B", target_is_directory=True)
    with pytest.raises(BadRequest, match="'a/b/dirlink' is a symlinked folder"):
        scan_folder(root, max_bytes=1000)
    (root / "a" / "b" / "dirlink").unlink()
    (root / "a" / "b" / "out").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(BadRequest, match="'a/b/out' is a symlink that leaves the folder"):
        scan_folder(root, max_bytes=1000)
    (root / "a" / "b" / "out").unlink()
    (root / "a" / "bad\\name").write_bytes(b"x")
    with pytest.raises(BadRequest, match="backslash"):
        scan_folder(root, max_bytes=1000)
    # what the ignore rules leave out is never looked at: not refused, not counted, not listed
    (root / ".git").symlink_to(tmp_path, target_is_directory=True)  # would leave the folder
    scan = scan_folder(root, max_bytes=sum(len(d) for d in files), ignore=["bad*", "a/b/"])
    assert scan.ignored == [".git/", "a/b/", "a/bad\\name"]
    kept = ["z.txt", "B/upper", "a/b.txt", "a/link", "a/a/x", "a-b/y", "é/ü.csv"]
    assert [f.path for f in scan.files] == kept
    # one pattern as a string is that pattern (not its letters: '*' left out everything), and
    # a .wbignore written with a byte-order mark keeps its first pattern
    (root / ".wbignore").write_bytes("\ufeffB/\n".encode())
    scan = scan_folder(root, max_bytes=1000, ignore="bad*")
    assert scan.ignored == [".git/", ".wbignore", "B/", "a/bad\\name"]


def test_a_folder_with_normalization_twins_is_refused_before_its_dataset_is_made(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    """'é.txt' composed and decomposed in one folder (two files on Linux, one on macOS): the
    commit was refused only when publishing, and left the dataset it made, with no version.
    The walk of the folder refuses them, before anything is made or hashed."""
    service = make_service()
    root = tmp_path / "twins"
    root.mkdir()
    (root / unicodedata.normalize("NFC", "é.txt")).write_bytes(b"a")
    (root / unicodedata.normalize("NFD", "é.txt")).write_bytes(b"b")
    with pytest.raises(BadRequest, match="differ only in Unicode normalization"):
        service.datasets.commit_folder(ALICE, "lab", "twins", root)
    with pytest.raises(NotFound):
        service.call(ALICE, lambda s, ctx: ds.get(s, ctx, "lab", "twins"), write=False)


def _check_path_reference(path: object, field: str = "path") -> str:
    """check_path as it was (one unicodedata lookup per character)."""
    import re
    import unicodedata

    from jupyter_workbench.core.dataset_paths import MAX_PATH

    if not isinstance(path, str) or not path:
        raise BadRequest(f"{field}: must be a non-empty string", code="invalid_path")
    shown = path if len(path) <= 80 else path[:77] + "..."
    if len(path) > MAX_PATH:
        raise BadRequest(f"{field}: longer than {MAX_PATH} characters", code="invalid_path")
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        raise BadRequest(
            f"{field}: {shown!r} contains a NUL or control character", code="invalid_path"
        )
    if "\\" in path:
        raise BadRequest(f"{field}: {shown!r} contains a backslash; use '/'", code="invalid_path")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise BadRequest(f"{field}: {shown!r} is absolute; paths are relative", code="invalid_path")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise BadRequest(
            f"{field}: {shown!r} has an empty, '.' or '..' component", code="invalid_path"
        )
    return path


def test_check_path_answers_as_before() -> None:
    import sys
    import unicodedata

    from jupyter_workbench.core.dataset_paths import CONTROL_RE, check_path

    assert [c for c in range(sys.maxunicode + 1) if CONTROL_RE.search(chr(c))] == [
        c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"
    ]
    rng = random.Random(10)
    alphabet = ["a", "Z", "/", ".", "..", "\\", ":", "C:", " ", "\x00", "\x1f", "\x7f", "\x85"]
    alphabet += ["\x9f", "\xa0", "\u2028", "é", "\n", "-", "_", "0"]
    paths: list[object] = ["", None, 3, "x" * 1024, "x" * 1025, "a/b", "/a", "a/", "./a", "a/."]
    paths += ["...", "a/.../b", "c:/x", "1:/x", "a\nb", "a/\n", "\n"]
    paths += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(5000)
    ]

    def outcome(fn: Callable[..., str], path: object) -> tuple[str, str]:
        try:
            return ("ok", fn(path, "files[3].path"))
        except BadRequest as exc:
            return (exc.code, exc.message)

    for path in paths:
        assert outcome(check_path, path) == outcome(_check_path_reference, path), repr(path)


def test_check_manifest_refuses_malformed_digests() -> None:
    good = "0123456789abcdef" * 4
    ds.check_manifest([ds.FileEntry("a/b", 3, good, [(good, 3)])])
    for bad in [good.upper(), good[:-1], good + "0", "g" + good[1:], good[:-1] + "\u0660"]:
        for entry in (
            ds.FileEntry("a", 3, bad, [(good, 3)]),
            ds.FileEntry("a", 3, good, [(good, 1), (bad, 2)]),
        ):
            with pytest.raises(BadRequest) as err:
                ds.check_manifest([entry])
            assert err.value.code == "invalid_manifest"
            assert err.value.message == f"files[a]: {bad!r} is not a BLAKE3 hex digest"
    with pytest.raises(BadRequest, match="'a/b' is both a file and a folder"):
        ds.check_manifest(
            [ds.FileEntry("a/b", 1, good, [(good, 1)]), ds.FileEntry("a/b/c", 1, good, [(good, 1)])]
        )


def test_materialize_refuses_a_destination_that_clashes_before_writing_anything(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    files = {"a.txt": b"first", "data/x.csv": b"x", "deep/er/y.csv": b"y"}
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", files))
    for clash, message in (
        ("data", "is a file where the version has a folder"),
        ("deep/er", "is a file where the version has a folder"),
        ("a.txt/", "is a folder where the version has a file"),
    ):
        dest = tmp_path / f"out-{clash.replace('/', '-')}"
        (dest / clash).parent.mkdir(parents=True, exist_ok=True)
        if clash.endswith("/"):
            (dest / clash).mkdir()
        else:
            (dest / clash).write_text("mine")
        before = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
        with pytest.raises(BadRequest, match=message) as refused:
            service.datasets.materialize(ALICE, "lab", "events", "v1", dest)
        assert str(dest / clash.rstrip("/")) in str(refused.value)
        # nothing written: not even the files that would have fitted
        assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == before
    # files already there are replaced, as before
    dest = tmp_path / "out-ok"
    (dest / "data").mkdir(parents=True)
    (dest / "data" / "x.csv").write_text("old")
    service.datasets.materialize(ALICE, "lab", "events", "v1", dest)
    assert (dest / "data" / "x.csv").read_bytes() == b"x"


def test_declared_chunks_answer_lengths_and_the_cache_keeps_to_its_budget() -> None:
    from jupyter_workbench.dataset_jobs import DeclaredCache, DeclaredChunks

    rng = random.Random(3)
    sizes = {os.urandom(32).hex(): rng.randrange(1, 262_145) for _ in range(2000)}
    declared = DeclaredChunks(sizes)
    assert all(declared.length(bytes.fromhex(d)) == n for d, n in sizes.items())
    assert declared.length(b"\0" * 32) is None and declared.length(b"\xff" * 32) is None
    assert DeclaredChunks({}).length(b"\0" * 32) is None
    assert declared.nbytes == 2000 * 36
    cache = DeclaredCache(budget=2 * declared.nbytes)
    for n in range(3):
        cache.put(f"u{n}", declared)
        assert cache.get("u0") is declared  # used: kept, the least recently used goes
    assert cache.get("u1") is None and cache.get("u2") is declared


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_uploads_started_at_once_cannot_both_take_the_last_place(
    make_service: Callable[..., WorkbenchService],
) -> None:
    """Each start counted the open uploads, then added its own: two starts counting at the
    same moment both saw a free place, and the user had one upload more than allowed. The
    count and the insert are one step per project now: the second start sees the first."""
    from sqlalchemy import event

    service = make_service(max_open_uploads_per_user=1)
    service.call(ALICE, lambda s, ctx: ds.create(s, ctx, "lab", name="events"), write=True)
    counted = threading.Barrier(2)

    def meet(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "count(" in statement and "commit_sessions" in statement:
            # both starts counted before either inserts, unless one waits for the other
            with contextlib.suppress(threading.BrokenBarrierError):
                counted.wait(timeout=3)

    outcomes: list[str] = []

    def start(path: str) -> None:
        declared, _ = _declare({path: path.encode()})
        try:
            service.datasets.start_upload(ALICE, "lab", "events", declared)
            outcomes.append("started")
        except Conflict as exc:
            outcomes.append(exc.code)

    event.listen(service.db.engine, "after_cursor_execute", meet)
    try:
        threads = [threading.Thread(target=start, args=(p,)) for p in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(service.db.engine, "after_cursor_execute", meet)
    assert sorted(outcomes) == ["started", "too_many_uploads"], outcomes
    with service.db.transaction() as s:
        open_uploads = s.scalar(
            select(func.count()).where(
                CommitSession.kind == "upload", CommitSession.state == "open"
            )
        )
    assert open_uploads == 1
