"""What waits for the caller: invitations to answer, and the access and promotion requests they
may decide in the projects they administer. Read from the rows themselves, so an item goes away
as soon as it is answered, by whoever answers it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Exists, case, exists, or_, select
from sqlalchemy.orm import Session

from ..db.models import AccessRequest, Project, ProjectMember, PromotionRequest, TeamMember
from .access import administered_project_ids
from .context import Ctx
from .invitations import my_invitations, standing
from .users import username_of

LIMIT = 100  # of each kind, newest first
_RANKS = {"viewer": 1, "editor": 2, "admin": 3, "owner": 4}


def _already_granted() -> Exists:
    """Whether an access request's user holds its role by now (added, invited or promoted
    another way, directly or by a team): such a request waits for no decision."""
    requester_teams = select(TeamMember.team_id).where(TeamMember.user_id == AccessRequest.user_id)
    return exists().where(
        ProjectMember.project_id == AccessRequest.project_id,
        or_(
            ProjectMember.user_id == AccessRequest.user_id,
            ProjectMember.team_id.in_(requester_teams),
        ),
        case(_RANKS, value=ProjectMember.role) >= case(_RANKS, value=AccessRequest.role),
    )


def _item(kind: str, row: Any, project: Project, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": row.id,
        "project": project.slug,
        "project_name": project.name,
        "created_at": row.created_at.isoformat(),
        **fields,
    }


def pending(s: Session, ctx: Ctx) -> list[dict[str, Any]]:
    """The caller's notifications, newest first."""
    items = []
    for invitation in my_invitations(s, ctx, limit=LIMIT).items:
        project = s.get(Project, invitation.project_id)
        assert project is not None
        acceptable, reason = standing(s, invitation)
        items.append(
            _item(
                "invitation",
                invitation,
                project,
                role=invitation.role,
                by=username_of(s, invitation.created_by_id),
                message=invitation.message,
                expires_at=invitation.expires_at.isoformat(),
                acceptable=acceptable,
                reason=reason,
            )
        )
    administered = administered_project_ids(ctx.user)
    live = Project.deleted_at.is_(None)
    requests = s.execute(
        select(AccessRequest, Project)
        .join(Project, Project.id == AccessRequest.project_id)
        .where(
            AccessRequest.project_id.in_(administered),
            AccessRequest.status == "pending",
            ~_already_granted(),
            live,
        )
        .order_by(AccessRequest.id.desc())
        .limit(LIMIT)
    )
    for request, project in requests:
        items.append(
            _item(
                "access_request",
                request,
                project,
                role=request.role,
                by=username_of(s, request.user_id),
                message=request.message,
            )
        )
    promotions = s.execute(
        select(PromotionRequest, Project)
        .join(Project, Project.id == PromotionRequest.project_id)
        .where(
            PromotionRequest.project_id.in_(administered),
            PromotionRequest.status == "pending",
            # another admin decides a request: one's own is not waiting for oneself
            PromotionRequest.requested_by_id.is_distinct_from(ctx.user.id),
            live,
        )
        .order_by(PromotionRequest.id.desc())
        .limit(LIMIT)
    )
    for promotion, project in promotions:
        items.append(
            _item(
                "promotion",
                promotion,
                project,
                model=promotion.model_name,
                version=promotion.version,
                alias=promotion.alias,
                by=username_of(s, promotion.requested_by_id),
                message=promotion.note,
            )
        )
    items.sort(key=lambda item: item["created_at"], reverse=True)
    return items
