"""What waits for the caller: invitations to answer, and the access and promotion requests they
may decide in the projects they administer. Read from the rows themselves, so an item goes away
as soon as it is answered, by whoever answers it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import AccessRequest, Project, PromotionRequest
from .access import administered_project_ids
from .context import Ctx
from .invitations import my_invitations
from .users import username_of

LIMIT = 100  # of each kind, newest first


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
        items.append(
            _item(
                "invitation",
                invitation,
                project,
                role=invitation.role,
                by=username_of(s, invitation.created_by_id),
                message=invitation.message,
                expires_at=invitation.expires_at.isoformat(),
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
