"""The model registry's workbench side: promotions by request and approval, and model cards.

Registered models live in MLflow; the workbench knows which project owns each (``experiments``).
Pointing a protected alias (``production``, ``champion`` ...) at a version needs a project admin;
editors ask for it with a promotion request, and an admin other than the requester approves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from ..db.models import (
    ModelCard,
    ModelCardRevision,
    Project,
    PromotionRequest,
    RegisteredModel,
    User,
    utcnow,
)
from . import audit
from .access import Role, require_project
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .etags import check_etag, etag
from .pagination import Page, SortSpec, paginate
from .users import username_of
from .validation import check_text

PROTECTED_ALIASES = ("production", "prod", "champion")
MODEL_SORTS = SortSpec(
    {"name": RegisteredModel.name, "created": RegisteredModel.created_at},
    id_column=RegisteredModel.id,
    default="name",
    any_case=frozenset({"name"}),
)
CARD_FIELDS = (
    "intended_use",
    "limitations",
    "metrics",
    "training_datasets",
    "ethical_considerations",
)


def _model(s: Session, project: Project, name: str) -> RegisteredModel:
    row = s.scalar(
        select(RegisteredModel).where(
            RegisteredModel.project_id == project.id, RegisteredModel.name == name
        )
    )
    if row is None:
        raise NotFound(f"registered model '{name}' not found in project '{project.slug}'")
    return row


def list_models(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[RegisteredModel]:
    """One page of the project's registered models (by name unless ``sort`` says otherwise)."""
    project, _ = require_project(s, ctx, slug, "experiments.read")
    stmt = select(RegisteredModel).where(RegisteredModel.project_id == project.id)
    return paginate(s, stmt, MODEL_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def get_model(s: Session, ctx: Ctx, slug: str, name: str) -> tuple[Project, RegisteredModel]:
    project, _ = require_project(s, ctx, slug, "experiments.read")
    return project, _model(s, project, name)


# -- promotions ----------------------------------------------------------------------
def request_promotion(
    s: Session, ctx: Ctx, slug: str, name: str, *, version: str, alias: str, note: str = ""
) -> PromotionRequest:
    project, _ = require_project(s, ctx, slug, "experiments.write")
    _model(s, project, name)
    alias = alias.lower()
    if alias not in PROTECTED_ALIASES:
        raise BadRequest(
            f"alias: '{alias}' is not protected; editors set it directly "
            f"(protected: {', '.join(PROTECTED_ALIASES)})",
            code="not_protected",
        )
    pending = s.scalar(
        select(PromotionRequest).where(
            PromotionRequest.project_id == project.id,
            PromotionRequest.model_name == name,
            PromotionRequest.alias == alias,
            PromotionRequest.version == str(version),
            PromotionRequest.status == "pending",
        )
    )
    if pending is not None:
        raise Conflict(f"version {version} already has a pending request for '{alias}'")
    row = PromotionRequest(
        project_id=project.id,
        model_name=name,
        version=str(version),
        alias=alias,
        note=check_text(note, "note", max_length=5000, allow_empty=True),
        requested_by_id=ctx.user.id,
    )
    s.add(row)
    s.flush()
    audit.record(
        s,
        ctx,
        "model.promotion_request",
        "model",
        name,
        project=project,
        summary={"version": str(version), "alias": alias, "request": row.id},
    )
    return row


PROMOTION_SORTS = SortSpec(
    {"created": PromotionRequest.id}, id_column=PromotionRequest.id, default="-created"
)


def list_promotions(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    status: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[PromotionRequest]:
    """A page of the model's promotion requests (newest first), of one ``status`` if given."""
    project, _ = require_project(s, ctx, slug, "experiments.read")
    _model(s, project, name)
    stmt = select(PromotionRequest).where(
        PromotionRequest.project_id == project.id, PromotionRequest.model_name == name
    )
    if status:
        stmt = stmt.where(PromotionRequest.status == status)
    return paginate(s, stmt, PROMOTION_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def pending_request(
    s: Session, ctx: Ctx, slug: str, name: str, request_id: int, *, deciding: bool
) -> tuple[Project, PromotionRequest]:
    """A pending request the caller may decide (admins, not the requester) or withdraw."""
    project, role = require_project(
        s, ctx, slug, "models.promote" if deciding else "experiments.write"
    )
    row = s.get(PromotionRequest, request_id)
    if row is None or row.project_id != project.id or row.model_name != name:
        raise NotFound(f"promotion request {request_id} not found")
    if row.status != "pending":
        raise Conflict(f"promotion request {request_id} is {row.status}", code=row.status)
    if deciding and row.requested_by_id == ctx.user.id:
        raise Forbidden("you asked for this promotion; another admin must decide it")
    if not deciding and row.requested_by_id != ctx.user.id and role < Role.ADMIN:
        raise Forbidden("only its requester withdraws a promotion request")
    return project, row


def decide(
    s: Session, ctx: Ctx, slug: str, name: str, request_id: int, *, approve: bool, note: str = ""
) -> PromotionRequest:
    """Record the decision (the caller has already moved the alias in MLflow on approval)."""
    project, row = pending_request(s, ctx, slug, name, request_id, deciding=True)
    row.status = "approved" if approve else "rejected"
    row.decided_by_id = ctx.user.id
    row.decided_at = utcnow()
    row.decision_note = check_text(note, "note", max_length=5000, allow_empty=True)
    audit.record(
        s,
        ctx,
        "model.promotion_" + row.status,
        "model",
        name,
        project=project,
        summary={"version": row.version, "alias": row.alias, "request": row.id},
    )
    s.flush()
    return row


def withdraw(s: Session, ctx: Ctx, slug: str, name: str, request_id: int) -> PromotionRequest:
    project, row = pending_request(s, ctx, slug, name, request_id, deciding=False)
    row.status = "withdrawn"
    row.decided_at = utcnow()
    audit.record(
        s,
        ctx,
        "model.promotion_withdraw",
        "model",
        name,
        project=project,
        summary={"request": row.id},
    )
    s.flush()
    return row


def promotion_json(s: Session, row: PromotionRequest) -> dict[str, Any]:
    who = s.get(User, row.requested_by_id) if row.requested_by_id else None
    decider = s.get(User, row.decided_by_id) if row.decided_by_id else None
    return {
        "id": row.id,
        "model": row.model_name,
        "version": row.version,
        "alias": row.alias,
        "note": row.note,
        "status": row.status,
        "requested_by": who.username if who else None,
        "decided_by": decider.username if decider else None,
        "decision_note": row.decision_note,
        "created_at": row.created_at.isoformat(),
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }


# -- model cards ---------------------------------------------------------------------
def _check_fields(fields: object) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise BadRequest("fields: must be a JSON object")
    unknown = sorted(set(fields) - set(CARD_FIELDS))
    if unknown:
        raise BadRequest(f"fields.{unknown[0]}: unknown field (known: {', '.join(CARD_FIELDS)})")
    return fields


def get_card(
    s: Session, ctx: Ctx, slug: str, name: str
) -> tuple[ModelCard | None, ModelCardRevision | None]:
    project, _ = require_project(s, ctx, slug, "experiments.read")
    _model(s, project, name)
    card = s.scalar(select(ModelCard).where(ModelCard.model_name == name))
    if card is None:
        return None, None
    revision = s.scalar(
        select(ModelCardRevision).where(
            ModelCardRevision.card_id == card.id, ModelCardRevision.number == card.current_revision
        )
    )
    return card, revision


def save_card(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    markdown: str,
    fields: dict[str, Any],
    if_match: str | None = None,
) -> tuple[ModelCard, ModelCardRevision]:
    """Save a new revision of the card (editors); If-Match guards against lost updates."""
    project, _ = require_project(s, ctx, slug, "experiments.write")
    _model(s, project, name)
    markdown = check_text(markdown, "markdown", max_length=200_000, allow_empty=True)
    fields = _check_fields(fields)
    card = s.scalar(select(ModelCard).where(ModelCard.model_name == name).with_for_update())
    if card is None:
        card = ModelCard(project_id=project.id, model_name=name, current_revision=0)
        s.add(card)
        s.flush()
    else:
        check_etag(card, if_match)
    number = card.current_revision + 1
    revision = ModelCardRevision(
        card_id=card.id, number=number, markdown=markdown, fields=fields, author_id=ctx.user.id
    )
    s.add(revision)
    card.current_revision = number
    card.updated_at = utcnow()
    audit.record(s, ctx, "model.card", "model", name, project=project, summary={"revision": number})
    s.flush()
    return card, revision


CARD_REVISION_SORTS = SortSpec(
    {"revision": ModelCardRevision.number}, id_column=ModelCardRevision.id, default="-revision"
)


def card_history(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ModelCardRevision]:
    """A page of the model card's revisions, newest first (none while it has no card)."""
    card, _ = get_card(s, ctx, slug, name)
    stmt = select(ModelCardRevision).where(
        ModelCardRevision.card_id == card.id if card is not None else false()
    )
    return paginate(s, stmt, CARD_REVISION_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def revision_json(s: Session, revision: ModelCardRevision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "markdown": revision.markdown,
        "fields": revision.fields,
        "author": username_of(s, revision.author_id),
        "created_at": revision.created_at.isoformat(),
    }


def card_json(
    s: Session, name: str, card: ModelCard | None, revision: ModelCardRevision | None
) -> dict[str, Any]:
    return {
        "model": name,
        "revision": revision.number if revision else 0,
        "markdown": revision.markdown if revision else "",
        "fields": revision.fields if revision else {},
        "author": username_of(s, revision.author_id) if revision else None,
        "updated_at": revision.created_at.isoformat() if revision else None,
        "etag": etag(card) if card else None,
    }
