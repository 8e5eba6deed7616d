"""The audit trail: every mutation records one event in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from ..db.models import AuditEvent, Project
from .access import administered_project_ids, is_superuser, member_project_ids
from .context import Ctx
from .pagination import Page, SortSpec, paginate


def record(
    s: Session,
    ctx: Ctx,
    action: str,
    object_type: str,
    object_id: str | int,
    *,
    project: Project | None = None,
    summary: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction (committed or rolled back with it)."""
    event = AuditEvent(
        actor_id=ctx.user.id,
        actor_name=ctx.user.username,
        action=action,
        object_type=object_type,
        # ('{user}/{server}' of two hub names can pass the column's 255 characters)
        object_id=str(object_id)[: AuditEvent.object_id.type.length],
        project_id=project.id if project is not None else None,
        project_slug=project.slug if project is not None else None,
        summary=summary or {},
        request_id=ctx.request_id[:64],
    )
    s.add(event)
    return event


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A summary of changed fields: ``{field: {"from": old, "to": new}}``."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


AUDIT_SORTS = SortSpec({"time": AuditEvent.id}, id_column=AuditEvent.id, default="-time")


# what only a project's admins see of it in the activity feed: people's addresses, requests,
# secrets and quotas (members see everything else that happens in their projects)
ADMIN_ONLY_OBJECTS = ("invitation", "access_request", "secret", "quota")


def _readable(ctx: Ctx, scope: str) -> ColumnElement[bool] | None:
    """Which events the caller may read: ``audit`` (the audit trail: all for workbench
    admins; else the projects they administer and their own actions) or ``activity`` (the
    feed of their own projects, for everyone alike)."""
    mine = AuditEvent.actor_id == ctx.user.id
    administered = AuditEvent.project_id.in_(administered_project_ids(ctx.user))
    if scope == "audit":
        return None if is_superuser(ctx.user) else or_(administered, mine)
    member = AuditEvent.project_id.in_(member_project_ids(ctx.user))
    shared = AuditEvent.object_type.not_in(ADMIN_ONLY_OBJECTS)
    return or_(and_(member, or_(shared, administered)), mine)


def list_events(
    s: Session,
    ctx: Ctx,
    *,
    scope: str = "audit",
    project_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[AuditEvent]:
    """Events the caller may read in ``scope`` (see ``_readable``), filtered and paged."""
    stmt = select(AuditEvent)
    readable = _readable(ctx, scope)
    if readable is not None:
        stmt = stmt.where(readable)
    if project_id is not None:
        stmt = stmt.where(AuditEvent.project_id == project_id)
    if action:
        stmt = stmt.where(
            # ('_' and '%' in it are plain characters, not LIKE's wildcards)
            AuditEvent.action.startswith(action.rstrip("*"), autoescape=True)
            if action.endswith("*")
            else AuditEvent.action == action
        )
    if actor:
        stmt = stmt.where(AuditEvent.actor_name == actor)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if since:
        stmt = stmt.where(AuditEvent.time >= since)
    if until:
        stmt = stmt.where(AuditEvent.time < until)
    return paginate(s, stmt, AUDIT_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)
