"""Live documents: the server's rooms wired to the workbench's database and access rules."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from .collab.room import Peer, Room
from .collab.rooms import RoomManager
from .collab.store import DocumentStore
from .core import documents, events
from .core.context import Identity
from .core.errors import Forbidden, NotFound
from .service import WorkbenchService

log = logging.getLogger("jupyter_workbench.collab")
_ACCESS_EVENTS = {
    events.PROJECT_MEMBERS_CHANGED,
    events.PROJECT_ACCESS_CHANGED,
    events.TEAM_MEMBER_REMOVED,
    events.TEAM_DELETED,
}


class LiveDocuments:
    def __init__(self, service: WorkbenchService) -> None:
        self.service = service
        settings = service.settings
        self.store = DocumentStore(service.db)
        # rooms store their updates here, apart from the API's threads
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workbench-collab")
        self.rooms = RoomManager(
            self.store,
            self._run,
            check_access=self._check_access,
            take_snapshot=self._auto_snapshot,
            idle_seconds=settings.collab_room_idle_seconds,
            compact_after=settings.collab_compact_after_updates,
            snapshot_minutes=settings.collab_snapshot_minutes,
            access_check_seconds=settings.collab_access_check_seconds,
            max_document_bytes=settings.collab_max_document_bytes,
            awareness_per_second=settings.collab_awareness_per_second,
            awareness_burst=settings.collab_awareness_burst,
        )
        service.events.subscribe(self._on_events)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _on_events(self, changed: list[events.Event]) -> None:
        if any(event.kind in _ACCESS_EVENTS for event in changed):
            self.rooms.recheck_soon()

    async def access(self, identity: Identity, document_id: str) -> bool:
        """Whether ``identity`` may write the document (NotFound when it may not see it)."""

        def check(s: Any, ctx: Any) -> bool:
            return documents.may_write(
                *documents.get_document(s, ctx, document_id, "documents.read")
            )

        return await self.service.acall(identity, check, write=False)

    async def _check_access(self, peer: Peer, document_id: str) -> bool | None:
        try:
            return await self.access(peer.identity, document_id)
        except (NotFound, Forbidden):
            return None

    async def _auto_snapshot(self, room: Room) -> None:
        state, text = room.doc.get_update(), room.text
        name = "auto " + datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

        def save() -> None:
            with self.service.db.transaction(write=True) as s:
                documents.add_snapshot(s, None, room.document_id, name=name, state=state,
                                       text=text, automatic=True)  # fmt: skip

        try:
            await self._run(save)
        except Exception:
            log.exception("Automatic snapshot of %s failed", room.document_id)

    async def close(self) -> None:
        await self.rooms.close()
        self._executor.shutdown(wait=True)
        self.store.close()
