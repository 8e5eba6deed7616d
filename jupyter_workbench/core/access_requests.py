"""Access requests: a user who can see a project asks for a role; an admin approves or denies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import AccessRequest, Project, User, utcnow
from . import audit
from .access import (
    PROJECT_RULES,
    Role,
    can_grant,
    direct_role,
    project_role,
    require_project,
)
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .members import grant_at_least
from .pagination import Page, SortSpec, paginate
from .validation import check_text

STATUSES = ("pending", "approved", "denied", "withdrawn")
REQUEST_SORTS = SortSpec(
    {"created": AccessRequest.created_at}, id_column=AccessRequest.id, default="-created"
)


def _visible_project(
    s: Session, ctx: Ctx, slug: str, *, own_request: int | None = None
) -> tuple[Project, Role]:
    """The project if the caller can see it, or (``own_request``) asked that request of it: a
    project that turned private since still answers its requester about their own request.
    Anyone else learns nothing of it."""
    project = s.scalar(select(Project).where(Project.slug == slug, Project.deleted_at.is_(None)))
    role = project_role(s, ctx.user, project) if project is not None else Role.NONE
    if project is None or (role == Role.NONE and not _asked(s, ctx, project, own_request)):
        raise NotFound(f"project '{slug}' not found")
    return project, role


def _asked(s: Session, ctx: Ctx, project: Project, request_id: int | None) -> bool:
    """Whether the caller made the request ``request_id`` of ``project``."""
    if request_id is None:
        return False
    mine = select(AccessRequest.id).where(
        AccessRequest.id == request_id,
        AccessRequest.project_id == project.id,
        AccessRequest.user_id == ctx.user.id,
    )
    return s.scalar(mine) is not None


def create(
    s: Session, ctx: Ctx, slug: str, *, role: str = "editor", message: str = ""
) -> AccessRequest:
    """Ask for ``role`` on a project the caller can see but holds a lower role on."""
    project, current = _visible_project(s, ctx, slug)
    wanted = Role.parse(role)
    message = check_text(message, "message", max_length=2000, allow_empty=True)
    if current >= wanted:
        raise Conflict(f"role: you already have the {current.label} role on project '{slug}'")
    request = AccessRequest(
        project_id=project.id, user_id=ctx.user.id, role=wanted.label, message=message
    )
    try:
        with s.begin_nested():
            s.add(request)
            s.flush()
    except IntegrityError:
        raise Conflict(f"you already have a pending access request on project '{slug}'") from None
    audit.record(
        s,
        ctx,
        "access_request.create",
        "access_request",
        request.id,
        project=project,
        summary={"role": wanted.label},
    )
    s.flush()
    return request


def list_requests(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    status: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[AccessRequest]:
    project, _ = require_project(s, ctx, slug, "access_requests.read")
    stmt = select(AccessRequest).where(AccessRequest.project_id == project.id)
    if status:
        if status not in STATUSES:
            raise BadRequest(
                f"status: must be one of {', '.join(STATUSES)} (got {status!r})",
                code="invalid_parameter",
            )
        stmt = stmt.where(AccessRequest.status == status)
    return paginate(s, stmt, REQUEST_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def _load(
    s: Session, project: Project, request_id: int, *, for_update: bool = False
) -> AccessRequest:
    """The request; ``for_update`` locks it until the transaction ends, so that of two
    decisions on it (two approvals, or an approval and a withdrawal) the second waits and then
    sees the first's outcome."""
    request = s.get(
        AccessRequest,
        request_id,
        with_for_update=True if for_update else None,
        populate_existing=for_update,
    )
    if request is None or request.project_id != project.id:
        raise NotFound(f"access request {request_id} not found")
    return request


def _pending(request: AccessRequest) -> None:
    if request.status != "pending":
        raise Conflict(
            f"access request {request.id} is {request.status}, not pending", code=request.status
        )


def get(s: Session, ctx: Ctx, slug: str, request_id: int) -> AccessRequest:
    """Admins see every request of their project; requesters see their own."""
    project, role = _visible_project(s, ctx, slug, own_request=request_id)
    request = _load(s, project, request_id)
    if request.user_id != ctx.user.id and role < PROJECT_RULES["access_requests.read"]:
        raise Forbidden(f"access request {request_id} belongs to someone else")
    return request


def decide(
    s: Session, ctx: Ctx, slug: str, request_id: int, *, approve: bool, role: str | None = None
) -> AccessRequest:
    """Approve (granting the requested role, or ``role``) or deny a pending request.

    Approval never lowers a role: of a user who meanwhile holds that role or a higher one
    directly it changes no membership, and ``granted_role`` records the role they hold (the
    audit event says ``already_held``). One held only through a team becomes their own (as
    accepting an invitation makes it): approved access does not end with the team's."""
    project, my_role = require_project(s, ctx, slug, "access_requests.decide")
    request = _load(s, project, request_id, for_update=True)
    _pending(request)
    summary: dict[str, Any] = {"requested": request.role, "user": request.user.username}
    if approve:
        granted = Role.parse(role) if role is not None else Role[request.role.upper()]
        can_grant(my_role, granted)
        held = direct_role(s, request.user, project)
        summary["granted"] = grant_at_least(s, project, request.user, granted)
        if held >= granted:  # (added, invited or promoted another way meanwhile)
            summary["already_held"] = True
        request.granted_role = summary["granted"]
    elif role is not None:
        raise BadRequest("role: only an approval grants a role", code="invalid_field")
    request.status = "approved" if approve else "denied"
    request.decided_by_id = ctx.user.id
    request.decided_at = utcnow()
    action = "access_request.approve" if approve else "access_request.deny"
    audit.record(s, ctx, action, "access_request", request.id, project=project, summary=summary)
    s.flush()
    return request


def withdraw(s: Session, ctx: Ctx, slug: str, request_id: int) -> AccessRequest:
    project, _role = _visible_project(s, ctx, slug, own_request=request_id)
    request = _load(s, project, request_id, for_update=True)
    if request.user_id != ctx.user.id:
        raise Forbidden(f"only its requester can withdraw access request {request_id}")
    _pending(request)
    request.status = "withdrawn"
    request.decided_at = utcnow()
    audit.record(s, ctx, "access_request.withdraw", "access_request", request.id, project=project)
    s.flush()
    return request


def request_json(s: Session, request: AccessRequest) -> dict[str, Any]:
    decider = s.get(User, request.decided_by_id) if request.decided_by_id else None
    return {
        "id": request.id,
        "username": request.user.username,
        "role": request.role,
        "message": request.message,
        "status": request.status,
        "granted_role": request.granted_role,
        "decided_by": decider.username if decider else None,
        "created_at": request.created_at.isoformat(),
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
    }
