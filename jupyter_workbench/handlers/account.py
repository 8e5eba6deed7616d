"""The caller (``me``), other users, and the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import audit, invitations, notifications, users
from ..core.access import require_project
from ..core.context import Ctx
from ..core.validation import parse_time
from ..db.models import AuditEvent, Team, TeamMember
from . import schemas as S
from .base import Param, WorkbenchHandler, endpoint, page_json


class MeHandler(WorkbenchHandler):
    @endpoint(action="user.read", summary="Who am I: profile and teams", response=S.ME)
    async def get(self) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            rows = s.execute(
                select(Team.name, Team.display_name, TeamMember.role)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(TeamMember.user_id == ctx.user.id)
                .order_by(Team.name)
            )
            data = users.user_json(ctx.user, private=True)
            data["teams"] = [{"name": n, "display_name": d, "role": r} for n, d, r in rows]
            return data

        self.reply(await self.call(work))


class MyInvitationsHandler(WorkbenchHandler):
    @endpoint(
        action="user.read",
        summary="Your pending invitations",
        response=S.page_of(S.INVITATION),
        query=S.paging(invitations.INVITATION_SORTS)[:2],
    )
    async def get(self) -> None:

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = invitations.my_invitations(s, ctx, **self.page_args(sort=False))
            return page_json(page, lambda i: invitations.my_invitation_json(s, i))

        self.reply(await self.call(work, write=True))


class NotificationsHandler(WorkbenchHandler):
    @endpoint(
        action="notifications.own",
        summary="What waits for you: invitations to answer, access and promotion requests to "
        "decide in the projects you administer (newest first, at most 100 of each kind)",
        response=S.obj({"items": {"type": "array", "items": S.NOTIFICATION}}, ("items",)),
    )
    async def get(self) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return {"items": notifications.pending(s, ctx)}

        self.reply(await self.call(work, write=True))  # (stale invitations expire on the way)


class UsersHandler(WorkbenchHandler):
    @endpoint(
        action="user.read",
        summary="Find users (to add them to projects and teams)",
        response=S.page_of(S.USER),
        query=(
            Param(
                "q", {"type": "string", "maxLength": 200}, "Text in the username or display name."
            ),
            Param(
                "admin", {"type": "boolean"}, "Only administrators (true) or non-administrators."
            ),
            *S.paging(users.USER_SORTS),
        ),
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = users.list_users(
                s,
                ctx,
                q=q.get("q"),
                admins=q.get("admin"),
                **self.page_args(),
            )
            return page_json(page, users.user_json)

        self.reply(await self.call(work))


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.time.isoformat(),
        "actor": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "project": event.project_slug,
        "summary": event.summary,
        "request_id": event.request_id,
    }


def _event_filters(project_help: str) -> tuple[Param, ...]:
    return (
        Param("project", S.SLUG, project_help),
        Param(
            "action",
            {"type": "string", "maxLength": 64},
            "Exact action, or a prefix ending in '*'.",
        ),
        Param("actor", {"type": "string", "maxLength": 255}, "Username of the actor."),
        Param("object_type", {"type": "string", "maxLength": 32}),
        Param("since", S.TIME, "ISO 8601 time (inclusive)."),
        Param("until", S.TIME, "ISO 8601 time (exclusive)."),
        *S.paging(audit.AUDIT_SORTS),
    )


class _EventsHandler(WorkbenchHandler):
    """A page of audit events in ``scope``; ``?project=`` needs ``project_action`` on it."""

    scope = "audit"
    project_action = "audit.read"

    async def events(self) -> None:
        q = self.query
        since = parse_time(q["since"], "since") if "since" in q else None
        until = parse_time(q["until"], "until") if "until" in q else None

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            project_id = None
            if "project" in q:
                # (a project in the trash too, for its owner: who deleted it, and when?)
                project_id = require_project(
                    s, ctx, q["project"], self.project_action, include_deleted=True
                )[0].id
            page = audit.list_events(
                s,
                ctx,
                scope=self.scope,
                project_id=project_id,
                action=q.get("action"),
                actor=q.get("actor"),
                object_type=q.get("object_type"),
                since=since,
                until=until,
                **self.page_args(),
            )
            return page_json(page, event_json)

        self.reply(await self.call(work))


class AuditHandler(_EventsHandler):
    @endpoint(
        action="audit.list",
        summary="Audit events: of the projects you administer and your own (all, for admins)",
        response=S.page_of(S.AUDIT_EVENT),
        query=_event_filters("Only this project's events (needs its admin role)."),
    )
    async def get(self) -> None:
        await self.events()


class ActivityHandler(_EventsHandler):
    scope = "activity"
    project_action = "project.read"

    @endpoint(
        action="activity.list",
        summary="Activity feed: what happens in the projects you belong to, and your own actions",
        response=S.page_of(S.AUDIT_EVENT),
        query=_event_filters("Only this project's events."),
    )
    async def get(self) -> None:
        await self.events()
