"""Co-editing: edit latency, fan-out, updates/s, memory per room and storage, beside
jupyter-collaboration's notebook room.

What it measures, in one run, on two real ``jupyter server`` processes it starts on free loopback
ports (each with its own configuration, data and runtime folders in a temporary folder):

- ``ours``: the workbench (``WorkbenchIdentityProvider`` with one token per simulated user, an
  SQLite database, automatic compaction off so that storage can be seen before compaction); its
  documents' rooms at ``workbench/api/v1/rooms/{id}``, the shared type the Y.Text ``content``;
- ``jupyter-collaboration`` (the anchor): the same ``jupyter server`` without the workbench,
  with jupyter-collaboration's ``jupyter_server_ydoc`` as installed (its SQLite YStore in the
  temporary folder); its notebook rooms: ``PUT /api/collaboration/session/{path}``
  (``{"format": "json", "type": "notebook"}``) gives ``fileId`` and ``sessionId``, then the
  WebSocket ``/api/collaboration/room/json:notebook:{fileId}?sessionId=...``; the shared type is
  the Y.Text ``source`` of the notebook's first cell.

Every client behaves as y-websocket's browser provider does, built on pycrdt's sync helpers
(``create_sync_message``, ``handle_sync_message``, ``create_update_message``): sync step 1 on
connecting, the room's step 1 answered, its own edits sent, never an echo of what it applied
(pycrdt's stock ``Provider`` sends every applied update back, which would multiply a room's
incoming messages by its number of clients). All clients run in this process, over tornado
WebSockets, so their own work (49 observers' in the fan-out) is in every figure, for both servers
alike; the CPU the server and the clients spent per edit is printed under the table.

1. Memory per open room: the server's VmRSS (``/proc/<pid>/status``) before and after
   ``--rooms`` (50) documents, each holding the same ~2 KB of markdown, are opened by one client
   each (all synced, then 1 s to settle), divided by the number of rooms. One room is opened and
   kept open first, so that code loaded on first use is not counted. Informational (no goal).
2. Edit propagation latency with 2 clients: A types one character at the end of the text, B
   observes it (B's Y.Text observer sees the new length); one edit in flight at a time, one every
   ``--interval-ms`` (5) ms, ``--edits`` (500) timed after 20 untimed. p50/p99. Goal: our p50 no
   worse than jupyter-collaboration's (the issue's figure for it here: about 1.8 ms).
3. The same with ``--clients`` (50) clients in one room: one editor, 49 observers (ours: 50
   distinct users, editors of the project; the anchor: its one server user), ``--fanout-edits``
   (200) edits, one every 10 ms or when all have it; p50/p99 over every (edit, observer) pair,
   and the p99 of the last observer of each edit. Goal: our p99 <= 20 ms.
4. Updates/s one room sustains: 2 writers type ``--throughput-edits`` (10,000) single-character
   edits in all (a typing model: at a cursor that jumps every 40 edits, one edit in 10 a
   backspace), as fast as they can, each edit its own update; 2 more clients observe. The time
   runs from the first edit until both observers hold every writer's last edit.
5. Storage of those edits: ours is ``POST documents/{id}/compact``'s ``rows_before`` /
   ``bytes_before`` (the updates stored, one row each) and ``bytes_after`` (one merged row),
   beside the document's encoded size (``len(doc.get_update())`` of a writer's copy). Goal:
   after compaction within 2x the encoded size. The anchor's is its YStore's rows for the
   notebook (``SELECT count(*), sum(length(yupdate)) FROM yupdates``), once it has caught up
   (jupyter-collaboration has no compaction unless ``squash_after_inactivity_of`` is set).

Both servers are measured alternately, stage by stage. Ours commits each update to its database
before relaying it; jupyter-collaboration relays first and writes its store in the background,
one transaction per update, and falls far behind under a burst: after each of its stages the
benchmark waits (at most 30 s) until its store stops growing, so that its backlog does not load
the next stage; after the 10,000 edits it waits at most 20 s, and when the store is still
writing then its bytes are projected from the rows written so far (marked ``*``).
The 1-minute load average is printed: on a busy machine every figure is slower, the 50-client
latencies most (the server and the clients then wait for the CPU in turn, 49 times per edit).

The default run took 2-2.5 minutes on 2 cores that other work kept busy (load average 2.5-5),
20 s of it starting the servers; ``--quick`` does 200 edits, 100 fan-out edits, 2,000 throughput
edits and 20 rooms.

Run (from the repository root)::

    .venv/bin/python benchmarks/collab_bench.py
    .venv/bin/python benchmarks/collab_bench.py --quick
    .venv/bin/python benchmarks/collab_bench.py --edits 1000 --clients 50 --throughput-edits 20000

Only 127.0.0.1 is contacted. The servers are stopped and the temporary folder removed at the
end. Exit status: 0 when every stage ran without errors (goals met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pycrdt import (
    Array,
    Doc,
    Map,
    Text,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from jupyter_workbench.collab.store import DocumentStore, initial_update
from jupyter_workbench.db.database import Database

API = "/workbench/api/v1"
SERVER_START_TIMEOUT_S = 120.0
SYNC_TIMEOUT_S = 30.0
EDIT_TIMEOUT_S = 10.0
CONVERGE_TIMEOUT_S = 120.0
QUIESCE_S = 30.0  # the most the anchor's store is waited for between stages
STORE_WAIT_S = 20.0  # ... and after the throughput edits
WARMUP_EDITS = 20
FANOUT_P99_GOAL_MS = 20.0
STORAGE_GOAL_RATIO = 2.0
ANCHOR = "jupyter-collab"
SYNC, SYNC_STEP2 = YMessageType.SYNC, YSyncMessageType.SYNC_STEP2
EMPTY_UPDATE = b"\x00\x00"
SEED_TEXT = "".join(
    f"## Section {i}\n\nNotes on run {i}: learning rate 3e-4, batch 64, loss went from "
    f"{2.5 - i * 0.05:.2f} to {1.2 - i * 0.02:.2f}; next try a warm-up of {100 * i} steps.\n\n"
    for i in range(1, 17)
)[:2048]
TYPED = "the quick brown fox jumps over the lazy dog; "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def load_note() -> str:
    return f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


# -- servers --------------------------------------------------------------------------------
class Server:
    """A ``jupyter server`` subprocess on loopback, configured by a JSON file of its own."""

    def __init__(self, name: str, workdir: Path, config: dict[str, Any], token: str) -> None:
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        for sub in ("config", "data", "runtime", "root"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        server = {
            "ip": "127.0.0.1",
            "port": self.port,
            "port_retries": 0,
            "open_browser": False,
            "allow_root": True,
            "root_dir": str(workdir / "root"),
        }
        config = {**config, "ServerApp": {**server, **config.get("ServerApp", {})}}
        config.setdefault("IdentityProvider", {})["token"] = token
        (workdir / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    def start(self) -> None:
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
        }
        for key in ("DATABASE_URL", "WORKBENCH_DATA_DIR"):
            env.pop(key, None)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )

    def wait_ready(self, path: str, deadline: float) -> None:
        assert self.proc is not None
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + path, headers=self.auth(), timeout=5).ok:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.25)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"token {token or self.token}"}

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """CPU seconds the server has used (user + system)."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- clients --------------------------------------------------------------------------------
class Client:
    """One collaborator, as y-websocket's browser provider behaves: it sends sync step 1 on
    connecting, answers the room's step 1, applies what the room sends and sends its own edits
    -- never an echo of what it applied (pycrdt's ``Provider`` sends those back too, which
    would multiply the rooms' incoming messages by the number of clients)."""

    def __init__(self, url: str, token: str, text_of: Callable[[Doc], Text]) -> None:
        self.url = url
        self.token = token
        self.doc: Doc = Doc()
        self._text_of = text_of
        self._text: Text | None = None
        self._applying = False
        self._subscription = self.doc.observe(self._on_transaction)
        self.synced = asyncio.Event()
        self.ws: WebSocketClientConnection | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def text(self) -> Text:
        if self._text is None:
            self._text = self._text_of(self.doc)
        return self._text

    def _send(self, message: bytes) -> None:
        if self.ws is not None:
            sent = self.ws.write_message(message, binary=True)
            sent.add_done_callback(lambda f: f.exception())  # closed meanwhile: ignored

    def _on_transaction(self, event: TransactionEvent) -> None:
        if not self._applying and event.update != EMPTY_UPDATE:
            self._send(create_update_message(event.update))

    async def connect(self) -> Client:
        request = HTTPRequest(self.url, headers={"Authorization": f"token {self.token}"})
        self.ws = await websocket_connect(request, max_message_size=256 * 1024 * 1024)
        self.task = asyncio.ensure_future(self._read(self.ws))
        self._send(create_sync_message(self.doc))
        await asyncio.wait_for(self.synced.wait(), SYNC_TIMEOUT_S)
        return self

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while (message := await ws.read_message()) is not None:
            if not isinstance(message, bytes) or len(message) < 2 or message[0] != SYNC:
                continue  # awareness and the anchor's own messages
            self._applying = True
            try:
                reply = handle_sync_message(message[1:], self.doc)
            finally:
                self._applying = False
            if reply is not None:
                self._send(reply)
            if message[1] == SYNC_STEP2:
                self.synced.set()

    async def close(self) -> None:
        self.doc.unobserve(self._subscription)
        if self.ws is not None:
            self.ws.close()
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, 5)


