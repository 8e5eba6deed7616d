"""Project servers: one shared JupyterHub server per project, for its editors and above.

The server is the named server ``project-{slug}`` of the editor who first started it (its
owner); the hub layer starts it and shares it (JupyterHub's sharing API) with every other
user holding ``PROJECT_SERVER_ROLE`` or more on the project, directly or through a team. This
module keeps the record and says who should have a share (``share_plan``); every change that
may move that set emits ``PROJECT_ACCESS_CHANGED`` so the shares follow. If the owner drops
below editor, the next editor who starts the server becomes its owner (a fresh server of
theirs) and the old one loses its shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Project, ProjectMember, ProjectServer, User, utcnow
from . import audit, events
from .access import PROJECT_SERVER_ROLE, membership_role, require_project, users_with_role
from .context import Ctx
from .errors import NotFound

PREFIX = "project-"


def server_name(slug: str) -> str:
    return f"{PREFIX}{slug}"


@dataclass(frozen=True)
class SharePlan:
    """Who should reach a project's server: ``owner``'s ``server_name``, shared with ``users``."""

    project: str
    owner: str
    server_name: str
    users: frozenset[str]
    active: bool  # False: the project is gone or the owner is no longer an editor


def _row(s: Session, project: Project) -> ProjectServer | None:
    return s.scalar(select(ProjectServer).where(ProjectServer.project_id == project.id))


def _owner_qualifies(s: Session, row: ProjectServer) -> bool:
    return membership_role(s, row.owner, row.project) >= PROJECT_SERVER_ROLE


def _takes_over(s: Session, ctx: Ctx, row: ProjectServer | None) -> bool:
    """Whether a start by ``ctx.user`` makes them the owner (no server yet, or its owner is
    no longer an editor)."""
    return row is None or (row.owner_id != ctx.user.id and not _owner_qualifies(s, row))


def plan_start(s: Session, ctx: Ctx, slug: str) -> tuple[str, str]:
    """The server a start by ``ctx.user`` (an editor+) would start: ``(owner, server name)``.
    Writes nothing: the hub starts it first, and ``start`` records it once the hub agreed."""
    project, _ = require_project(s, ctx, slug, "server.start")
    row = _row(s, project)
    if row is None or _takes_over(s, ctx, row):
        return ctx.user.username, server_name(slug)
    return row.owner.username, row.server_name


def start(s: Session, ctx: Ctx, slug: str) -> ProjectServer:
    """Record that ``ctx.user`` (an editor+) started the project's server; returns the record
    (its owner stays who started it first while they are an editor)."""
    project, _ = require_project(s, ctx, slug, "server.start", for_update=True)
    row = _row(s, project)
    previous = None
    if row is None:
        row = ProjectServer(project_id=project.id, owner_id=ctx.user.id,
                            server_name=server_name(slug))  # fmt: skip
        s.add(row)
        s.flush()
    elif _takes_over(s, ctx, row):
        previous = {"owner": row.owner.username, "server_name": row.server_name}
        row.owner_id = ctx.user.id
        row.server_name = server_name(slug)
        s.flush()
        s.refresh(row)
        # the old owner's server loses its shares
        events.emit(s, events.PROJECT_ACCESS_CHANGED, project=slug, revoke=previous)
    row.started_at = utcnow()
    summary: dict[str, Any] = {"owner": row.owner.username, "server_name": row.server_name}
    if previous:
        summary["previous_owner"] = previous["owner"]
    audit.record(s, ctx, "project_server.start", "project_server", slug, project=project,
                 summary=summary)  # fmt: skip
    events.emit(s, events.PROJECT_ACCESS_CHANGED, project=slug)
    s.flush()
    return row


def get(s: Session, ctx: Ctx, slug: str) -> ProjectServer:
    project, _ = require_project(s, ctx, slug, "server.read")
    row = _row(s, project)
    if row is None:
        raise NotFound(f"project '{slug}' has no server yet; start one with POST", code="no_server")
    return row


def stop_target(s: Session, ctx: Ctx, slug: str) -> ProjectServer:
    """The server an editor+ may stop (NotFound: the project never had one). Writes nothing."""
    project, _ = require_project(s, ctx, slug, "server.stop")
    row = _row(s, project)
    if row is None:
        raise NotFound(f"project '{slug}' has no server", code="no_server")
    return row


def stop(s: Session, ctx: Ctx, slug: str) -> ProjectServer:
    """Record that an editor+ stopped the project's server (its record and shares stay)."""
    row = stop_target(s, ctx, slug)
    project = row.project
    audit.record(s, ctx, "project_server.stop", "project_server", slug, project=project,
                 summary={"owner": row.owner.username, "server_name": row.server_name})  # fmt: skip
    return row


def share_plan(s: Session, slug: str) -> SharePlan | None:
    """Who should have a share of the project's server now (None: the project has none)."""
    row = s.scalar(
        select(ProjectServer).join(Project, Project.id == ProjectServer.project_id)
        .where(Project.slug == slug)
    )  # fmt: skip
    if row is None:
        return None
    project = row.project
    active = project.deleted_at is None and _owner_qualifies(s, row)
    users = users_with_role(s, project, PROJECT_SERVER_ROLE) - {row.owner.username}
    return SharePlan(
        project=slug,
        owner=row.owner.username,
        server_name=row.server_name,
        users=frozenset(users if active else ()),
        active=active,
    )


def all_slugs(s: Session) -> list[str]:
    """Projects that have a server (for a full reconciliation of shares)."""
    return list(
        s.scalars(select(Project.slug).join(ProjectServer, ProjectServer.project_id == Project.id))
    )


def touch_team(s: Session, team_id: int) -> None:
    """A team's members changed: the shares of servers of its projects may have to follow."""
    slugs = s.scalars(
        select(Project.slug)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .join(ProjectServer, ProjectServer.project_id == Project.id)
        .where(ProjectMember.team_id == team_id)
    )
    for slug in slugs:
        events.emit(s, events.PROJECT_ACCESS_CHANGED, project=slug)


def touch_project(s: Session, project: Project) -> None:
    """The project's members changed: its server's shares (and open documents) follow."""
    events.emit(s, events.PROJECT_MEMBERS_CHANGED, project=project.slug)
    if _row(s, project) is not None:
        events.emit(s, events.PROJECT_ACCESS_CHANGED, project=project.slug)


def run_project(s: Session, owner: User, name: str) -> Project | None:
    """The project whose server ``owner``'s ``name`` is (usage accounting by project): the
    recorded one, or, for a start not recorded yet (the hub starts it before ``start``
    records it), the project ``project-{slug}`` names when ``owner`` may start its server."""
    if not name.startswith(PREFIX):
        return None
    recorded = s.scalar(
        select(Project)
        .join(ProjectServer, ProjectServer.project_id == Project.id)
        .where(ProjectServer.owner_id == owner.id, ProjectServer.server_name == name)
    )
    if recorded is not None:
        return recorded
    project = s.scalar(
        select(Project).where(Project.slug == name[len(PREFIX) :], Project.deleted_at.is_(None))
    )
    if project is None or membership_role(s, owner, project) < PROJECT_SERVER_ROLE:
        return None
    return project


def project_server_json(row: ProjectServer, plan: SharePlan | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "project": row.project.slug,
        "owner": row.owner.username,
        "server_name": row.server_name,
        "url": f"/user/{row.owner.username}/{row.server_name}/",
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
    }
    if plan is not None:
        data["shared_with"] = sorted(plan.users)
    return data
