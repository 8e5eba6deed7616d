"""A commit SIGKILLed at random moments leaves no visible partial version and no corrupt chunk,
and garbage collection then frees everything it had stored (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from traitlets.config import Config

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.models import BlobChunk, BlobPack, VersionChunk
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

pytestmark = pytest.mark.slow

OWNER = Identity("alice", "Alice")
CHILD = """
import json, sys
from pathlib import Path
from traitlets.config import Config
from jupyter_workbench.core.context import Identity
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

config, source = json.loads(sys.argv[1]), sys.argv[2]
service = WorkbenchService(Workbench(config=Config({"Workbench": config})))
print("ready", flush=True)
result = service.datasets.commit_folder(Identity("alice", "Alice"), "lab", "crash", Path(source))
print("done", result.version["version"], flush=True)
"""


def make_source(root: Path, seed: int) -> Path:
    """16 files, 48 MiB: half shared between rounds, half new each round."""
    rng = random.Random(seed)
    shared = random.Random(0)
    root.mkdir(parents=True)
    for i in range(16):
        data = shared.randbytes(3 * 1024 * 1024) if i % 2 else rng.randbytes(3 * 1024 * 1024)
        (root / f"part-{i:02d}.bin").write_bytes(data)
    return root


def check_store(service: WorkbenchService) -> dict[str, Any]:
    """Every visible version is complete and verifies; the store has no corrupt chunk."""
    versions = service.call(
        OWNER,
        lambda s, ctx: [
            v.version for v in ds.list_versions(s, ctx, "lab", "crash", limit=500).items
        ],
        write=False,
    )
    for number in versions:
        report = service.datasets.verify_version(OWNER, "lab", "crash", f"v{number}")
        assert report["ok"] and report["files"] == 16, report
    store = service.datasets.verify_store()
    assert not store["corrupt_chunks"] and not store["missing_chunks"], store
    return {"versions": versions}


def test_sigkill_during_commits(db_url: str, tmp_path: Path) -> None:
    config = {
        "database_url": db_url,
        "data_dir": str(tmp_path / "data"),
        "pack_target_mib": 4,
        "verify_uploads": True,
    }
    checker = WorkbenchService(
        Workbench(
            config=Config(
                {"Workbench": {**config, "gc_grace_minutes": 0, "dataset_session_hours": 0}}
            )
        )
    )
    try:
        checker.call(
            OWNER, lambda s, ctx: projects.create(s, ctx, name="Lab", slug="lab"), write=True
        )
        checker.call(OWNER, lambda s, ctx: ds.create(s, ctx, "lab", name="crash"), write=True)
        rng = random.Random(42)
        killed = finished = 0
        for round_no in range(10):
            source = make_source(tmp_path / f"src{round_no}", seed=round_no)
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(config), str(source)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.6))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
            tail = child.stdout.read()
            if "done" in tail:
                finished += 1
            else:
                killed += 1
            check_store(checker)
        assert killed >= 3, (killed, finished)  # the kills really landed mid-commit
        before = check_store(checker)["versions"]
        # Garbage collection frees what the killed commits stored, and nothing else.
        checker.datasets.gc(dry_run=False)
        checker.datasets.gc(dry_run=False)  # retired packs go after the (zero) grace period
        assert check_store(checker)["versions"] == before
        with checker.db.transaction() as s:
            orphans = s.scalar(
                select(func.count())
                .select_from(BlobChunk)
                .where(
                    ~select(VersionChunk.version_id)
                    .where(VersionChunk.chunk_digest == BlobChunk.digest)
                    .exists()
                )
            )
            writing = s.scalar(select(func.count()).where(BlobPack.state == "writing"))
            keys = set(s.scalars(select(BlobPack.key)))
        assert orphans == 0 and writing == 0
        on_disk = {
            p.relative_to(tmp_path / "data" / "blobs").as_posix()
            for p in (tmp_path / "data" / "blobs").rglob("*.pack")
        }
        assert on_disk == keys, "pack objects on disk without an index row, or rows without objects"
        assert not list((tmp_path / "data" / "tmp").glob("*.tmp")), "a dead writer's temp file"
    finally:
        checker.close()
