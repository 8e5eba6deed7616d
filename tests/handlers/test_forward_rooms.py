"""Client mode: a room's WebSocket forwarded to the hub's service ends as the service ended it,
with its close code and reason (4403 access revoked, 4413 too large, ...), which the lab's
editor reads to tell the user and not reconnect."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler, websocket_connect
from traitlets.config import Config

from ..conftest import TOKEN_OF

CLOSE = (4413, "this edit would make the document 40,000 bytes, past its limit of 32,768")


class _Room(WebSocketHandler):
    """Stands where the service's room is: closes on the first message as a refusal does."""

    def on_message(self, message: str | bytes) -> None:
        self.close(*CLOSE)


@pytest.fixture
def service_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = Application([(r"/services/workbench/workbench/api/v1/rooms/[0-9a-f]{32}", _Room)])
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        port.append(sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()
        server.stop()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    yield f"http://127.0.0.1:{port[0]}/services/workbench"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """A user server in client mode has no database of its own: one kind is enough."""
    target = tmp_path / "workbench.db"
    shutil.copy(sqlite_template, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def jp_server_config(jp_server_config: Config, service_url: str) -> Config:
    jp_server_config["Workbench"].update({"mode": "client", "service_url": service_url})
    return jp_server_config


async def test_a_room_closed_by_the_service_closes_with_its_code_and_reason(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:  # jp_fetch: the server listens
    url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}workbench/api/v1/rooms/{'ab' * 16}"
    ws = await websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"token {TOKEN_OF['alice']}"})
    )
    await ws.write_message(b"\x00\x02\x01\x00", binary=True)
    assert await asyncio.wait_for(ws.read_message(), 10) is None  # closed
    assert (ws.close_code, ws.close_reason) == CLOSE
