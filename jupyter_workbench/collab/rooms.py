"""The open rooms of a server: opened on the first join, closed when idle, compacted when busy,
snapshotted every N minutes of activity, and re-checking every peer's access."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import sizing
from .room import Peer, Room
from .store import DocumentStore

log = logging.getLogger("jupyter_workbench.collab")

# (peer, document id) -> may it write (True/False), or None: it may no longer see the document
AccessCheck = Callable[[Peer, str], Awaitable[bool | None]]
Snapshotter = Callable[[Room], Awaitable[None]]


class RoomManager:
    def __init__(
        self,
        store: DocumentStore,
        run_blocking: Callable[..., Awaitable[Any]],
        *,
        check_access: AccessCheck,
        take_snapshot: Snapshotter | None = None,
        idle_seconds: float = 60.0,
        compact_after: int = 500,
        snapshot_minutes: float = 10.0,
        access_check_seconds: float = 2.0,
        max_document_bytes: int = 0,
        awareness_per_second: float = 0.0,
        awareness_burst: int = 1,
    ) -> None:
        self.store = store
        self._run = run_blocking
        self.check_access = check_access
        self.take_snapshot = take_snapshot
        self.idle_seconds = idle_seconds
        self.compact_after = compact_after
        self.snapshot_minutes = snapshot_minutes
        self.access_check_seconds = access_check_seconds
        self.max_document_bytes = max_document_bytes
        self.awareness_per_second = awareness_per_second
        self.awareness_burst = awareness_burst
        self.rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Future[Room]] = {}
        self._closers: dict[str, asyncio.TimerHandle] = {}
        self._compacting: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recheck_now = asyncio.Event()
        self._checker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- rooms --------------------------------------------------------------------------
    async def room(self, document_id: str) -> Room:
        """The open room of a document, opened (restored from the store) on first use."""
        room = self.rooms.get(document_id)
        if room is not None and room.broken is None:
            return room
        if room is not None:  # a failed store: start again from what is stored
            await self.forget(document_id)
        opening = self._opening.get(document_id)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._opening[document_id] = future
        try:
            room = await Room.open(
                document_id, self.store, self._run, on_stored=self._stored,
                max_bytes=self.max_document_bytes,
                awareness_per_second=self.awareness_per_second,
                awareness_burst=self.awareness_burst,
            )  # fmt: skip
            self.rooms[document_id] = room
            future.set_result(room)
            self._release_later(room)  # closes unless someone joins
            return room
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            del self._opening[document_id]

    def join(self, room: Room, peer: Peer) -> None:
        closer = self._closers.pop(room.document_id, None)
        if closer is not None:
            closer.cancel()
        room.join(peer)
        self._loop = asyncio.get_running_loop()
        if self._checker is None:
            self._checker = asyncio.ensure_future(self._check_forever())

    def leave(self, room: Room, peer: Peer) -> None:
        room.leave(peer)
        if not room.peers:
            self._release_later(room)

    def _release_later(self, room: Room) -> None:
        loop = asyncio.get_running_loop()
        old = self._closers.pop(room.document_id, None)
        if old is not None:
            old.cancel()
        self._closers[room.document_id] = loop.call_later(
            self.idle_seconds, lambda: self._spawn(self._close_if_idle(room.document_id))
        )

    async def _close_if_idle(self, document_id: str) -> None:
        room = self.rooms.get(document_id)
        if room is None or room.peers:
            return
        await room.drained()
        if room.stored_rows > 1 and room.broken is None:
            await self.compact(document_id)
        if room.peers or self.rooms.get(document_id) is not room:
            return
        if not room.idle:  # an edit came meanwhile (a restore): close once it is done
            self._release_later(room)
            return
        await self.forget(document_id)

    async def forget(
        self, document_id: str, code: int = 1001, reason: str = "the room closed"
    ) -> None:
        """Close a document's room now, and its connections with ``code``."""
        closer = self._closers.pop(document_id, None)
        if closer is not None:
            closer.cancel()
        room = self.rooms.pop(document_id, None)
        if room is not None:
            await room.close(code, reason)

    def presence(self, document_id: str) -> list[dict[str, Any]]:
        room = self.rooms.get(document_id)
        return room.presence() if room is not None else []

    # -- upkeep -------------------------------------------------------------------------
    def _stored(self, room: Room) -> None:
        if room.stored_rows >= self.compact_after and room.document_id not in self._compacting:
            self._spawn(self.compact(room.document_id))
        due = room.last_snapshot_at + self.snapshot_minutes * 60
        if self.take_snapshot is not None and self.snapshot_minutes > 0 and time.time() >= due:
            room.last_snapshot_at = time.time()
            self._spawn(self.take_snapshot(room))

    async def compact(self, document_id: str) -> Any:
        """Merge the document's stored updates into one row (the room keeps serving)."""
        self._compacting.add(document_id)
        try:
            result = await self._run(self.store.compact, document_id)
            room = self.rooms.get(document_id)
            if room is not None:
                room.stored_rows = room.stored_rows - result.rows_before + 1
            return result
        finally:
            self._compacting.discard(document_id)

    def recheck_soon(self) -> None:
        """Re-check every peer's access now (membership changed); any thread may call it."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._recheck_now.set)

    async def recheck(self) -> None:
        """Close the connections of peers who lost the document; follow role changes."""
        for document_id, room in list(self.rooms.items()):
            verdicts: dict[str, bool | None] = {}  # one check per user and document
            for peer in list(room.peers):
                try:
                    if peer.username not in verdicts:
                        verdicts[peer.username] = await self.check_access(peer, document_id)
                    allowed = verdicts[peer.username]
                except Exception:
                    log.exception("Re-checking %s on %s failed", peer.username, document_id)
                    continue
                if peer not in room.peers:  # left while it was checked
                    continue
                if allowed is None:
                    log.info("Closing %s's connection to %s: access revoked",
                             peer.username, document_id)  # fmt: skip
                    peer.can_write, peer.denied = False, True  # nothing it sent is taken now
                    self.leave(room, peer)
                    peer.close(4403, "you no longer have access to this document")
                else:
                    room.follow_role(peer, allowed)

    async def _check_forever(self) -> None:
        """Re-check every ``access_check_seconds`` (0: never on a timer) and when told to."""
        while True:
            period = self.access_check_seconds if self.access_check_seconds > 0 else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._recheck_now.wait(), period)
            self._recheck_now.clear()
            if self.rooms:
                await self.recheck()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        for handle in self._closers.values():
            handle.cancel()
        for document_id in list(self.rooms):
            await self.forget(document_id)
        sizing.shutdown()  # the size worker process, if a large document's room started it
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
