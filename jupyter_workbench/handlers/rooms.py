"""The WebSocket room of a collaborative document: ``{base_url}workbench/api/v1/rooms/{id}``.

Speaks y-websocket's protocol (binary y-protocols sync + awareness messages), so the JavaScript
``y-websocket`` provider and pycrdt's ``Provider`` connect unchanged. Joining needs a role on the
document's project; viewers receive everything but their updates are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..collab.room import Peer, Room
from ..core.context import Identity
from ..core.errors import WorkbenchError
from ..documents_live import LiveDocuments
from ..identity import ServerIdentitySource
from ..service import WorkbenchService

# colours of collaborators' cursors (readable on light and dark themes)
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324",
           "#800000", "#808000", "#000075", "#f032e6", "#469990")  # fmt: skip


def awareness_user(identity: Identity) -> dict[str, Any]:
    """The ``user`` field of a collaborator's awareness state (JupyterLab's user model)."""
    name = identity.display_name or identity.username
    initials = "".join(part[0] for part in name.split()[:2]).upper() or name[:1].upper()
    digest = hashlib.sha256(identity.username.encode()).digest()
    return {
        "username": identity.username,
        "name": name,
        "display_name": name,
        "initials": initials,
        "color": identity.color or PALETTE[digest[0] % len(PALETTE)],
        "avatar_url": identity.avatar_url,
    }


# what a peer may leave unread (bytes) before it is dropped: at least this, or a few times the
# largest message it was sent (a big document's first sync is one message)
MAX_BACKLOG = 16 * 1024 * 1024
BACKLOG_MESSAGES = 4


class RoomHandler(WebSocketMixin, WebSocketHandler, ExtensionHandlerMixin, JupyterHandler):
    room: Room | None = None
    peer: Peer | None = None
    largest_sent = 0
    # bytes handed to the connection whose writes have not completed: the stream still holds
    # them because the peer has not read them (tornado settles a write once the socket took it)
    unsent = 0

    @property
    def live(self) -> LiveDocuments:
        live: LiveDocuments = self.settings["workbench_documents"]
        return live

    @property
    def service(self) -> WorkbenchService:
        service: WorkbenchService = self.settings["workbench_service"]
        return service

    @ws_authenticated
    async def get(self, document_id: str) -> None:
        source: ServerIdentitySource = self.extensionapp.identity_source  # type: ignore[attr-defined]
        identity = source.identity(self.current_user, self.identity_provider)

        try:
            can_write = await self.live.access(identity, document_id)
            self.room = await self.live.rooms.room(document_id)
        except WorkbenchError as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        self.peer = Peer(self, identity.username, awareness_user(identity), can_write,
                         identity=identity)  # fmt: skip
        await super().get(document_id=document_id)

    def open(self, document_id: str) -> None:
        super().open()
        assert self.room is not None and self.peer is not None
        self.live.rooms.join(self.room, self.peer)

    def send(self, message: bytes) -> None:
        """The room's way to this peer (called for every peer on every edit)."""
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            raise WebSocketClosedError()
        size = len(message)
        self.largest_sent = max(self.largest_sent, size)
        if self.unsent + size > max(MAX_BACKLOG, BACKLOG_MESSAGES * self.largest_sent):
            self.drop_behind()
            raise WebSocketClosedError()
        write_frame = getattr(conn, "_write_frame", None)
        if write_frame is not None and getattr(conn, "_compressor", None) is None:
            # one binary frame straight onto the stream: write_message would also start a task
            # per peer per edit, the larger part of a big room's fan-out cost
            sent = write_frame(True, 0x2, message)  # a closed stream settles (and silences) it
        else:
            sent = self.write_message(message, binary=True)
            sent.add_done_callback(lambda f: f.exception())  # a peer gone meanwhile: on_close
        if not sent.done():  # not all on the socket yet: what the peer has not taken
            self.unsent += size
            sent.add_done_callback(lambda _f: self._taken(size))

    def _taken(self, size: int) -> None:
        self.unsent -= size

    def drop_behind(self) -> None:
        """A peer that does not read what it is sent: out of the room now, its connection
        closed (aborted after a few seconds if it does not read that either)."""
        self.log.warning("Dropping %s from room %s: %d bytes unread",
                         self.peer and self.peer.username, self.room and self.room.document_id,
                         self.unsent)  # fmt: skip
        self.close(4408, "too far behind: reconnect to catch up")
        self.on_close()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        if self.room is None or self.peer is None:
            return None
        if isinstance(message, str):
            self.close(4400, "y-websocket messages are binary")
            self.on_close()  # out of the room now: nothing it sent after this is applied
            return None
        # a room far behind: tornado reads this connection's next message once it caught up
        return self.room.receive(self.peer, message)

    def on_close(self) -> None:
        if self.room is not None and self.peer is not None:
            room, self.room = self.room, None
            self.live.rooms.leave(room, self.peer)
