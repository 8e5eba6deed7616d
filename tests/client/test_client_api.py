"""``import jupyter_workbench as wb`` against a real jupyter-server with the workbench:
projects, the current project, members, datasets (files, range reads, pandas, a local copy),
errors with the server's message, retries that end, and finding the server by itself."""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import jupyter_workbench as wb
from jupyter_workbench.client import Client, default, errors

from .conftest import FILES, seed, upload


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_projects_current_project_and_members(server_url: str, api: Any) -> None:
    seeded = await seed(api)

    def work() -> None:
        bob = Client(server_url, seeded["bob"])
        assert sorted((p.slug, p.role) for p in bob.projects()) == [
            ("lab", "viewer"),
            ("other", "owner"),
        ]
        with pytest.raises(errors.NotConfigured, match="no current project"):
            bob.project()
        lab = bob.use("lab")
        assert (lab.slug, lab.name, bob.current_project) == ("lab", "Lab", "lab")
        assert bob.project().slug == "lab"
        members = {m["member"]: m["role"] for m in lab.members()}
        assert members == {"alice": "owner", "bob": "viewer"}
        assert [d["name"] for d in lab.datasets()] == ["events"]
        bob.close()

    await asyncio.to_thread(work)


async def test_datasets_files_range_reads_pandas_and_local_copy(
    server_url: str,
    api: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        statuses: list[int] = []
        client.http.event_hooks["response"].append(lambda r: statuses.append(r.status_code))
        ds = client.datasets.get("events", version="latest")
        assert (ds.version, repr(ds)) == (1, "<DatasetVersion lab/events v1>")
        assert {f["path"]: f["size"] for f in ds.files()} == {p: len(b) for p, b in FILES.items()}
        blob = FILES["data/blob.bin"]
        statuses.clear()
        with ds.open("data/blob.bin") as fh:
            fh.seek(100_000)
            assert fh.read(50) == blob[100_000:100_050]
            fh.seek(-10, 2)
            assert fh.read() == blob[-10:]
        assert statuses and set(statuses) == {206}  # only ranges travelled
        with client.datasets.get("events", version="v1").open("notes/readme.txt", "r") as fh:
            assert fh.read() == "hello workbench\n"
        frame = ds.to_pandas("table.csv")
        assert frame.to_dict("list") == {"city": ["Oslo", "Bergen"], "people": [709000, 291000]}
        local = ds.download(progress=True)
        assert (local / "data" / "blob.bin").read_bytes() == blob
        # the copy holds the version's files and nothing else (no marker of the cache's own)
        assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == (
            sorted(FILES)
        )
        # in the cache folder's datasets/, beside its models/ and uploads/ (docs/client.md)
        assert local.is_relative_to(tmp_path / "cache" / "datasets")
        assert ds.path == local  # cached: downloaded once
        with pytest.raises(errors.NotFound, match="no file"):
            ds.open("missing.txt")
        with pytest.raises(errors.NotFound) as missing:
            client.datasets.get("events", version="v9")
        assert "v9" in missing.value.message or "9" in missing.value.message
        with pytest.raises(ValueError, match="cannot tell how to load"):
            ds.to_pandas("data/blob.bin")
        client.close()

    await asyncio.to_thread(work)
    said = capsys.readouterr().err  # the text progress bar (no notebook here)
    assert "download events v1" in said and "100%" in said


async def test_create_project_exist_ok_reuses_only_a_project_you_can_use(
    server_url: str, api: Any
) -> None:
    seeded = await seed(api)  # alice owns "lab" (bob views it); bob owns "other"

    def work() -> None:
        bob = Client(server_url, seeded["bob"])
        # by name: bob's own "Lab", not alice's project of that name (slug "lab" is hers)
        mine = bob.create_project("Lab", exist_ok=True)
        assert (mine.slug, mine.role) == ("lab-2", "owner")
        assert bob.create_project("Lab", exist_ok=True).slug == "lab-2"  # reused
        assert bob.create_project("Other", slug="other", exist_ok=True).slug == "other"
        # a slug taken by a project bob only views: the conflict, saying so
        with pytest.raises(errors.Conflict, match="'lab' exists and you are a viewer"):
            bob.create_project("Lab", slug="lab", exist_ok=True)
        with pytest.raises(errors.Conflict):  # without exist_ok: the server's own answer
            bob.create_project("Other", slug="other")
        bob.close()

    await asyncio.to_thread(work)


async def test_errors_carry_the_servers_message(server_url: str, api: Any) -> None:
    seeded = await seed(api)

    def work() -> None:
        bob = Client(server_url, seeded["bob"])
        with pytest.raises(errors.NotFound) as missing:
            bob.project("nope")
        assert missing.value.status == 404 and "nope" in missing.value.message
        with pytest.raises(errors.PermissionDenied) as denied:  # a viewer adds a member
            bob.post("projects/lab/members", {"user": "carol", "role": "viewer"})
        assert denied.value.status == 403 and denied.value.message
        with pytest.raises(errors.BadRequest) as bad:
            bob.post("projects", {"name": 5})
        assert bad.value.message == "name: must be a string"
        with pytest.raises(errors.Conflict) as clash:
            bob.post("projects", {"name": "Other", "slug": "other"})
        assert clash.value.status == 409 and "other" in clash.value.message
        with pytest.raises(errors.Unauthorized):
            Client(server_url, "not-a-token").projects()
        bob.close()

    await asyncio.to_thread(work)


async def test_wrong_names_and_versions_are_refused_before_any_request(
    server_url: str, api: Any
) -> None:
    seeded = await seed(api)

    def work() -> None:
        bob = Client(server_url, seeded["bob"], project="lab")
        # not a deep TypeError from URL quoting, a KeyError, nor "no API route"/405
        with pytest.raises(TypeError, match="name: expected a string, got int 123"):
            bob.datasets.get(123)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="name: must not be empty"):
            bob.datasets.get("")
        with pytest.raises(ValueError, match="version: must not be empty"):
            bob.datasets.get("events", version="")  # was the versions list: KeyError
        with pytest.raises(TypeError, match="version: expected a version number"):
            bob.datasets.get("events", version=True)
        with pytest.raises(TypeError, match="name: expected a string"):
            bob.datasets.versions(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tag: must not be empty"):
            bob.datasets.tag("events", "", 1)
        with pytest.raises(TypeError, match="tag: expected a string"):
            bob.datasets.untag("events", 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="slug: expected a string"):
            bob.use(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="project: expected a project's slug"):
            bob.datasets.list(5)  # type: ignore[arg-type]
        version = bob.datasets.get("events", version=1)
        with pytest.raises(TypeError, match="path: expected a string"):
            version.open(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="model reference: expected a string"):
            bob.models.get(5)  # type: ignore[arg-type]
        assert version.open("table.csv", "r").readline() == "city,people\n"
        bob.close()

    await asyncio.to_thread(work)


def test_an_address_or_timeout_that_cannot_work_is_refused_at_once() -> None:
    for url in ("notaurl", "127.0.0.1:8888", "ftp://127.0.0.1/"):
        with pytest.raises(ValueError, match=r"^url: .* is not a server's address"):
            Client(url, "t")
    for timeout in (-1, 0, "30", True):
        with pytest.raises(ValueError, match=r"^timeout: must be a number of seconds above 0"):
            Client("http://127.0.0.1:9", "t", timeout=timeout)  # type: ignore[arg-type]
    assert Client("http://127.0.0.1:9/", "t", timeout=0.5).url == "http://127.0.0.1:9"


def test_retries_end_quickly_on_a_closed_port() -> None:
    client = Client(f"http://127.0.0.1:{_free_port()}", "x", retries=3, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(errors.ConnectionFailed, match="after 3 tries"):
        client.projects()
    assert time.monotonic() - started < 3


def test_a_server_that_hangs_up_is_retried_then_a_clear_error() -> None:
    """A real socket that accepts and closes at once: each try is one connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", "x", retries=4, backoff=0.01, timeout=5)
    try:
        with pytest.raises(errors.ConnectionFailed, match="after 4 tries"):
            client.projects()
        assert len(accepted) == 4
        with pytest.raises(errors.ConnectionFailed):  # a POST that may have arrived: no retry
            client.post("projects", {"name": "x"})
        assert len(accepted) == 5
    finally:
        listener.close()


class _NotAWorkbench(http.server.BaseHTTPRequestHandler):
    """What a user can reach by mistake: a login redirect, an HTML page, an HTML 404, and a
    download that breaks off midway."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.startswith("/hub/"):
            self.send_response(302)
            self.send_header("Location", "/hub/login?next=%2Fhub%2Fworkbench")
            self.end_headers()
        elif path.startswith("/page/"):
            self._html(200)
        elif path.startswith("/broken/"):
            self.send_response(200)
            self.send_header("Content-Length", str(4 << 20))
            self.end_headers()
            self.wfile.write(b"x" * (1 << 20))  # a quarter of it, then the connection drops
            self.wfile.flush()
            self.close_connection = True
        else:
            self._html(404)

    def _html(self, status: int) -> None:
        body = b"<html><body>Jupyter</body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def not_a_workbench() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAWorkbench)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_what_is_not_a_workbench_is_a_clear_error(not_a_workbench: str) -> None:
    redirected = Client(f"{not_a_workbench}/hub", "x", retries=1)
    with pytest.raises(errors.WorkbenchError, match="redirected to '/hub/login") as moved:
        redirected.projects()
    assert moved.value.code == "redirected" and "WORKBENCH_URL" in moved.value.message
    html = Client(f"{not_a_workbench}/page", "x", retries=1)
    with pytest.raises(errors.WorkbenchError, match="answered text/html, not JSON"):
        html.projects()
    missing = Client(not_a_workbench, "x", retries=1)
    with pytest.raises(errors.NotFound, match="no workbench API there") as gone:
        missing.projects()
    assert f"from {not_a_workbench}/workbench/api/v1/projects" in gone.value.message
    # the magics say it in one line
    from jupyter_workbench.client import magics

    default.connect(f"{not_a_workbench}/page", "x", retries=1)
    try:
        said = magics.run_command("projects")
        assert said.startswith("wb: error: GET ") and "not JSON" in said
        assert "\n" not in said
    finally:
        default._default = None


def test_a_download_that_breaks_off_is_a_clear_error(not_a_workbench: str) -> None:
    client = Client(not_a_workbench, "x", retries=2, backoff=0.01)
    got = 0
    with pytest.raises(errors.ConnectionFailed, match="broke off after 1,048,576 bytes"):
        for piece in client.stream_bytes(f"{not_a_workbench}/broken/file"):
            got += len(piece)
    assert got == 1 << 20


def test_a_silent_server_times_out_instead_of_hanging() -> None:
    """A server that takes the request and never answers: one timeout, said as such (each
    try waited the whole timeout again: a magic froze the kernel 3 x 30 s)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def hold() -> None:  # accepts, reads nothing, never answers
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    client = Client(f"http://127.0.0.1:{listener.getsockname()[1]}", "x", retries=3, timeout=0.3)
    try:
        with pytest.raises(errors.ConnectionFailed, match=r"did not answer within 0\.3 s \(GET "):
            client.projects()
        assert len(held) == 1
    finally:
        listener.close()
        for conn in held:
            conn.close()


async def test_the_default_connection_finds_the_server_by_itself(
    server_url: str, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = await seed(api)
    monkeypatch.setattr(default, "_default", None)
    for key in ("WORKBENCH_URL", "WORKBENCH_TOKEN", "WORKBENCH_PROJECT", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    # inside a hub user server: the hub's variables are enough
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", server_url + "/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", seeded["alice"])

    def work() -> None:
        assert [p.slug for p in wb.projects()] == ["lab"]
        wb.use("lab")
        assert wb.project().slug == "lab"
        assert [d["name"] for d in wb.datasets.list()] == ["events"]
        assert wb.datasets.get("events", version=1).to_pandas("table.csv").shape == (2, 2)
        # explicit WORKBENCH_* win, and connect() replaces the default connection
        monkeypatch.setenv("WORKBENCH_URL", server_url)
        monkeypatch.setenv("WORKBENCH_TOKEN", seeded["bob"])
        client = wb.connect(project="other")
        assert wb.connection() is default.client() is client and client.token == seeded["bob"]
        assert wb.project().slug == "other"
        client.close()

    await asyncio.to_thread(work)
    monkeypatch.setattr(default, "_default", None)


def test_no_server_anywhere_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("WORKBENCH_URL", "JUPYTERHUB_SERVICE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(errors.NotConfigured, match="WORKBENCH_URL"):
        Client()


def test_a_running_jupyter_server_is_found_from_its_runtime_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("WORKBENCH_URL", "JUPYTERHUB_SERVICE_URL", "WORKBENCH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    import json
    import os

    info = {"url": "http://127.0.0.1:1/base/", "token": "t0k", "pid": os.getpid()}
    (tmp_path / "jpserver-1.json").write_text(json.dumps(info))
    dead = {"url": "http://127.0.0.1:2/", "token": "x", "pid": 2**22 + 12345}
    (tmp_path / "jpserver-2.json").write_text(json.dumps(dead))
    client = Client()
    assert (client.url, client.token) == ("http://127.0.0.1:1/base", "t0k")


async def test_discovery_passes_over_a_newer_jupyter_server_without_the_workbench(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server_url: str, api: Any,
    not_a_workbench: str,
) -> None:  # fmt: skip
    for key in ("WORKBENCH_URL", "JUPYTERHUB_SERVICE_URL", "WORKBENCH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import json
    import os

    seeded = await seed(api)
    workbench = {"url": f"{server_url}/", "token": seeded["bob"], "pid": os.getpid()}
    plain = {"url": f"{not_a_workbench}/", "token": "other", "pid": os.getpid()}
    for name, info in (("jpserver-1.json", workbench), ("jpserver-2.json", plain)):
        (tmp_path / name).write_text(json.dumps({**info, "root_dir": str(tmp_path)}))
    old = time.time() - 60
    os.utime(tmp_path / "jpserver-1.json", (old, old))  # the plain server started later

    def work() -> None:
        client = Client()
        assert (client.url, client.token) == (server_url, seeded["bob"])
        assert {p.slug for p in client.projects()} == {"lab", "other"}

    await asyncio.to_thread(work)


def test_import_is_light_and_the_server_extension_still_loads() -> None:
    code = (
        "import sys, jupyter_workbench as wb\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('jupyter_server', 'sqlalchemy', 'tornado', 'httpx', 'mlflow', 'pandas', 'anywidget', "
        "'ipywidgets')"
        " or m.startswith('jupyter_workbench.')]\n"
        "print(heavy)\n"
        "points = wb._jupyter_server_extension_points()\n"
        "print(points[0]['module'], points[0]['app'].__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == ["[]", "jupyter_workbench.app WorkbenchApp"]


def test_httpx_is_the_transport() -> None:  # the client's one network dependency
    assert isinstance(Client("http://127.0.0.1:9", "x").http, httpx.Client)


def test_the_default_connections_datasets_and_models_take_what_a_clients_take() -> None:
    """``wb.datasets.commit(..., mode="update")`` (docs/client.md) is the Client's own call."""
    import inspect

    from jupyter_workbench.client.models import Models
    from jupyter_workbench.client.resources import Datasets

    def params(func: Any) -> list[tuple[str, Any, Any]]:
        found = inspect.signature(func).parameters.values()
        return [(p.name, p.kind, p.default) for p in found]

    for wrapper, api in ((wb.datasets, Datasets), (wb.models, Models)):
        for name, func in inspect.getmembers(api, inspect.isfunction):
            if not name.startswith("_"):
                assert params(getattr(type(wrapper), name)) == params(func), name


async def test_the_default_connection_commits_on_a_parent(
    server_url: str, api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seeded = await seed(api)
    monkeypatch.setattr(default, "_default", None)
    monkeypatch.setenv("WORKBENCH_URL", server_url)
    monkeypatch.setenv("WORKBENCH_TOKEN", seeded["alice"])
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "extra.txt").write_text("more\n")

    def work() -> None:
        wb.use("lab")
        before = {f["path"] for f in wb.datasets.get("events").files()}
        v = wb.datasets.commit("events", tmp_path / "more", mode="update", progress=False)
        assert {f["path"] for f in v.files()} == before | {"extra.txt"}
        with pytest.raises(errors.Conflict):
            wb.datasets.commit(
                "events", tmp_path / "more", parent=1, strict_parent=True, progress=False
            )
        wb.connection().close()

    await asyncio.to_thread(work)
    monkeypatch.setattr(default, "_default", None)


def test_a_second_finished_download_leaves_the_first_copy_in_place(tmp_path: Path) -> None:
    """Two processes fetching the same version: the copy put in place first stays (a reader may
    hold its files open); the later one is not swapped in underneath it."""
    from jupyter_workbench.client.cache import publish

    target = tmp_path / "datasets" / "lab" / "events" / "v1-abc"
    first, second = tmp_path / ".download-1", tmp_path / ".download-2"
    for staging in (first, second):
        (staging / "data").mkdir(parents=True)
        (staging / "data" / "a.csv").write_text(staging.name)
    assert publish(first, target) == target
    with (target / "data" / "a.csv").open() as reader:
        assert publish(second, target) == target
        assert reader.read() == ".download-1"
    assert (target / "data" / "a.csv").read_text() == ".download-1"
    assert second.is_dir()  # left for the caller to remove


async def test_a_cached_copy_written_to_or_cut_short_is_mended_on_next_use(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ds.path`` is the cache itself: its files are read-only, and one deleted or written to
    anyway is downloaded again the next time the copy is used (a later ``materialize`` copied
    the edit, or failed on the missing file, for good)."""
    seeded = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        local = client.datasets.get("events").path
        table = local / "table.csv"
        assert not table.stat().st_mode & 0o222  # read-only
        table.chmod(0o644)
        table.write_bytes(b"x" * len(FILES["table.csv"]))  # same size: an edit in place
        (local / "notes" / "readme.txt").unlink()
        again = client.datasets.get("events")
        out = again.materialize(tmp_path / "out")
        for path, data in FILES.items():
            assert (out / path).read_bytes() == data, path
            assert (local / path).read_bytes() == data, path
        assert again.path == local and not table.stat().st_mode & 0o222
        assert (out / "table.csv").stat().st_mode & 0o200  # the copies are writable
        # a copy found whole is checked against its own index: the version is not listed
        asked: list[str] = []
        client.http.event_hooks["request"].append(lambda r: asked.append(r.url.path))
        assert client.datasets.get("events").path == local
        assert len(asked) == 1 and asked[0].endswith("/versions/latest"), asked
        # the same object, its copy edited after it looked: materialize copied the edit
        same = client.datasets.get("events")
        assert same.path == local
        table.chmod(0o644)
        table.write_bytes(b"y" * len(FILES["table.csv"]))
        out2 = same.materialize(tmp_path / "out2")
        assert (out2 / "table.csv").read_bytes() == FILES["table.csv"]
        client.close()

    await asyncio.to_thread(work)


async def test_opening_one_file_does_not_list_every_file_of_the_version(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """``ds.open``/``to_pandas`` looked the file up in the whole list of the version's files,
    a page of 500 at a time; it asks for that path alone."""
    seeded = await seed(api)
    files = {f"rows/{i:04d}.csv": f"n\n{i}\n".encode() for i in range(1100)}
    files["rows/0007.csv.bak"] = b"old\n"
    await upload(api("alice"), "lab", "many", files)

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        listed: list[str] = []

        def count(request: httpx.Request) -> None:
            if request.url.path.endswith("/files"):
                listed.append(str(request.url))

        client.http.event_hooks["request"].append(count)
        ds = client.datasets.get("many")
        assert ds.to_pandas("rows/1099.csv")["n"].tolist() == [1099]
        assert ds.open("rows/0007.csv", "r").read() == "n\n7\n"
        assert len(listed) == 2, listed  # one page each, not three
        with pytest.raises(errors.NotFound, match="no file 'rows/0007'"):
            ds.open("rows/0007")  # a prefix of paths is no file
        assert len(ds.files()) == 1101
        listed.clear()
        assert ds.file("rows/0500.csv")["size"] == 6  # the list known: no request
        assert listed == []
        client.close()

    await asyncio.to_thread(work)


async def test_a_local_copy_of_many_files_is_one_download(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ds.path`` fetched a version file by file, a request each: minutes for thousands of
    small files. It reads the version's tar, once; one cut short publishes no copy."""
    seeded = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    files = {f"rows/{i:04d}.csv": f"n\n{i}\n".encode() for i in range(600)}
    files |= {"empty.txt": b"", "ünï cøde/a b.txt": b"hi\n", "big.bin": os.urandom(700_000)}
    await upload(api("alice"), "lab", "many", files)

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ds = client.datasets.get("many")
        real = client.stream_bytes

        def cut_short(url: str, chunk: int = 1 << 20) -> Iterator[bytes]:
            sent = 0
            for piece in real(url, chunk=4096):
                yield piece[: 300_000 - sent]
                sent += len(piece)
                if sent >= 300_000:
                    return

        monkeypatch.setattr(client, "stream_bytes", cut_short)
        with pytest.raises(errors.ConnectionFailed, match="broke off"):
            ds.download()
        assert list((tmp_path / "cache" / "datasets").rglob("*.csv")) == []
        monkeypatch.setattr(client, "stream_bytes", real)
        gets: list[str] = []
        client.http.event_hooks["request"].append(lambda r: gets.append(r.url.path))
        local = ds.path
        assert sum(g.endswith("/v1/archive") for g in gets) == 1, gets
        assert not any("/files/" in g for g in gets), gets
        got = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*")
               if p.is_file()}  # fmt: skip
        assert got == files
        client.close()

    await asyncio.to_thread(work)


async def test_to_pandas_reads_compressed_csv_and_json(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """``table.csv.gz`` (the usual way a CSV is kept) was 'cannot tell how to load .gz'."""
    import gzip
    import lzma

    seeded = await seed(api)
    csv = b"city,people\nOslo,709000\n"
    lines = b'{"city": "Oslo", "people": 709000}\n'
    files = {"t.csv.gz": gzip.compress(csv), "t.jsonl.xz": lzma.compress(lines)}
    await upload(api("alice"), "lab", "packed", files)

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ds = client.datasets.get("packed")
        for path in files:
            frame = ds.to_pandas(path)
            assert frame.to_dict("list") == {"city": ["Oslo"], "people": [709000]}, path
        client.close()

    await asyncio.to_thread(work)


async def test_to_pandas_of_a_file_that_is_no_such_table_names_the_file(
    server_url: str, api: Any
) -> None:
    """A file whose suffix says table but whose bytes are not one was pandas' or pyarrow's
    error ('Parquet magic bytes not found in footer', 'No columns to parse from file'),
    naming neither the file nor the version. A file of no table suffix (weights of gigabytes)
    was read whole before ``to_pandas`` said it could not tell how to load it."""
    seeded = await seed(api)
    files = {"bad.parquet": b"not parquet", "bad.json": b"{oops", "empty.csv": b"",
             "d/bin.csv": bytes(range(256)) * 10}  # fmt: skip
    await upload(api("alice"), "lab", "mixed", files)

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ds = client.datasets.get("mixed")
        for path, said in [
            ("bad.parquet", "ArrowInvalid: .*magic bytes"),
            ("bad.json", "ValueError: Expected object"),
            ("empty.csv", "EmptyDataError: No columns"),
            ("d/bin.csv", "ParserError"),
        ]:
            with pytest.raises(ValueError, match=rf"^{path} \(mixed v1\): cannot be read as a "
                               rf"table: {said}") as refused:  # fmt: skip
                ds.to_pandas(path)
            assert refused.value.__cause__ is not None
        asked: list[str] = []
        client.http.event_hooks["request"].append(lambda r: asked.append(r.url.path))
        with pytest.raises(ValueError, match=r"^w\.bin: cannot tell how to load \.bin$"):
            ds.to_pandas("w.bin")  # said before the file is fetched (it was read whole first)
        assert asked == []
        with pytest.raises(errors.NotFound, match=r"no file 'nope\.parquet'"):
            ds.to_pandas("nope.parquet")
        client.close()

    await asyncio.to_thread(work)


async def test_a_cache_folder_that_cannot_be_made_names_the_setting_and_rt_reads_text(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``WORKBENCH_CACHE_DIR`` naming a file (or a folder you cannot write) was ``[Errno 20] Not
    a directory: '.../datasets'``, not saying which setting to change, and ``~/cache`` (set in a
    notebook, unexpanded) was a folder named '~'; ``open(path, "rt")``, Python's own spelling
    of text mode, was refused."""
    seeded = await seed(api)
    taken = tmp_path / "a-file"
    taken.write_text("x")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(taken))

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ds = client.datasets.get("events")
        said = rf"^\[Errno 20\] the cache folder {taken}/datasets cannot be made \(Not a "
        with pytest.raises(NotADirectoryError, match=said + r"directory\): set WORKBENCH_CACHE"):
            ds.download()
        with pytest.raises(NotADirectoryError, match="set WORKBENCH_CACHE_DIR"):
            ds.materialize(tmp_path / "out")
        assert ds.open("notes/readme.txt", "rt").read() == "hello workbench\n"
        # "~" as a notebook or a pod spec sets it (no shell expands it): the home folder, not
        # a folder named '~' in the working directory
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("WORKBENCH_CACHE_DIR", "~/wb-cache")
        monkeypatch.chdir(tmp_path)
        assert ds.path.is_relative_to(tmp_path / "home" / "wb-cache" / "datasets")
        assert not (tmp_path / "~").exists()
        with pytest.raises(ValueError, match=r"^mode: 'r', 'rt' or 'rb', not 'w' \(datasets"):
            ds.open("notes/readme.txt", "w")
        client.close()

    await asyncio.to_thread(work)


async def test_a_pinned_version_reads_no_other_versions_file_through_dot_dot(
    server_url: str, api: Any
) -> None:
    """``read_bytes("../../v2/files/table.csv")`` on version 1 went into the URL as it was,
    which the client resolved to version 2's file: another version's bytes, from an object
    pinned to v1. ``open("/table.csv")`` said 'no file' where ``read_bytes`` read it."""
    seeded = await seed(api)
    await upload(api("alice"), "lab", "events", {"table.csv": b"a\n2\n"})

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ds = client.datasets.get("events", 1)
        for path in ("../../v2/files/table.csv", "data/../table.csv", "./table.csv", "data//x"):
            with pytest.raises(errors.NotFound, match=r"^events v1 has no file '"):
                ds.read_bytes(path)
            with pytest.raises(errors.NotFound, match=r"^events v1 has no file '"):
                ds.open(path)
        assert ds.open("/table.csv").read() == ds.read_bytes("/table.csv") == FILES["table.csv"]
        client.close()

    await asyncio.to_thread(work)


async def test_reading_a_whole_remote_file_is_not_thousands_of_small_requests(
    server_url: str, api: Any
) -> None:
    """``ds.open(p).read()`` asked for the file 8 KiB at a time, a range request each (250 for
    2 MB: io's ``readall``), and text mode (``open(p, "r")``: ``read()``, lines, ``csv``) did
    the same (its ``read1`` skipped the 1 MiB buffer)."""
    seeded = await seed(api)
    blob, text = bytes(range(256)) * 8000, b"".join(b"%d,x\n" % i for i in range(60_000))
    await upload(api("alice"), "lab", "big", {"big.bin": blob, "t.csv": text})

    def work() -> None:
        client = Client(server_url, seeded["bob"], project="lab")
        ranges: list[str | None] = []
        client.http.event_hooks["request"].append(lambda r: ranges.append(r.headers.get("range")))
        ds = client.datasets.get("big")
        ds.files()  # the sizes known: what follows is the reads alone
        ranges.clear()
        assert ds.open("big.bin").read() == blob
        assert ranges == [f"bytes=0-{len(blob) - 1}"]
        ranges.clear()
        with ds.open("big.bin") as fh:
            fh.seek(100)
            assert fh.read(10) == blob[100:110] and fh.read() == blob[110:]
        assert len(ranges) == 2, ranges  # the first buffer, then the rest
        for read in (lambda f: f.read(), lambda f: "".join(f), lambda f: "".join(f.readlines())):
            ranges.clear()
            assert read(ds.open("t.csv", "r")) == text.decode()
            assert len(ranges) == 1, len(ranges)  # (1 MiB buffers: 37 before)
        ranges.clear()
        assert len(ds.to_pandas("t.csv", header=None)) == 60_000
        assert len(ranges) <= 2, len(ranges)
        client.close()

    await asyncio.to_thread(work)