async def connect_all(clients: Sequence[Client]) -> list[Client]:
    """Connect a few at a time (a burst of 50 handshakes is not what is measured)."""
    for i in range(0, len(clients), 10):
        await asyncio.gather(*(c.connect() for c in clients[i : i + 10]))
    return list(clients)


async def close_all(clients: Sequence[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


@dataclass
class Contender:
    """A server and how its rooms are reached."""

    name: str
    server: Server
    tokens: list[str]  # one per simulated user (the anchor: its one server token)
    text_of: Callable[[Doc], Text]
    new_room: Callable[[str], str]  # a fresh document -> its room's WebSocket URL
    compact: Callable[[str], dict[str, int]] | None = None  # ours: room URL -> compaction
    ystore: Path | None = None  # the anchor's YStore database
    figures: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def client(self, room: str, user: int = 0) -> Client:
        return Client(room, self.tokens[user % len(self.tokens)], self.text_of)


def our_text(doc: Doc) -> Text:
    return doc.get("content", type=Text)


def notebook_source(doc: Doc) -> Text:
    cells = doc.get("cells", type=Array)
    cell = cells[0]
    assert isinstance(cell, Map)
    source = cell["source"]
    assert isinstance(source, Text)
    return source


# -- ours -----------------------------------------------------------------------------------
def make_ours(tmp: Path, users: int) -> tuple[Server, list[str], str]:
    tokens = [secrets.token_hex(24) for _ in range(users)]
    db_url = f"sqlite:///{tmp / 'ours' / 'workbench.sqlite'}"
    config = {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_workbench": True},
            "identity_provider_class": "jupyter_workbench.identity.WorkbenchIdentityProvider",
        },
        "WorkbenchIdentityProvider": {
            "user_tokens": {t: f"user{i:02d}" for i, t in enumerate(tokens)},
            "owner_username": "bench-owner",
        },
        "Workbench": {
            "database_url": db_url,
            "data_dir": str(tmp / "ours" / "wbdata"),
            "purge_interval_seconds": 0,
            "mlflow_autostart": False,
            "collab_compact_after_updates": 10**9,  # storage is shown before compaction too
        },
    }
    server = Server("ours", tmp / "ours", config, secrets.token_hex(24))
    return server, tokens, db_url


def setup_ours(server: Server, tokens: list[str], db_url: str) -> Contender:
    """Users (each says hello once), one project owned by user00 with the others as editors."""
    http = requests.Session()

    def call(method: str, path: str, token: str, body: Any = None) -> Any:
        r = http.request(
            method, server.url + API + path, json=body, headers=server.auth(token), timeout=60
        )
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    for token in tokens:
        call("GET", "/me", token)
    slug = call("POST", "/projects", tokens[0], {"name": "Collab bench"})["slug"]
    for i in range(1, len(tokens)):
        call(
            "POST",
            f"/projects/{slug}/members",
            tokens[0],
            {"user": f"user{i:02d}", "role": "editor"},
        )
    store = DocumentStore(Database(db_url))
    counter = iter(range(10**6))

    def new_room(seed: str) -> str:
        doc = call(
            "POST",
            f"/projects/{slug}/documents",
            tokens[0],
            {"kind": "notes", "ref": f"bench-{next(counter)}"},
        )
        if seed:
            store.append(doc["id"], [initial_update(seed)])
        return f"{server.ws_url}{API}/rooms/{doc['id']}"

    def compact(room: str) -> dict[str, int]:
        return dict(call("POST", f"/documents/{room.rsplit('/', 1)[1]}/compact", tokens[0]))

    return Contender("ours", server, tokens, our_text, new_room, compact=compact)


# -- the anchor: jupyter-collaboration ------------------------------------------------------
def make_anchor(tmp: Path) -> Server:
    config = {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_workbench": False, "jupyter_server_ydoc": True}
        },
        "SQLiteYStore": {"db_path": str(tmp / "anchor" / "ystore.db")},
    }
    return Server(ANCHOR, tmp / "anchor", config, secrets.token_hex(24))


