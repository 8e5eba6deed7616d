"""A 1 GiB file committed, read back byte-exact and ranged, with bounded memory (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest
from traitlets.config import Config

from jupyter_workbench.core import projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

pytestmark = pytest.mark.slow
GiB = 1024**3
BLOCK = 8 * 1024 * 1024


def test_one_gib_file_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    big = source / "big.bin"
    hasher = blake3.blake3()
    salt = os.urandom(16)

    def block(i: int) -> bytes:  # pseudo-random and unique: nothing deduplicates
        return blake3.blake3(salt + i.to_bytes(8, "big")).digest(length=BLOCK)

    with big.open("wb") as out:
        for i in range(GiB // BLOCK):
            data = block(i)
            hasher.update(data)
            out.write(data)
    expected = hasher.hexdigest()
    service = WorkbenchService(
        Workbench(config=Config({"Workbench": {"data_dir": str(tmp_path / "data")}}))
    )
    who = Identity("alice")
    try:
        service.call(
            who, lambda s, ctx: projects.create(s, ctx, name="Big", slug="big"), write=True
        )
        result = service.datasets.commit_folder(who, "big", "one", source)
        assert result.version["total_bytes"] == GiB and result.bytes_new == GiB
        big.unlink()  # the store alone holds it now
        _n, entry = service.datasets.file_entry(who, "big", "one", "v1", "big.bin")
        assert entry.digest == expected
        back = blake3.blake3()
        for piece in service.datasets.store.read_range(entry.chunks):
            back.update(piece)
        assert back.hexdigest() == expected
        tail = b"".join(service.datasets.store.read_range(entry.chunks, GiB - 100, GiB))
        assert tail == block(GiB // BLOCK - 1)[-100:]
        assert service.datasets.verify_version(who, "big", "one", "v1")["ok"]
    finally:
        service.close()
