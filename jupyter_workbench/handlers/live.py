"""WebSocket of a run's live metric points and status changes (``.../runs/{run_id}/live``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..core import experiments as ex
from ..core.errors import WorkbenchError
from ..identity import ServerIdentitySource
from ..service import WorkbenchService
from ..tracking.upstream import Upstream


class RunLiveHandler(WebSocketMixin, WebSocketHandler, ExtensionHandlerMixin, JupyterHandler):
    """Sends ``{"run_id", "metrics": [{key, value, step, timestamp}], "status"?}`` messages as
    points are logged through the workbench (batch endpoint or MLflow proxy)."""

    run_id = ""
    _queue: asyncio.Queue[str] | None = None
    _pump: asyncio.Task[Any] | None = None

    @property
    def service(self) -> WorkbenchService:
        service: WorkbenchService = self.settings["workbench_service"]
        return service

    @ws_authenticated
    async def get(self, run_id: str) -> None:
        self.run_id = run_id
        source: ServerIdentitySource = self.extensionapp.identity_source  # type: ignore[attr-defined]
        identity = source.identity(self.current_user, self.identity_provider)
        store = await asyncio.get_running_loop().run_in_executor(
            None,
            self.extensionapp.tracking_store,  # type: ignore[attr-defined]
        )
        upstream: Upstream = self.settings["workbench_mlflow"]
        if store is None:
            raise web.HTTPError(503, "live updates need the MLflow database")
        await upstream.ready()
        try:
            loop = asyncio.get_running_loop()
            experiment_id, _s, _l = await loop.run_in_executor(None, store.run_state, run_id)
            await self.service.acall(
                identity,
                lambda s, ctx: ex.experiment_project(s, ctx, experiment_id, "experiments.read"),
                write=False,
            )
        except WorkbenchError as exc:
            raise web.HTTPError(exc.status, exc.message) from None
        await super().get(run_id=run_id)

    def open(self, run_id: str) -> None:
        super().open()
        self._queue = self.service.tracking_events.subscribe(run_id)
        self._pump = asyncio.ensure_future(self._forward())

    async def _forward(self) -> None:
        assert self._queue is not None
        while True:
            message = await self._queue.get()
            try:
                await self.write_message(message)
            except WebSocketClosedError:
                return

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen."""

    def on_close(self) -> None:
        if self._queue is not None:
            self.service.tracking_events.unsubscribe(self.run_id, self._queue)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(Exception):
                self._pump.exception()
