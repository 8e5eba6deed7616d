"""Fixtures of the client tests: a real jupyter-server with the workbench (in the test's event
loop: call the synchronous client from a thread), seeded over its REST API."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workbench.dataset_jobs import frame_chunks
from jupyter_workbench.storage import chunk_bytes
from tests.conftest import TOKEN_OF

FILES = {
    "table.csv": b"city,people\nOslo,709000\nBergen,291000\n",
    "data/blob.bin": bytes(range(256)) * 1200,
    "notes/readme.txt": b"hello workbench\n",
}


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """SQLite only: the client does not care which database the server uses."""
    target = tmp_path / "workbench.db"
    shutil.copy(sqlite_template, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def server_url(jp_serverapp: Any) -> str:
    return str(jp_serverapp.connection_url).rstrip("/")


async def upload(client: Any, slug: str, name: str, files: dict[str, bytes]) -> None:
    """Commit ``files`` as a new version of a dataset, the way any uploader does."""
    declared, chunks = [], {}
    for path, data in files.items():
        pieces: list[list[Any]] = []

        def keep(chunk: Any, pieces: list[list[Any]] = pieces) -> None:
            pieces.append([chunk.digest, chunk.length])
            chunks[chunk.digest] = bytes(chunk.data)

        digest = chunk_bytes(data, on_chunk=keep)
        declared.append(
            {"path": path, "size": digest.size, "digest": digest.digest, "chunks": pieces}
        )
    base = f"projects/{slug}/datasets/{name}/uploads"
    r = await client.post(base, {"files": declared})
    assert r.status == 201, r
    if r.json["missing"]:
        framed = frame_chunks([(d, chunks[d]) for d in r.json["missing"]])
        sent = await client.post(
            f"{base}/{r.json['id']}/chunks",
            raw=framed,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert sent.status == 200, sent
    done = await client.post(f"{base}/{r.json['id']}/commit", {"message": "seed"})
    assert done.status == 201, done


async def seed(api: Callable[[str | None], Any]) -> dict[str, str]:
    """alice owns ``lab`` (bob is a viewer) with dataset ``events`` v1; bob owns ``other``."""
    alice, bob = api("alice"), api("bob")
    assert (await bob.post("projects", {"name": "Other", "slug": "other"})).status == 201
    assert (await alice.post("projects", {"name": "Lab", "slug": "lab"})).status == 201
    r = await alice.post("projects/lab/members", {"user": "bob", "role": "viewer"})
    assert r.status == 201, r
    await upload(alice, "lab", "events", FILES)
    return {"alice": TOKEN_OF["alice"], "bob": TOKEN_OF["bob"]}
