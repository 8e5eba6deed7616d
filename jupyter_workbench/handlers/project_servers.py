"""A project's shared JupyterHub server (hub service mode): start, look, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ..core import project_servers
from ..core.context import Ctx
from ..core.errors import BadRequest, Conflict, Forbidden, NotFound, WorkbenchError
from . import hub_schemas as H
from .base import WorkbenchHandler, endpoint

T = TypeVar("T")


class HubUnavailable(WorkbenchError):
    status = 503
    code = "hub_unavailable"


def _no_hub() -> Conflict:
    return Conflict(
        "project servers need JupyterHub: run the workbench as the hub's service "
        "(hub_config/jupyterhub_config.py)",
        code="no_hub",
    )


def _from_hub(exc: Any) -> WorkbenchError:
    """A hub refusal (a quota, a bad profile ...) as the workbench error that says the same."""
    kinds: dict[int, type[WorkbenchError]] = {400: BadRequest, 403: Forbidden, 404: NotFound,
                                              409: Conflict}  # fmt: skip
    return kinds.get(exc.status, HubUnavailable)(f"JupyterHub: {exc.message}")


class ProjectServerHandler(WorkbenchHandler):
    """``/projects/{slug}/server``."""

    def hub(self) -> Any:
        return self.settings.get("workbench_hub")

    async def on_hub(self, fn: Callable[[], T]) -> T:
        """Run a (blocking) hub call on a worker thread; hub errors become API errors."""
        from ..hub.hub_api import HubAPIError

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.service.executor, fn)
        except HubAPIError as exc:
            raise _from_hub(exc) from None

    @endpoint(action="server.read", summary="The project's shared server: owner, URL, who it "
              "is shared with, whether it runs", response=H.PROJECT_SERVER,
              errors=(409,))  # fmt: skip
    async def get(self, slug: str) -> None:
        hub = self.hub()

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = project_servers.get(s, ctx, slug)
            if hub is None:
                raise _no_hub()
            return project_servers.project_server_json(row, project_servers.share_plan(s, slug))

        data = await self.call(work)
        data.update(
            await self.on_hub(lambda: hub.server_status(data["owner"], data["server_name"]))
        )
        self.reply(data)

    @endpoint(
        action="server.start",
        summary="Start the project's shared server (editors and above): the named server "
        "'project-{slug}' of whoever started it first, shared with the project's editors and "
        "above, with real-time collaboration",
        status=202,
        response=H.PROJECT_SERVER,
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        hub = self.hub()

        def plan(s: Session, ctx: Ctx) -> tuple[str, str]:
            started = project_servers.plan_start(s, ctx, slug)
            if hub is None:
                raise _no_hub()
            return started

        def record(s: Session, ctx: Ctx) -> dict[str, Any]:
            return project_servers.project_server_json(project_servers.start(s, ctx, slug))

        # the hub first: a start it refuses (a quota, a bad profile) records nothing
        profile = self.service.settings.project_server_profile
        owner, name = await self.call(plan, write=False)
        status = await self.on_hub(lambda: hub.start_server(owner, name, profile))
        data = await self.call(record)
        if (data["owner"], data["server_name"]) != (owner, name):
            # another editor's start took the project over meanwhile: theirs is the server
            status = await self.on_hub(
                lambda: hub.start_server(data["owner"], data["server_name"], profile)
            )
            await self.on_hub(lambda: hub.stop_server(owner, name))
        data.update(status)
        shares = await self.on_hub(lambda: hub.sync_shares(slug))
        data["shared_with"] = sorted(shares.users) if shares is not None else []
        data["running"] = True
        self.reply(data, status=202)

    @endpoint(action="server.stop", summary="Stop the project's shared server (editors and "
              "above; its shares stay for the next start)", status=204,
              errors=(409,))  # fmt: skip
    async def delete(self, slug: str) -> None:
        hub = self.hub()

        def target(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = project_servers.stop_target(s, ctx, slug)
            if hub is None:
                raise _no_hub()
            return project_servers.project_server_json(row)

        data = await self.call(target, write=False)
        owner, name = data["owner"], data["server_name"]
        if not (await self.on_hub(lambda: hub.server_status(owner, name)))["running"]:
            self.reply(None, status=204)  # already stopped: nothing happens, nothing to audit
            return
        await self.on_hub(lambda: hub.stop_server(owner, name))
        await self.call(lambda s, ctx: project_servers.stop(s, ctx, slug))
        self.reply(None, status=204)