def setup_anchor(server: Server) -> Contender:
    http = requests.Session()
    counter = iter(range(10**6))

    def new_room(seed: str) -> str:
        name = f"bench-{next(counter)}.ipynb"
        notebook = {
            "cells": [
                {
                    "cell_type": "markdown",
                    "id": secrets.token_hex(4),
                    "metadata": {},
                    "source": seed,
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (server.root / name).write_text(json.dumps(notebook))
        r = http.put(
            f"{server.url}/api/collaboration/session/{name}",
            headers=server.auth(),
            json={"format": "json", "type": "notebook"},
            timeout=60,
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"session of {name}: {r.status_code} {r.text[:300]}")
        session = r.json()
        return (
            f"{server.ws_url}/api/collaboration/room/json:notebook:{session['fileId']}"
            f"?sessionId={session['sessionId']}"
        )

    ystore = server.workdir / "ystore.db"
    return Contender(ANCHOR, server, [server.token], notebook_source, new_room, ystore=ystore)


def ystore_usage(c: Contender, path: str | None = None) -> tuple[int, int]:
    """(rows, bytes) in the anchor's YStore: of one document's updates, or of all."""
    assert c.ystore is not None
    where, params = ("WHERE path = ?", (path,)) if path else ("", ())
    with contextlib.closing(sqlite3.connect(str(c.ystore), timeout=30)) as db:
        row = db.execute(
            f"SELECT count(*), coalesce(sum(length(yupdate)), 0) FROM yupdates {where}", params
        ).fetchone()
    return int(row[0]), int(row[1])


async def store_settled(
    c: Contender, limit_s: float, path: str | None = None
) -> tuple[int, int, bool, float]:
    """Wait until the anchor's YStore stops growing (no change for 1 s), at most ``limit_s``:
    (rows, bytes, whether it stopped, seconds until its last change seen)."""
    started = last_change = time.monotonic()
    last = ystore_usage(c, path)
    while True:
        await asyncio.sleep(0.25)
        now = ystore_usage(c, path)
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= 1.0:
            return (*now, True, last_change - started)
        if time.monotonic() - started > limit_s:
            return (*now, False, last_change - started)


# -- 1. memory per open room ----------------------------------------------------------------
async def memory_per_room(c: Contender, rooms: int) -> None:
    keeper = await c.client(c.new_room(SEED_TEXT)).connect()  # code loaded on first use
    urls = [c.new_room(SEED_TEXT) for _ in range(rooms)]
    await asyncio.sleep(1.0)
    before = c.server.rss_kib()
    clients = await connect_all([c.client(url) for url in urls])
    bad = [i for i, cl in enumerate(clients) if str(cl.text) != SEED_TEXT]
    if bad:
        c.errors.append(f"memory: {len(bad)} rooms did not hold the seeded text")
    await asyncio.sleep(1.0)
    after = c.server.rss_kib()
    c.figures["memory"] = (before, after, (after - before) / rooms)
    await close_all([*clients, keeper])


# -- 2./3. latency --------------------------------------------------------------------------
async def edit_latency(c: Contender, key: str, clients: int, edits: int, interval_s: float) -> None:
    """One editor types at the end of the text, one edit in flight at a time; the others
    observe. Per (edit, observer) latencies in ms, and per edit the slowest observer's."""
    url = c.new_room("")
    members = await connect_all([c.client(url, user) for user in range(clients)])
    editor, observers = members[0], members[1:]
    state = {"target": 0, "t0": 0.0}
    pending: set[int] = set()
    current: list[float] = []
    all_in = asyncio.Event()

    def observer(index: int, client: Client) -> Callable[[Any], None]:
        def on_change(_event: Any) -> None:
            if index in pending and len(client.text) >= state["target"]:
                current.append(time.perf_counter() - state["t0"])
                pending.discard(index)
                if not pending:
                    all_in.set()

        return on_change

    subscriptions = [(o.text, o.text.observe(observer(i, o))) for i, o in enumerate(observers)]
    samples: list[float] = []
    slowest: list[float] = []
    cpu = [0.0, 0.0]  # this process's and the server's CPU seconds when the timed edits begin
    try:
        for i in range(WARMUP_EDITS + edits):
            if i == WARMUP_EDITS:
                cpu = [time.process_time(), c.server.cpu_s()]
            all_in.clear()
            current.clear()
            pending.update(range(len(observers)))
            text = editor.text
            state["t0"] = time.perf_counter()
            text.insert(len(text), TYPED[i % len(TYPED)])
            state["target"] = len(text)
            try:
                await asyncio.wait_for(all_in.wait(), EDIT_TIMEOUT_S)
            except TimeoutError:
                c.errors.append(f"{key}: edit {i} did not reach {len(pending)} observers")
                break
            if i >= WARMUP_EDITS:
                samples.extend(v * 1000 for v in current)
                slowest.append(max(current) * 1000)
            wait = state["t0"] + interval_s - time.perf_counter()
            await asyncio.sleep(max(0.0, wait))
    finally:
        for text, sub in subscriptions:
            text.unobserve(sub)
        cpu = [time.process_time() - cpu[0], c.server.cpu_s() - cpu[1]]
        await close_all(members)
    timed = max(1, len(slowest))
    c.figures[key] = (samples, slowest, cpu[0] * 1000 / timed, cpu[1] * 1000 / timed)


# -- 4./5. throughput and storage -----------------------------------------------------------
async def throughput(c: Contender, edits: int, writers: int = 2, observers: int = 2) -> None:
    url = c.new_room("")
    members = await connect_all([c.client(url, user) for user in range(writers + observers)])
    typists, watchers = members[:writers], members[writers:]
    last_change = [0.0] * len(watchers)

    def watcher(index: int) -> Callable[[Any], None]:
        # one parameter: pycrdt passes the transaction too to a callback that takes two
        def on_change(_event: Any) -> None:
            last_change[index] = time.perf_counter()

        return on_change

    subs = [(w.text, w.text.observe(watcher(i))) for i, w in enumerate(watchers)]

    async def type_(writer: Client, count: int, seed: int) -> None:
        rng, cursor = random.Random(seed), 0
        for n in range(count):
            text = writer.text
            length = len(text)
            if n % 40 == 0:
                cursor = rng.randint(0, length)
            cursor = min(cursor, length)
            if cursor > 0 and rng.random() < 0.1:
                del text[cursor - 1 : cursor]
                cursor -= 1
            else:
                text.insert(cursor, TYPED[n % len(TYPED)])
                cursor += 1
            await asyncio.sleep(0)  # the provider sends it

    def complete() -> bool:
        """Every copy has every edit: the same state vector and the same text (a delete adds
        nothing to the state vector; an update always carries the whole delete set)."""
        states = {state_vector(m.doc.get_state()) for m in members}
        return len(states) == 1 and len({str(m.text) for m in members}) == 1

    try:
        started = time.perf_counter()
        share = [edits // writers + (1 if i < edits % writers else 0) for i in range(writers)]
        await asyncio.gather(
            *(type_(t, n, 11 + i) for i, (t, n) in enumerate(zip(typists, share, strict=True)))
        )
        typed = time.perf_counter() - started
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while not complete():
            if time.monotonic() > deadline:
                lengths = [len(str(m.text)) for m in members]
                states = len({state_vector(m.doc.get_state()) for m in members})
                c.errors.append(
                    f"throughput: the copies did not converge in {CONVERGE_TIMEOUT_S:.0f} s "
                    f"({states} state vectors, text lengths {lengths})"
                )
                return
            await asyncio.sleep(0.005)
        seconds = max(last_change) - started
        encoded = len(typists[0].doc.get_update())
        c.figures["throughput"] = (edits, seconds, typed, encoded, len(str(typists[0].text)))
    finally:
        for text, sub in subs:
            text.unobserve(sub)
        await close_all(members)
    if c.compact is not None:
        result = c.compact(url)
        c.figures["storage"] = (
            result["rows_before"],
            result["bytes_before"],
            result["bytes_after"],
        )
    else:
        file_id = url.split("json:notebook:", 1)[1].split("?", 1)[0]
        rows, size, settled, seconds = await store_settled(
            c, STORE_WAIT_S, f".notebook:{file_id}.y"
        )
        c.figures["storage"] = (rows, size, None)
        c.figures["store lag"] = (settled, seconds)


def state_vector(encoded: bytes) -> frozenset[tuple[int, int]]:
    """A Yjs state vector (varuint count, then client/clock varuint pairs) as a set."""
    pos = 0

    def varuint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = encoded[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    return frozenset((varuint(), varuint()) for _ in range(varuint()))


# -- the report -----------------------------------------------------------------------------
def lat(c: Contender, key: str, q: float, slowest: bool = False) -> float | None:
    if key not in c.figures:
        return None
    samples, worst, *_ = c.figures[key]
    return percentile(worst if slowest else samples, q)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def report(ours: Contender, anchor: Contender | None, args: argparse.Namespace) -> None:
    a = anchor if anchor is not None else Contender("", ours.server, [], our_text, str)
    rows: list[tuple[str, str, str, str, str]] = []

    def row(
        label: str, mine: str, theirs: str = "-", goal: str = "", ok: bool | None = None
    ) -> None:
        rows.append((label, mine, theirs, goal, verdict(ok)))

    p50, a50 = lat(ours, "two", 50), lat(a, "two", 50)
    row(
        f"2 clients: edit latency p50 ms ({args.edits} edits)",
        fmt(p50),
        fmt(a50),
        f"<= {ANCHOR}",
        None if p50 is None or a50 is None else p50 <= a50,
    )
    row("2 clients: edit latency p99 ms", fmt(lat(ours, "two", 99)), fmt(lat(a, "two", 99)))
    n = args.clients
    row(
        f"{n} clients: latency to each observer p50 ms",
        fmt(lat(ours, "fan", 50)),
        fmt(lat(a, "fan", 50)),
    )
    f99 = lat(ours, "fan", 99)
    row(
        f"{n} clients: latency to each observer p99 ms",
        fmt(f99),
        fmt(lat(a, "fan", 99)),
        f"<= {FANOUT_P99_GOAL_MS:.0f}",
        None if f99 is None else f99 <= FANOUT_P99_GOAL_MS,
    )
    row(
        f"{n} clients: latency to the last observer p99 ms",
        fmt(lat(ours, "fan", 99, True)),
        fmt(lat(a, "fan", 99, True)),
    )

    def rate(c: Contender) -> str:
        if "throughput" not in c.figures:
            return "-"
        edits, seconds, *_ = c.figures["throughput"]
        return f"{edits / seconds:,.0f}"

    row(
        f"updates/s one room sustains (2 writers, {args.throughput_edits:,} edits)",
        rate(ours),
        rate(a),
    )

    def memory(c: Contender) -> str:
        return f"{c.figures['memory'][2]:,.0f}" if "memory" in c.figures else "-"

    row(f"memory per open room, KiB (RSS, {args.rooms} rooms, ~2 KB text)", memory(ours), memory(a))

    def stored(c: Contender, i: int) -> str:
        if "storage" not in c.figures or c.figures["storage"][i] is None:
            return "-"
        return f"{c.figures['storage'][i]:,}"

    edits = args.throughput_edits
    lagging = "store lag" in a.figures and not a.figures["store lag"][0]
    a_rows, a_bytes = stored(a, 0), stored(a, 1)
    if lagging and a.figures["storage"][0]:
        rows_, bytes_, _ = a.figures["storage"]
        a_rows, a_bytes = f"{rows_:,}*", f"~{bytes_ / rows_ * edits:,.0f}*"
    row(f"storage after {edits:,} edits: rows", stored(ours, 0), a_rows)
    row(f"storage after {edits:,} edits: bytes (before compaction)", stored(ours, 1), a_bytes)
    row("storage after compaction: bytes", stored(ours, 2), "(none)")
    encoded = ours.figures["throughput"][3] if "throughput" in ours.figures else None
    a_encoded = a.figures["throughput"][3] if "throughput" in a.figures else None
    row("the document's encoded size: bytes", fmt(encoded, ","), fmt(a_encoded, ","))
    ratio = None
    if encoded and "storage" in ours.figures:
        ratio = ours.figures["storage"][2] / encoded
    row(
        "after compaction / encoded size",
        fmt(ratio, ".2f"),
        "-",
        f"<= {STORAGE_GOAL_RATIO:.0f}x",
        None if ratio is None else ratio <= STORAGE_GOAL_RATIO,
    )

    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    widths = [
        max(w, len(h)) for w, h in zip(widths, ("", "ours", ANCHOR, "goal", "verdict"), strict=True)
    ]
    head = ("", "ours", ANCHOR, "goal", "")
    print()
    print(
        f"  {head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]:>{widths[2]}}  "
        f"{head[3]:<{widths[3]}}  {head[4]}"
    )
    for label, mine, theirs, goal, ok in rows:
        print(
            f"  {label:<{widths[0]}}  {mine:>{widths[1]}}  {theirs:>{widths[2]}}  "
            f"{goal:<{widths[3]}}  {ok}".rstrip()
        )
    if "store lag" in a.figures:
        settled, seconds = a.figures["store lag"]
        rows_ = a.figures["storage"][0]
        if settled:
            print(
                f"  ({ANCHOR}'s store finished writing the {edits:,} edits {seconds:.1f} s after "
                "the observers had them all)"
            )
        else:
            print(
                f"  (* {ANCHOR}'s store had written {rows_:,} rows {seconds:.0f} s after the "
                f"observers had every edit, and was still writing; bytes projected to {edits:,})"
            )
    for key, what in (("two", "2 clients"), ("fan", f"{args.clients} clients")):
        for c in (ours, a):
            if key in c.figures:
                _, _, clients_ms, server_ms = c.figures[key]
                print(
                    f"  ({c.name}, {what}: CPU per edit: the server {server_ms:.1f} ms, the "
                    f"clients (all in this process) {clients_ms:.1f} ms)"
                )
    for c in (ours, a):
        if "throughput" in c.figures:
            edits_, seconds, typed, _encoded, chars = c.figures["throughput"]
            print(
                f"  ({c.name}: {edits_:,} edits typed in {typed:.2f} s, all observed after "
                f"{seconds:.2f} s; final text {chars:,} characters)"
            )
        if "memory" in c.figures:
            before, after, _ = c.figures["memory"]
            print(
                f"  ({c.name}: server RSS {before / 1024:.1f} MiB before the rooms, "
                f"{after / 1024:.1f} MiB after)"
            )


# -- main -----------------------------------------------------------------------------------
async def run_stages(contenders: Sequence[Contender], args: argparse.Namespace) -> None:
    stages: list[tuple[str, Callable[[Contender], Any]]] = [
        ("memory", lambda c: memory_per_room(c, args.rooms)),
        ("2 clients", lambda c: edit_latency(c, "two", 2, args.edits, args.interval_ms / 1000)),
        (
            f"{args.clients} clients",
            lambda c: edit_latency(c, "fan", args.clients, args.fanout_edits, 0.010),
        ),
        ("throughput", lambda c: throughput(c, args.throughput_edits)),
    ]
    for name, stage in stages:
        for c in contenders:
            started = time.perf_counter()
            try:
                await stage(c)
            except Exception as exc:  # reported; the other stages still run
                c.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            elapsed, note = time.perf_counter() - started, ""
            if c.ystore is not None and name != "throughput":
                # its store writes in the background: let it finish before the next stage
                rows, _, settled, seconds = await store_settled(c, QUIESCE_S)
                note = (
                    f"; its store {'caught up' if settled else 'still writing'} after "
                    f"{seconds:.1f} s more ({rows:,} rows)"
                )
            print(
                f"  {name}: {c.name} done in {elapsed:.1f} s{note}",
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 edits, 100 fan-out edits, 2,000 throughput edits, 20 rooms",
    )
    parser.add_argument("--edits", type=int, help="timed edits with 2 clients (default 500)")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="one edit every ... ms")
    parser.add_argument("--clients", type=int, default=50, help="clients in the fan-out room")
    parser.add_argument("--fanout-edits", type=int, help="timed fan-out edits (default 200)")
    parser.add_argument("--throughput-edits", type=int, help="edits in all (default 10,000)")
    parser.add_argument("--rooms", type=int, help="rooms opened for memory (default 50)")
    parser.add_argument(
        "--skip-anchor",
        action="store_true",
        help="measure ours only (no jupyter-collaboration server)",
    )
    args = parser.parse_args(argv)
    args.edits = args.edits or (200 if args.quick else 500)
    args.fanout_edits = args.fanout_edits or (100 if args.quick else 200)
    args.throughput_edits = args.throughput_edits or (2000 if args.quick else 10_000)
    args.rooms = args.rooms or (20 if args.quick else 50)
    if min(args.edits, args.fanout_edits, args.throughput_edits, args.rooms) < 1:
        parser.error("counts must be positive")
    if not 2 <= args.clients <= 200 or args.interval_ms < 0:
        parser.error("--clients must be 2..200 and --interval-ms >= 0")
    print(
        f"co-editing benchmark: ours vs {ANCHOR} (jupyter_server_ydoc's notebook room); "
        f"{args.edits} edits with 2 clients, {args.fanout_edits} with {args.clients}, "
        f"{args.throughput_edits:,} for updates/s and storage, {args.rooms} rooms for memory; "
        f"{load_note()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="wb_collabbench_") as tmp_name:
        tmp = Path(tmp_name)
        ours_server, tokens, db_url = make_ours(tmp, args.clients)
        servers = [ours_server] + ([] if args.skip_anchor else [make_anchor(tmp)])
        try:
            started = time.perf_counter()
            for server in servers:
                server.start()
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            ours_server.wait_ready(f"{API}/openapi.json", deadline)
            if len(servers) > 1:
                servers[1].wait_ready("/api/status", deadline)
            ours = setup_ours(ours_server, tokens, db_url)
            anchor = setup_anchor(servers[1]) if len(servers) > 1 else None
            print(f"  servers up and set up in {time.perf_counter() - started:.1f} s", flush=True)
            contenders = [ours] + ([anchor] if anchor is not None else [])
            asyncio.run(run_stages(contenders, args))
        except BaseException:
            for server in servers:
                print(
                    f"--- {server.name} server log (last lines) ---\n{server.tail()}",
                    file=sys.stderr,
                )
            raise
        finally:
            for server in servers:
                server.stop()
        print(f"\nresults ({load_note()}):")
        report(ours, anchor, args)
        errors = [f"{c.name}: {e}" for c in contenders for e in c.errors]
        for error in errors[:10]:
            print(f"  error: {error}")
        print(f"\nerrors: {len(errors)}")
        if errors:
            for server in servers:
                print(
                    f"--- {server.name} server log (last lines) ---\n{server.tail(1500)}",
                    file=sys.stderr,
                )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
