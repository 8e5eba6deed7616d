"""A large document's size near its limit is measured in the size worker, off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text

from jupyter_workbench.collab import protocol as P
from jupyter_workbench.collab import room as room_module
from jupyter_workbench.collab import sizing
from jupyter_workbench.collab.room import Peer, Room
from jupyter_workbench.collab.store import CONTENT, doc_from_updates, new_doc, text_of


class MemoryStore:
    """What a room asks of its store, in memory: the updates in the order it stored them."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []

    def append_now(self, _document_id: str, updates: list[bytes]) -> bool:
        self.rows += updates
        return True

    def needs_checkpoint(self) -> bool:
        return False


class Connection:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.close_code: int | None = None

    def send(self, message: bytes) -> None:
        self.sent.append(message)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.close_code = code


async def run_blocking(fn: Any, *args: Any) -> Any:
    return fn(*args)


def edits(doc: Doc, texts: list[str]) -> list[bytes]:
    """The updates of a client typing ``texts`` one after the other at the end of ``doc``."""
    client: Doc = Doc()
    client.apply_update(doc.get_update())
    ytext = client.get(CONTENT, type=Text)
    updates = []
    for text in texts:
        before = client.get_state()
        ytext.insert(len(ytext), text)
        updates.append(client.get_update(before))
    return updates


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the documents encoded whole in this process (the worker's are not)."""
    seen: list[int] = []
    encode = Doc.get_update

    def counted(self: Doc, state: bytes | None = None) -> bytes:
        update = encode(self, state) if state is not None else encode(self)
        if state is None:
            seen.append(len(update))
        return update

    monkeypatch.setattr(Doc, "get_update", counted)
    return seen


async def test_near_the_limit_a_large_document_is_measured_in_the_worker_in_order(
    monkeypatch: pytest.MonkeyPatch, encodes: list[int]
) -> None:
    """Past ``OFFLOOP_BYTES`` (here 10,000) the document is encoded on the event loop once, for
    its shadow in the size worker, which measures every update near the limit after that: the
    updates are taken (and stored, and relayed) in the order they came, the first past the limit
    is refused (4413) and the document stays within it."""
    monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 10_000)
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, "plan\n" * 10_000)
    size = len(doc.get_update())
    limit = size + 200
    store = MemoryStore()
    room = Room("d", doc, store, run_blocking, stored_rows=0, size=size, max_bytes=limit)  # type: ignore[arg-type]
    writer, reader = Connection(), Connection()
    room.join(Peer(writer, "alice", {"name": "alice"}, True))
    room.join(Peer(reader, "bob", {"name": "bob"}, False))
    typed = [f"[{i}]" for i in range(60)]  # ~20 bytes an update: 200 bytes take a few of them
    updates = edits(doc, typed)
    base = doc.get_update()
    encodes.clear()
    try:
        for update in updates:
            room.receive(next(iter(p for p in room.peers if p.username == "alice")),
                         P.sync_update(update))  # fmt: skip
            if writer.close_code is not None:
                break
            await asyncio.sleep(0)
        await asyncio.wait_for(room.drained(), 30)
        assert writer.close_code == 4413, "60 updates fit in 200 bytes: the test needs more"
        assert room._shadow is not None
        assert len(encodes) == 1, encodes  # once, for the shadow: never to measure
        taken = room.text.removeprefix("plan\n" * 10_000)
        count = taken.count("[")
        assert 3 <= count < len(typed) and taken == "".join(typed[:count]), taken
        assert room.size == len(Doc.get_update(room.doc)) <= limit
        # stored, and sent to bob, in the order they were typed: each adds the next one
        replayed, texts = doc_from_updates([base]), []
        for row in store.rows:
            replayed.apply_update(row)
            texts.append(text_of(replayed).removeprefix("plan\n" * 10_000))
        assert texts == ["".join(typed[: n + 1]) for n in range(count)], texts
        relayed = [P.parse(m)[2] for m in reader.sent if P.parse(m)[:2] == (P.SYNC, P.SYNC_UPDATE)]
        assert relayed == store.rows
    finally:
        await room.close()


async def test_a_document_measured_past_its_limit_is_not_measured_again_while_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A document past its limit (the limit was lowered) refuses every update: measured once,
    it is not measured again until it changes (each refusal cost an encoding before)."""
    monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 10_000)
    asked: list[int] = []
    measure = sizing.Shadow.measure

    async def counted(self: sizing.Shadow, update: bytes, limit: int, grows: int) -> Any:
        asked.append(len(update))
        return await measure(self, update, limit, grows)

    monkeypatch.setattr(sizing.Shadow, "measure", counted)
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, "x" * 50_000)
    size = len(doc.get_update())
    # opened with an estimate (as a room does after edits), then the limit lowered under it
    room = Room("d", doc, MemoryStore(), run_blocking, stored_rows=0, size=size,  # type: ignore[arg-type]
                max_bytes=size - 1000)  # fmt: skip
    room.size_exact = False
    try:
        closed = []
        for update in edits(doc, ["a", "b", "c"]):
            conn = Connection()
            peer = Peer(conn, "alice", {"name": "alice"}, True)
            room.join(peer)
            room.receive(peer, P.sync_update(update))
            await asyncio.wait_for(room.drained(), 30)
            closed.append(conn.close_code)
        assert closed == [4413] * 3
        assert len(asked) == 1, asked
        assert room.text == "x" * 50_000
    finally:
        await room.close()


def _shadows_in_worker() -> int:
    return len(sizing._shadows)


async def test_a_shadow_whose_measuring_failed_is_dropped_in_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measuring that fails in the worker (a MemoryError on a huge document; here the shadow
    asked for is unknown) falls back to the loop, and closing the shadow still frees its copy
    in the worker: a room making a new one each time must not pile copies up there."""
    shadow = sizing.Shadow(Doc().get_update())
    try:
        good_key, shadow.key = shadow.key, "never-loaded"  # the worker raises KeyError
        with pytest.raises(sizing.SizingFailed):
            await shadow.measure(b"", 10, 1)
        shadow.key = good_key
        assert await asyncio.wrap_future(sizing._executor().submit(_shadows_in_worker)) >= 1
        before = await asyncio.wrap_future(sizing._executor().submit(_shadows_in_worker))
        shadow.close()
        after = await asyncio.wrap_future(sizing._executor().submit(_shadows_in_worker))
        assert after == before - 1
    finally:
        shadow.close()


