"""The local spawner's own readiness check: ``start()`` returns as soon as the server answers,
so the hub (whose checks back off to seconds apart) notices it at its first try."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from jupyter_workbench.hub.spawner import wait_until_answering

from .conftest import free_port


class Answer(BaseHTTPRequestHandler):
    status = 404  # the hub accepts any answer below 500

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Failing(Answer):
    status = 502


@contextmanager
def serve_later(port: int, delay: float, handler: type[Answer]) -> Iterator[None]:
    servers: list[HTTPServer] = []

    def run() -> None:
        time.sleep(delay)
        server = HTTPServer(("127.0.0.1", port), handler)
        servers.append(server)
        server.serve_forever(poll_interval=0.05)

    threading.Thread(target=run, daemon=True).start()
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def port() -> int:
    return free_port()


async def never_exits() -> bool:
    return False


def test_returns_soon_after_a_late_server_answers(port: int) -> None:
    with serve_later(port, 0.6, Answer):
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/user/alice/api"
        assert asyncio.run(wait_until_answering(url, 0.05, 10, never_exits))
        assert 0.6 <= time.monotonic() - started < 2.5


def test_server_errors_are_not_an_answer(port: int) -> None:
    with serve_later(port, 0, Failing):
        url = f"http://127.0.0.1:{port}/user/alice/api"
        assert not asyncio.run(wait_until_answering(url, 0.05, 0.5, never_exits))


def test_gives_up_when_the_process_is_gone(port: int) -> None:
    async def exited() -> bool:
        return True

    started = time.monotonic()
    url = f"http://127.0.0.1:{port}/user/alice/api"
    assert not asyncio.run(wait_until_answering(url, 0.05, 30, exited))
    assert time.monotonic() - started < 2
