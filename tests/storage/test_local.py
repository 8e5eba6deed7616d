"""LocalBlobStore: atomic, durable files; failures leave the old object and no debris."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_workbench.storage import BlobStore, LocalBlobStore, StorageError, local

MiB = 1024 * 1024


def debris(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.startswith(".wbtmp-")]


def test_layout_is_one_file_per_key(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("packs/ab/abcdef.pack", b"data")
    assert (tmp_path / "blobs" / "packs" / "ab" / "abcdef.pack").read_bytes() == b"data"
    assert debris(tmp_path) == []


def test_temp_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("d/real", b"1")
    (tmp_path / "d" / ".wbtmp-0123abcd").write_bytes(b"half written")
    assert [info.key for info in store.list()] == ["d/real"]


def test_source_failing_midway_leaves_old_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's source breaks after 2 MiB: its error propagates, the old object stays."""
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("k", b"old")
    source = tmp_path / "src"
    source.write_bytes(b"n" * 4 * MiB)
    real_blocks = local._blocks

    def breaking_blocks(src: object) -> Iterator[memoryview]:
        sent = 0
        for block in real_blocks(src):  # type: ignore[arg-type]
            yield block
            sent += len(block)
            if sent >= 2 * MiB:
                raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(local, "_blocks", breaking_blocks)
    with pytest.raises(OSError, match="injected") as info:
        store.put_file("k", source)
    assert not isinstance(info.value, StorageError)
    assert store.get_bytes("k") == b"old"
    assert debris(tmp_path) == []
    with pytest.raises(OSError):
        store.put_file("new/key", source)
    assert not store.exists("new/key")
    assert debris(tmp_path) == []


def test_unreadable_source_leaves_old_object(tmp_path: Path) -> None:
    """A real read error: /proc/self/mem opens fine but fails on the first read (EIO)."""
    store = LocalBlobStore(tmp_path)
    store.put_bytes("k", b"old")
    with pytest.raises(OSError):
        store.put_file("k", Path("/proc/self/mem"))
    assert store.get_bytes("k") == b"old"
    assert debris(tmp_path) == []


def test_write_failing_midway_leaves_old_object(tmp_path: Path) -> None:
    """A real write failure after 1 MiB (RLIMIT_FSIZE in a child): StorageError, old data kept."""
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("obj/key", b"old contents")
    source = tmp_path / "src"
    source.write_bytes(os.urandom(4 * MiB))
    script = textwrap.dedent(
        """
        import resource, signal, sys
        from pathlib import Path
        from jupyter_workbench.storage import LocalBlobStore, StorageError

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        store = LocalBlobStore(Path(sys.argv[1]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        for key in ("obj/key", "obj/fresh"):
            try:
                store.put_file(key, Path(sys.argv[2]))
            except StorageError as exc:
                print("StorageError:", exc)
            else:
                print("stored")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "blobs"), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("StorageError:") for line in lines), lines
    assert "File too large" in lines[0]
    assert store.get_bytes("obj/key") == b"old contents"
    assert not store.exists("obj/fresh")
    assert debris(tmp_path) == []


def test_key_cannot_be_object_and_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("a", b"file")
    with pytest.raises(StorageError):
        store.put_bytes("a/b", b"x")
    store.put_bytes("c/d", b"x")
    with pytest.raises(StorageError):
        store.put_bytes("c", b"x")
    assert store.get_bytes("a") == b"file"
    assert debris(tmp_path) == []


def test_new_folders_are_created(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "not" / "yet")
    store.put_bytes("deep/er/and/deeper/k", b"v")
    assert store.get_bytes("deep/er/and/deeper/k") == b"v"
    assert [info.key for info in store.list("deep/er/")] == ["deep/er/and/deeper/k"]


def test_move_in_renames_without_copying(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "pack.tmp"
    source.write_bytes(b"packed chunks")
    inode = source.stat().st_ino
    store.move_in("packs/ab/abc.pack", source)
    assert not source.exists()
    assert store.get_bytes("packs/ab/abc.pack") == b"packed chunks"
    assert (tmp_path / "blobs" / "packs" / "ab" / "abc.pack").stat().st_ino == inode


def test_move_in_on_any_store_uploads_then_removes(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "other.tmp"
    source.write_bytes(b"x" * 1000)
    blob_store.move_in("packs/x.pack", source)
    assert not source.exists() and blob_store.get_bytes("packs/x.pack") == b"x" * 1000