async def test_a_worker_that_cannot_start_leaves_measuring_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the worker process cannot start (an OSError: the container's process limit), the
    room measures on the event loop and the update is taken or refused as ever."""
    monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 10_000)
    sizing.shutdown()

    def no_process(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(sizing, "_executor", lambda: type("P", (), {"submit": no_process})())
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, "y" * 20_000)
    size = len(doc.get_update())
    room = Room("d", doc, MemoryStore(), run_blocking, stored_rows=0, size=size,  # type: ignore[arg-type]
                max_bytes=size + 30)  # fmt: skip
    conn = Connection()
    peer = Peer(conn, "alice", {"name": "alice"}, True)
    room.join(peer)
    try:
        first, second = edits(doc, ["ok", "z" * 100])
        room.receive(peer, P.sync_update(first))
        await asyncio.wait_for(room.drained(), 30)
        assert room.text.endswith("ok") and conn.close_code is None
        room.receive(peer, P.sync_update(second))
        await asyncio.wait_for(room.drained(), 30)
        assert conn.close_code == 4413 and room.text.endswith("ok")
    finally:
        await room.close()


async def test_an_update_measured_while_its_sender_was_demoted_is_not_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measuring near the limit takes a while (the worker); a sender demoted to viewer (or
    whose access was revoked) meanwhile is refused, not applied, stored and relayed."""
    monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 10_000)
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, "w" * 20_000)
    size = len(doc.get_update())
    (update,) = edits(doc, ["late"])
    after = len(doc_from_updates([doc.get_update(), update]).get_update())
    assert size + 2 * len(update) > after  # at the limit: measured, and it fits
    store = MemoryStore()
    room = Room("d", doc, store, run_blocking, stored_rows=0, size=size,  # type: ignore[arg-type]
                max_bytes=after)  # fmt: skip
    conn = Connection()
    peer = Peer(conn, "alice", {"name": "alice"}, True)
    room.join(peer)
    measure, asked = sizing.Shadow.measure, []

    async def slow(self: sizing.Shadow, update: bytes, limit: int, grows: int) -> Any:
        result = await measure(self, update, limit, grows)
        asked.append(result)
        peer.can_write = False  # the role check ran while the worker measured
        return result

    monkeypatch.setattr(sizing.Shadow, "measure", slow)
    try:
        room.receive(peer, P.sync_update(update))
        await asyncio.wait_for(room.drained(), 30)
        assert asked and asked[0][1] == after  # measured in the worker: it would have fitted
        assert room.text == "w" * 20_000 and store.rows == []
        assert any(P.parse(m)[0] != P.SYNC for m in conn.sent)  # told it is read-only
    finally:
        await room.close()


async def test_a_large_documents_restore_is_measured_in_the_worker(
    monkeypatch: pytest.MonkeyPatch, encodes: list[int]
) -> None:
    """A restore near the limit is tried on a copy first; a large document's copy is its
    shadow's in the size worker (encoding it and the copy took ~2 x 85 ms on the event loop at
    30 MiB): refused past the limit (nothing changed), taken within it, in order with edits."""
    monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 10_000)
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, "line\n" * 5_000)
    size = len(doc.get_update())
    store = MemoryStore()
    room = Room("d", doc, store, run_blocking, stored_rows=0, size=size,  # type: ignore[arg-type]
                max_bytes=size + 500)  # fmt: skip
    try:
        encodes.clear()
        with pytest.raises(room_module.DocumentTooLarge):
            await asyncio.wait_for(room.replace_text("line\n" * 5_000 + "x" * 600), 30)
        assert room.text == "line\n" * 5_000 and store.rows == []
        assert room._shadow is not None
        assert len(encodes) == 1, encodes  # once, for the shadow: never to measure
        await asyncio.wait_for(room.replace_text("line\n" * 4_000 + "short"), 30)
        assert room.text == "line\n" * 4_000 + "short" and store.rows
        assert len(encodes) == 1, encodes
        # the shadow followed the restore: a restore back is measured on the edited document
        await asyncio.wait_for(room.replace_text("line\n" * 5_000), 30)
        assert room.text == "line\n" * 5_000 and len(encodes) == 1
    finally:
        await room.close()
