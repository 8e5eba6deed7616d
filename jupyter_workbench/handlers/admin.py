"""The administrators' API behind the admin panel: people, pending sign-ups (from the hub)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from ..core import admin, audit, users
from ..core.access import require_admin
from ..core.context import Ctx
from ..core.errors import BadRequest, Conflict, NotFound, WorkbenchError
from ..hub.hub_client import HubRefused, HubUnavailable, hub_request
from ..hub.usage_sync import reconcile_with_hub
from . import hub_schemas as H
from .base import Param, WorkbenchHandler, endpoint
from .schemas import paging

SIGNUPS_API = "workbench/signups"


class HubError(WorkbenchError):
    status = 502
    code = "hub_error"


def _hub_failure(exc: Exception) -> WorkbenchError:
    if isinstance(exc, HubUnavailable):
        return Conflict(f"sign-ups live in JupyterHub: {exc}", code="no_hub")
    assert isinstance(exc, HubRefused)
    if exc.status == 404:
        return NotFound(exc.message)
    if exc.status in (400, 409):
        return (BadRequest if exc.status == 400 else Conflict)(exc.message)
    return HubError(f"JupyterHub refused: {exc.message} ({exc.status})")


class PeopleHandler(WorkbenchHandler):
    @endpoint(
        action="admin.read",
        summary="Every user with their teams, running servers and this month's hours "
        "(administrators)",
        response=H.PEOPLE,
        query=(
            Param("q", {"type": "string", "maxLength": 200}, "Text in the name."),
            Param(
                "left",
                {"type": "boolean"},
                "true: the users the hub no longer has "
                "(deleted there) instead; their history and memberships stay.",
            ),
            *paging(admin.PEOPLE_SORTS),
        ),
    )
    async def get(self) -> None:
        q, left, page = self.query.get("q"), bool(self.query.get("left")), self.page_args()
        self.reply(await self.call(lambda s, ctx: admin.people(s, ctx, q=q, left=left, **page)))


class ReconcileHandler(WorkbenchHandler):
    @endpoint(
        action="usage.admin",
        summary="Check usage against the hub's running servers now: runs of servers the hub no "
        "longer has are ended (administrators; also done periodically)",
        response=H.SERVERS,
        errors=(409, 502),
    )
    async def post(self) -> None:
        await self.call(lambda s, ctx: require_admin(ctx, "reconcile usage"))
        try:
            ended = await reconcile_with_hub(self.service)
        except HubUnavailable as exc:
            raise Conflict(f"usage comes from JupyterHub: {exc}", code="no_hub") from None
        except HubRefused as exc:
            raise _hub_failure(exc) from None
        self.reply({"items": ended})


class SignupsHandler(WorkbenchHandler):
    @endpoint(action="signups.admin", summary="Sign-ups waiting for approval (administrators)",
              response=H.SIGNUPS, errors=(409, 502))  # fmt: skip
    async def get(self) -> None:
        await self.call(lambda s, ctx: require_admin(ctx, "manage sign-ups"))
        try:
            data = await hub_request("GET", SIGNUPS_API)
        except HubRefused as exc:
            if exc.status == 404:  # the hub logs users in through OAuth: no sign-ups there
                raise Conflict(
                    "this hub logs users in through an OAuth provider: there are no sign-ups "
                    "to approve",
                    code="no_signups",
                ) from None
            raise _hub_failure(exc) from None
        except HubUnavailable as exc:
            raise _hub_failure(exc) from None
        self.reply({"items": data.get("items", [])})


class SignupHandler(WorkbenchHandler):
    @endpoint(
        action="signups.admin",
        summary="Approve or discard a sign-up (administrators)",
        body=H.SIGNUP_ACTION,
        example={"action": "approve"},
        response=H.SIGNUP_DONE,
        errors=(409, 502),
    )
    async def post(self, username: str) -> None:
        action = self.body["action"]
        await self.call(lambda s, ctx: require_admin(ctx, "manage sign-ups"))
        try:
            path = f"{SIGNUPS_API}/{quote(username, safe='')}"  # 'ann?x' is not 'ann'
            await hub_request("POST", path, {"action": action})
        except (HubUnavailable, HubRefused) as exc:
            raise _hub_failure(exc) from None

        def record(s: Session, ctx: Ctx) -> dict[str, Any]:
            audit.record(s, ctx, f"signup.{action}", "user", username)
            if action == "approve":  # known at once: quotas can be set before the first visit
                users.ensure_known_user(s, username)
            return {"name": username, "action": action}

        self.reply(await self.call(record, write=True))
