"""What JupyterHub's spawn hooks ask the workbench (never users): may this server start, and
with which environment; and that a server stopped.

The hub presents ``Workbench.hub_internal_token`` in ``X-Workbench-Hub-Token``; the user comes
from the hub's own model of them. A start checks the quotas and records a usage run in one
transaction (so two spawns cannot both take the last GPU), and answers the user's secrets for
the server's environment.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy.orm import Session

from ..core import project_servers, quotas, usage, user_secrets
from ..core.context import Ctx, Identity
from ..core.errors import Forbidden
from .base import ApiError, WorkbenchHandler, endpoint
from .schemas import obj

HUB_USER = obj(
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "admin": {"type": "boolean"},
        "groups": {
            "type": "array",
            "items": {"type": "string", "maxLength": 255},
            "maxItems": 1000,
        },
    },
    ("name",),
)
SERVER_NAME = {"type": "string", "maxLength": 255}
SPAWN = obj(
    {
        "user": HUB_USER,
        "server_name": SERVER_NAME,
        "profile": {"type": "string", "minLength": 1, "maxLength": 64},
        "gpus": {"type": "integer", "minimum": 0, "maximum": 1024},
    },
    ("user", "profile", "gpus"),
)
SPAWN_REPLY = obj(
    {"run_id": {"type": "integer"}, "environment": {"type": "object"}}, ("run_id", "environment")
)
STOP = obj({"user": HUB_USER, "server_name": SERVER_NAME}, ("user",))


class HubInternalHandler(WorkbenchHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        method = getattr(self, (self.request.method or "get").lower(), None)
        if getattr(method, "endpoint", None) is not None:  # (other methods: 405)
            self.check_hub()  # before the body is looked at: a user learns nothing from it

    def check_hub(self) -> None:
        expected = self.service.settings.hub_internal_token
        given = self.request.headers.get("X-Workbench-Hub-Token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(Forbidden("only the hub itself calls this endpoint"))

    def hub_identity(self) -> Identity:
        user = self.body["user"]
        groups = tuple(sorted(str(g) for g in user.get("groups", ())))
        return Identity(
            username=user["name"],
            display_name=user["name"],
            is_admin=bool(user.get("admin", False)),
            groups=groups,
        )


class HubSpawnHandler(HubInternalHandler):
    @endpoint(
        action="hub.internal",
        summary="The hub asks before starting a server: quota check, usage run, environment",
        public=True,
        errors=(403,),
        body=SPAWN,
        response=SPAWN_REPLY,
        example={"user": {"name": "{username}"}, "profile": "cpu", "gpus": 0},
    )
    async def post(self) -> None:
        b = self.body
        keys = self.service.keyring()

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            quotas.lock_spawns(s)
            name = b.get("server_name", "")
            quotas.check_spawn(s, ctx.user, profile=b["profile"], gpus=b["gpus"], server_name=name)
            project = project_servers.run_project(s, ctx.user, name)
            run = usage.start_run(s, ctx, server_name=name, profile=b["profile"], gpus=b["gpus"],
                                  project=project)  # fmt: skip
            return {"run_id": run.id, "environment": user_secrets.environment_of(s, ctx.user, keys)}

        data = await self.service.acall(
            self.hub_identity(), work, write=True, request_id=self.request_id
        )
        self.set_header("Cache-Control", "no-store")
        self.reply(data)


class HubStopHandler(HubInternalHandler):
    @endpoint(
        action="hub.internal",
        summary="The hub reports that a server stopped (ends its usage run)",
        public=True,
        errors=(403,),
        body=STOP,
        response=obj({"stopped": {"type": "integer"}}, ("stopped",)),
        example={"user": {"name": "{username}"}},
    )
    async def post(self) -> None:
        server_name = self.body.get("server_name", "")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return {"stopped": usage.stop_run(s, ctx, server_name)}

        self.reply(
            await self.service.acall(
                self.hub_identity(), work, write=True, request_id=self.request_id
            )
        )
