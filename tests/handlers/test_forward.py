"""Client mode (a hub user server): the workbench's URLs are forwarded to the service with the
caller's own token, and refusals leave the caller's connection usable."""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from traitlets.config import Config

from ..conftest import TOKEN_OF


class _Service(http.server.BaseHTTPRequestHandler):
    """Stands where the hub's workbench service is: echoes what reached it."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size) if size else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "auth": self.headers.get("Authorization"),
            "body": body.decode(),
        }
        out = json.dumps(seen).encode()
        self.send_response(200)
        if self.command == "POST":  # as the service answers a creation: its own URL of it
            self.send_header("Location", self.path.split("?")[0] + "/made")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def service_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/workbench"
    server.shutdown()
    server.server_close()


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


async def test_forwarding_and_refusals_share_one_connection(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:  # jp_fetch: the server listens
    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}workbench/api/v1"
    alice = {"Authorization": f"token {TOKEN_OF['alice']}"}

    locations: list[str] = []

    def work() -> list[tuple[int, Any]]:
        answers = []
        with httpx.Client(base_url=root, timeout=10) as http_client:
            for _ in range(5):
                http_client.cookies.clear()  # token callers only
                refused = http_client.post("projects", json={"name": "x"})
                answers.append((refused.status_code, None))
                http_client.cookies.clear()
                passed = http_client.post("projects", json={"name": "x"}, headers=alice)
                answers.append((passed.status_code, passed.json()))
                locations.append(passed.headers["Location"])
        return answers

    answers = await asyncio.to_thread(work)
    assert [status for status, _ in answers] == [401, 200] * 5
    seen = answers[1][1]
    assert seen["method"] == "POST" and seen["path"].endswith("/workbench/api/v1/projects")
    assert seen["auth"] == alice["Authorization"] and json.loads(seen["body"]) == {"name": "x"}
    # the service's Location, as this server's URL (the caller reaches it through here)
    assert locations == [f"{jp_base_url}workbench/api/v1/projects/made"] * 5


async def test_paths_reach_the_service_as_the_caller_wrote_them(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """Tornado decodes the path: a file named 'a?b.csv', 'c#d.csv' or 'e%41.csv' (or 'ü b')
    must not become a query, a fragment or another file on the way."""
    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}workbench/api/v1"
    alice = {"Authorization": f"token {TOKEN_OF['alice']}"}
    files = "projects/p/datasets/d/versions/v1/files"
    paths = [f"{files}/dir/a%3Fb.csv", f"{files}/c%23d.csv", f"{files}/e%2541.csv",
             f"{files}/%C3%BC%20b"]  # fmt: skip

    def work() -> list[str]:
        with httpx.Client(base_url=root, timeout=10, headers=alice) as http_client:
            return [http_client.get(f"{p}?limit=1").json()["path"] for p in paths]

    seen = await asyncio.to_thread(work)
    assert seen == [f"/services/workbench/workbench/api/v1/{p}?limit=1" for p in paths]
