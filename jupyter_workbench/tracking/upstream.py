"""The connection to the MLflow server behind the proxy (unix socket or URL), with the lookups
the proxy needs to find which experiment a run or a logged model belongs to."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

import httpx

from ..core.errors import WorkbenchError
from .supervisor import MlflowSupervisor

CACHE_SIZE = 50_000
# An idle connection is dropped after this long, well before the server's own keep-alive
# limit (uvicorn's is 5 s): at equal limits a request could go out on a connection the server
# was closing at that moment, and fail with "Server disconnected without sending a response".
KEEPALIVE_EXPIRY_S = 2.0


class MlflowUnavailable(WorkbenchError):
    """The tracking server is not (yet) answering."""

    status = 503
    code = "tracking_unavailable"


class Upstream:
    """An async HTTP client of the tracking server; lookups are cached (runs never move)."""

    def __init__(self, url: str = "", supervisor: MlflowSupervisor | None = None) -> None:
        self.supervisor = supervisor
        if supervisor is not None:
            self.socket: str | None = str(supervisor.socket)
            self.base = "http://localhost"
        elif url.startswith("unix:"):
            self.socket, self.base = url[len("unix:") :], "http://localhost"
        else:
            self.socket, self.base = None, url.rstrip("/")
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run_experiment: OrderedDict[str, str] = OrderedDict()
        self._model_experiment: OrderedDict[str, str] = OrderedDict()

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            limits = httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S)
            # a socket needs its own transport; a URL keeps httpx's (and its proxy settings)
            transport = (
                httpx.AsyncHTTPTransport(uds=self.socket, limits=limits) if self.socket else None
            )
            self._client = httpx.AsyncClient(
                base_url=self.base, transport=transport, limits=limits,
                timeout=httpx.Timeout(300, connect=10),
            )  # fmt: skip
            self._loop = loop
        return self._client

    async def ready(self, timeout: float = 120.0) -> None:
        """Wait for a managed server to answer (started on demand)."""
        if self.supervisor is None:
            return
        if not self.supervisor.ready:
            self.supervisor.ensure_started()
            await asyncio.get_running_loop().run_in_executor(
                None, self.supervisor.wait_ready, timeout
            )
        if not self.supervisor.ready:
            raise MlflowUnavailable(
                "the MLflow tracking server is not ready yet; try again shortly"
            )

    async def get_json(self, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        return await self._json("GET", path, params=params)

    async def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await self._json("POST", path, json=body)

    async def delete_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await self._json("DELETE", path, json=body)

    async def _json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        await self.ready()
        try:
            response = await self.client().request(method, path, **kw)
        except httpx.TransportError as exc:
            raise MlflowUnavailable(failure(exc)) from exc
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def experiment_of_run(self, run_id: str) -> str | None:
        if run_id in self._run_experiment:
            return self._run_experiment[run_id]
        status, data = await self.get_json("/api/2.0/mlflow/runs/get", {"run_id": run_id})
        if status != 200 or not data:
            return None
        experiment = str(data["run"]["info"]["experiment_id"])
        _remember(self._run_experiment, run_id, experiment)
        return experiment

    async def artifact_root(self, kind: str, object_id: str) -> str | None:
        """Where a run's (``kind`` "run") or a logged model's ("logged_model") artifacts lie:
        MLflow's URI of that folder; None if MLflow knows no such thing."""
        if kind == "run":
            status, data = await self.get_json("/api/2.0/mlflow/runs/get", {"run_id": object_id})
            keys = ("run", "info", "artifact_uri")
        else:
            path = f"/api/2.0/mlflow/logged-models/{quote(object_id, safe='')}"
            status, data = await self.get_json(path, {})
            keys = ("model", "info", "artifact_uri")
        for key in keys:
            data = data.get(key) if status == 200 and isinstance(data, dict) else None
        return data if isinstance(data, str) and data else None

    async def experiment_of_logged_model(self, model_id: str) -> str | None:
        if model_id in self._model_experiment:
            return self._model_experiment[model_id]
        # a body's model_id is any text: one path segment, whatever it holds
        path = f"/api/2.0/mlflow/logged-models/{quote(model_id, safe='')}"
        status, data = await self.get_json(path, {})
        if status != 200:
            return None
        try:
            experiment = str(data["model"]["info"]["experiment_id"])
        except (KeyError, TypeError):
            return None
        _remember(self._model_experiment, model_id, experiment)
        return experiment

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _remember(cache: OrderedDict[str, str], key: str, value: str) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def failure(exc: httpx.TransportError) -> str:
    """What went wrong talking to MLflow, in words (no URLs or internals)."""
    if isinstance(exc, httpx.TimeoutException):
        what = "it did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        what = "it could not be reached"
    else:
        what = "it dropped the connection"
    return f"the MLflow server failed to answer: {what}"
