"""Dataset commits, reads, diffs, uploads, verification and garbage collection, end to end
through the chunk store (local folder and S3 via moto; SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import random
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from traitlets.config import Config

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from jupyter_workbench.dataset_jobs import frame_chunks
from jupyter_workbench.db.models import BlobChunk, BlobPack, CommitSession
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


def _counts(service: WorkbenchService) -> tuple[int, int]:
    with service.db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(BlobChunk)) or 0,
            s.scalar(select(func.count()).select_from(BlobPack)) or 0,
        )


@pytest.mark.parametrize(
    ("name", "problem"),
    [("bad\x01name.txt", "control character"), ("back\\slash", "backslash")],
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
    bad[0] = (bad[0][0], b"X" + bad[0][1][1:])
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


def test_materialize_links_from_the_cache(
    make_service: Callable[..., WorkbenchService], tmp_path: Path
) -> None:
    service = make_service()
    files = {"a/b.txt": b"bee", "c.bin": os.urandom(300_000)}
    service.datasets.commit_folder(ALICE, "lab", "events", write_tree(tmp_path / "s", files))
    first = service.datasets.materialize(ALICE, "lab", "events", "v1", tmp_path / "out1")
    assert first["fetched"] == 2
    second = service.datasets.materialize(ALICE, "lab", "events", "v1", tmp_path / "out2")
    assert second["fetched"] == 0
    for path, data in files.items():
        assert (tmp_path / "out2" / path).read_bytes() == data


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
    with service.db.transaction() as s:
        assert s.get(CommitSession, session).state == "expired"  # type: ignore[union-attr]
