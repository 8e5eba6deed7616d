"""Co-editing survives what real deployments do: offline edits, restarts, compaction, SIGKILL."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pycrdt import Doc, Text

from .clients import Collaborator, eventually
from .server import WorkbenchServer

pytestmark = pytest.mark.slow

# restart cycles: compaction runs on the 1st, 4th and 7th (each cycle restarts the server)
CYCLES = 8


def _serve(tmp_path: Path, db_url: str) -> Iterator[WorkbenchServer]:
    srv = WorkbenchServer(tmp_path, db_url, ["alice", "bob"], collab_compact_after_updates=25)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[WorkbenchServer]:
    """On SQLite and on PostgreSQL."""
    yield from _serve(tmp_path, db_url)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[WorkbenchServer]:
    """On SQLite only: restarts take a while (the crash test covers PostgreSQL)."""
    yield from _serve(tmp_path, f"sqlite:///{tmp_path / 'workbench.db'}")


async def _shared_document(server: WorkbenchServer) -> str:
    async with server.api("bob") as bob:
        await bob.get("me")
    async with server.api("alice") as alice:
        slug = (await alice.post("projects", json={"name": "Durable"})).json()["slug"]
        r = await alice.post(f"projects/{slug}/members", json={"user": "bob", "role": "editor"})
        assert r.status_code == 201
        r = await alice.post(f"projects/{slug}/documents", json={"kind": "notes", "ref": "log"})
        assert r.status_code == 201
        return str(r.json()["id"])


async def _server_text(server: WorkbenchServer, document_id: str) -> str:
    async with server.api("alice") as alice:
        return str((await alice.get(f"documents/{document_id}")).json()["text"])


def _edit_offline(text: Text, rng: random.Random, tag: str) -> None:
    """A few inserts at random places and one deletion, like a user typing on a train."""
    for n in range(3):
        text.insert(rng.randint(0, len(text)), f"<{tag}.{n}>")
    if len(text) > 20:
        start = rng.randint(0, len(text) - 5)
        del text[start : start + rng.randint(1, 4)]


async def test_offline_restart_reconnect_cycles_merge_without_duplication(
    sqlite_server: WorkbenchServer,
) -> None:
    server = sqlite_server
    document_id = await _shared_document(server)
    rng = random.Random(2026)
    alice = Collaborator(server.ws, server.tokens["alice"], document_id)
    bob = Collaborator(server.ws, server.tokens["bob"], document_id)
    for cycle in range(CYCLES):
        await alice.connect()
        await bob.connect()
        alice.text.insert(len(alice.text), f"[a{cycle}]")  # online edits
        bob.text.insert(0, f"[b{cycle}]")
        marks = (f"[a{cycle}]", f"[b{cycle}]")

        def synced(marks: tuple[str, ...] = marks) -> bool:
            return str(alice.text) == str(bob.text) and all(m in str(bob.text) for m in marks)

        await eventually(synced, what="online sync")
        await asyncio.sleep(0.1)  # the last relayed updates are stored
        await alice.disconnect()
        await bob.disconnect()
        _edit_offline(alice.text, rng, f"A{cycle}")
        _edit_offline(bob.text, rng, f"B{cycle}")
        # what a correct merge gives: both offline states applied to one document
        expected_doc: Doc = Doc()
        expected_doc["content"] = expected = Text()
        expected_doc.apply_update(alice.doc.get_update())
        expected_doc.apply_update(bob.doc.get_update())
        if cycle % 3 == 0:
            async with server.api("bob") as api:
                r = await api.post(f"documents/{document_id}/compact")
                assert r.status_code == 200
        server.stop()
        server.start()
        await alice.connect()
        await bob.connect()

        def merged(expected: Text = expected) -> bool:
            return str(alice.text) == str(bob.text) == str(expected)

        await eventually(merged, what=f"the merge of cycle {cycle}")
        await asyncio.sleep(0.1)
        assert await _server_text(server, document_id) == str(expected)
        for tag in (f"[a{cycle}]", f"[b{cycle}]"):
            assert str(expected).count(tag) <= 1, f"{tag} duplicated"
        await alice.disconnect()
        await bob.disconnect()
    final = await _server_text(server, document_id)
    assert final == str(expected)
    online_tags = re.findall(r"\[[ab]\d+\]", final)
    assert len(online_tags) == len(set(online_tags))  # nothing doubled, ever


async def test_sigkill_during_a_burst_loses_no_acknowledged_edit(
    server: WorkbenchServer,
) -> None:
    document_id = await _shared_document(server)
    writer = await Collaborator(server.ws, server.tokens["alice"], document_id).connect()
    watcher = await Collaborator(server.ws, server.tokens["bob"], document_id).connect()

    async def burst() -> None:
        for i in range(5000):
            writer.text.insert(len(writer.text), f"[{i}]")
            await asyncio.sleep(0.001 if i % 10 else 0.01)

    typing = asyncio.ensure_future(burst())
    await eventually(lambda: str(watcher.text).count("[") >= 300, timeout=30, what="a burst")
    server.kill()
    await asyncio.sleep(0.5)  # whatever the server sent before dying has arrived
    acknowledged = set(re.findall(r"\[\d+\]", str(watcher.text)))
    typing.cancel()
    for c in (writer, watcher):
        await c.disconnect()
    assert len(acknowledged) >= 300
    server.start()
    fresh = await Collaborator(server.ws, server.tokens["bob"], document_id).connect()
    await asyncio.sleep(0.2)
    restored = set(re.findall(r"\[\d+\]", str(fresh.text)))
    lost = acknowledged - restored
    assert not lost, f"{len(lost)} acknowledged edits lost, e.g. {sorted(lost)[:5]}"
    await fresh.disconnect()
