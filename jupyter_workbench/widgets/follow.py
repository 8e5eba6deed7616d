"""Following a run from the kernel: a background thread listens to the run's live WebSocket
(``runs/{id}/live``: points as they are logged) and polls the run's status; where the socket
cannot be opened it polls the metric history instead. Callbacks run on that thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..client.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

TERMINAL = ("FINISHED", "FAILED", "KILLED")
Points = list[dict[str, Any]]


class RunFollower:
    """Calls ``on_points(points)`` with new points, ``on_run(info)`` with the run's status and
    latest metric steps every ``status_interval`` s (at once when the socket says the status
    changed), and ``on_tick()`` every ``tick`` s, until the run ends (after one last
    ``on_run``) or ``stop()``."""

    def __init__(
        self,
        client: Client,
        project: str,
        run_id: str,
        *,
        on_points: Callable[[Points], None],
        on_run: Callable[[dict[str, Any]], None],
        on_tick: Callable[[], None],
        on_error: Callable[[str], None] | None = None,
        status_interval: float = 1.0,
        tick: float = 0.25,
        websocket: bool = True,
    ) -> None:
        self.client, self.project, self.run_id = client, project, run_id
        self.on_points, self.on_run, self.on_tick = on_points, on_run, on_tick
        self.on_error = on_error  # the status poll failed ("" once it works again)
        self.status_interval, self.tick = status_interval, tick
        self.use_websocket = websocket
        self.mode = "starting"  # then "websocket" or "polling", "stopped" at the end
        self.connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._poke: asyncio.Event | None = None  # a status change came over the socket
        self._halted = False
        self._thread = threading.Thread(
            target=self._run, name=f"workbench-follow-{run_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        self._halted = True  # seen by a thread still connecting (no _stop to set yet)
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(wait)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            self.mode = "stopped"
            self.connected.set()
            loop.close()

    async def _main(self) -> None:
        self._stop, self._poke = asyncio.Event(), asyncio.Event()
        socket = await self._connect() if self.use_websocket else None
        if self._halted:
            self._stop.set()
        self.mode = "websocket" if socket is not None else "polling"
        self.connected.set()
        tasks = [asyncio.ensure_future(self._status()), asyncio.ensure_future(self._ticks())]
        if socket is not None:
            tasks.append(asyncio.ensure_future(self._listen(socket)))
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if socket is not None:
                socket.close()
            self.on_tick()  # the last points reach the view

    async def _connect(self) -> Any:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = self.client.api_url(f"runs/{quote(self.run_id, safe='')}/live")
        url = "ws" + url[len("http") :] if url.startswith("http") else url
        token = self.client.token
        headers = {"Authorization": f"token {token}"} if token else {}
        try:
            request = HTTPRequest(url, headers=headers, connect_timeout=10, request_timeout=10)
            return await websocket_connect(request)
        except Exception:  # no socket (a proxy without WebSockets ...): poll instead
            return None

    async def _listen(self, socket: Any) -> None:
        while True:
            message = await socket.read_message()
            if message is None:  # closed by the server: keep following by polling
                self.mode = "polling"
                return
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                data = json.loads(message)
                if data.get("metrics"):
                    self.on_points(list(data["metrics"]))
                if data.get("status") and self._poke is not None:
                    self._poke.set()  # check the run now, not at the next poll

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.on_tick()

    async def _status(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None and self._poke is not None
        while True:
            try:
                info = await loop.run_in_executor(None, self._fetch_run)
            except (WorkbenchError, KeyError, TypeError) as exc:  # for now: try again
                info = None
                if self.on_error is not None:  # said: the chart looked live, and stood still
                    self.on_error(getattr(exc, "message", None) or str(exc))
            if info is not None:
                if self.on_error is not None:
                    self.on_error("")
                self.on_run(info)
                if info["status"] in TERMINAL:
                    self._stop.set()
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.status_interval)
            self._poke.clear()

    def _fetch_run(self) -> dict[str, Any]:
        return {**run_info(self.client, self.project, self.run_id), "polling": self.mode}


def run_info(client: Any, project: str, run_id: str) -> dict[str, Any]:
    """A run's ``status``, ``run_name`` and the ``latest`` step of each metric (MLflow
    ``runs/get`` through the proxy)."""
    url = f"{client.mlflow_url(project)}/api/2.0/mlflow/runs/get"
    run = client.request("GET", url, params={"run_id": run_id})["run"]
    latest = {m["key"]: int(m.get("step", 0)) for m in run.get("data", {}).get("metrics", [])}
    name = str(run["info"].get("run_name") or "")
    return {"status": run["info"]["status"], "run_name": name, "latest": latest}
