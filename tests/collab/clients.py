"""Real co-editing clients for the tests: pycrdt's stock ``Provider`` over a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Provider, Text
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from jupyter_workbench.collab import protocol as P


class Channel:
    """pycrdt's Channel over a tornado WebSocket client; keeps every message it received."""

    def __init__(self, ws: WebSocketClientConnection, path: str) -> None:
        self.ws = ws
        self._path = path
        self.received: list[bytes] = []

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionError:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self.ws.write_message(message, binary=True)

    async def recv(self) -> bytes:
        message = await self.ws.read_message()
        if message is None:
            raise ConnectionError("closed")
        assert isinstance(message, bytes)
        self.received.append(message)
        return message


class Collaborator:
    """One user's document, synced with a room while connected; edits also work offline."""

    def __init__(self, ws_url: str, token: str, document_id: str, doc: Doc | None = None) -> None:
        self.url = f"{ws_url}/workbench/api/v1/rooms/{document_id}"
        self.token = token
        self.doc: Doc = doc if doc is not None else Doc()
        if "content" not in self.doc:
            self.doc["content"] = Text()
        self.channel: Channel | None = None
        self.provider: Provider | None = None
        self._task: asyncio.Task[Any] | None = None

    @property
    def text(self) -> Text:
        return self.doc.get("content", type=Text)

    async def connect(self, *, synced: bool = True) -> Collaborator:
        request = HTTPRequest(self.url, headers={"Authorization": f"token {self.token}"})
        ws = await websocket_connect(request)
        self.channel = Channel(ws, self.url)
        self.provider = Provider(self.doc, self.channel)
        self._task = asyncio.ensure_future(self.provider.start())
        await asyncio.wait_for(self.provider.started.wait(), 10)
        if synced:
            await asyncio.wait_for(self.provider.synced.wait(), 10)
        return self

    async def send_raw(self, message: bytes) -> None:
        assert self.channel is not None
        await self.channel.send(message)

    def messages(self, kind: int) -> list[bytes]:
        return [m for m in (self.channel.received if self.channel else []) if m[0] == kind]

    def awareness_states(self) -> dict[int, Any]:
        """The last awareness state this client heard of each client id."""
        states: dict[int, Any] = {}
        for message in self.messages(P.AWARENESS):
            _kind, _step, payload = P.parse(message)
            for entry in P.decode_awareness(payload):
                states[entry.client_id] = entry.state
        return states

    @property
    def close_code(self) -> int | None:
        return self.channel.ws.close_code if self.channel else None

    async def closed(self, timeout: float) -> bool:
        """Wait until the server closes the connection."""
        assert self.channel is not None
        ws = self.channel.ws
        deadline = time.monotonic() + timeout
        while ws.close_code is None and ws.protocol is not None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def disconnect(self) -> None:
        if self.provider is not None and self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await self.provider.stop()
        if self.channel is not None:
            self.channel.ws.close()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 5)
        self.channel = self.provider = self._task = None


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)
