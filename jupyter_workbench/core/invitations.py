"""Invitations: an admin invites a username with a role; the invitee accepts or declines.

Invitations work before the invitee's first visit (they are addressed by username) and expire
after ``Policy.invitation_ttl``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import Invitation, Project, ProjectMember, User, utcnow
from . import audit
from .access import PROJECT_RULES, Role, can_grant, membership_role, project_role, require_project
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .members import grant_at_least
from .pagination import Page, SortSpec, paginate
from .users import refuse_near_miss, system_ctx
from .validation import check_text

_RANKS = {role.label: int(role) for role in Role if role != Role.NONE}
STATUSES = ("pending", "accepted", "declined", "revoked", "expired")
INVITATION_SORTS = SortSpec(
    {"created": Invitation.created_at}, id_column=Invitation.id, default="-created"
)


def _expire_stale(s: Session, ctx: Ctx, **where: Any) -> None:
    """Mark pending invitations past their expiry as expired (lazily, when touched), each
    audited once as ``invitation.expire`` by the system: only the statement that turns it from
    pending records it (a concurrent one waits for the row and then finds it expired)."""
    stmt = update(Invitation).where(
        Invitation.status == "pending", Invitation.expires_at < utcnow()
    )
    for key, value in where.items():
        stmt = stmt.where(getattr(Invitation, key) == value)
    returned = (Invitation.id, Invitation.project_id, Invitation.invitee_username)
    expired = s.execute(
        stmt.values(status="expired").returning(*returned, Invitation.role, Invitation.expires_at)
    ).all()
    if not expired:
        return
    system = system_ctx(s, ctx)
    for invitation_id, project_id, username, role, expires_at in sorted(expired):
        audit.record(
            s, system, "invitation.expire", "invitation", invitation_id,
            project=s.get(Project, project_id),
            summary={"username": username, "role": role, "expires_at": expires_at.isoformat()},
        )  # fmt: skip


def create(
    s: Session, ctx: Ctx, slug: str, *, username: str, role: str = "viewer", message: str = ""
) -> Invitation:
    project, my_role = require_project(s, ctx, slug, "invitations.manage")
    username = check_text(username, "username", max_length=255)
    new_role = Role.parse(role)
    can_grant(my_role, new_role)
    message = check_text(message, "message", max_length=2000, allow_empty=True)
    invitee = s.scalar(select(User).where(User.username == username))
    if invitee is None:  # (an invitation to 'Bob' would wait for 'bob' in vain)
        refuse_near_miss(s, username, "username")
    else:
        current = membership_role(s, invitee, project)
        if current >= new_role:
            raise Conflict(f"username: '{username}' already has the {current.label} role")
    _expire_stale(s, ctx, project_id=project.id, invitee_username=username)
    invitation = Invitation(
        project_id=project.id,
        invitee_username=username,
        role=new_role.label,
        message=message,
        created_by_id=ctx.user.id,
        expires_at=utcnow() + ctx.policy.invitation_ttl,
    )
    try:
        with s.begin_nested():
            s.add(invitation)
            s.flush()
    except IntegrityError:
        raise Conflict(f"username: '{username}' already has a pending invitation") from None
    audit.record(
        s,
        ctx,
        "invitation.create",
        "invitation",
        invitation.id,
        project=project,
        summary={"username": username, "role": new_role.label},
    )
    s.flush()
    return invitation


def list_invitations(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    status: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Invitation]:
    project, _ = require_project(s, ctx, slug, "invitations.read")
    _expire_stale(s, ctx, project_id=project.id)
    stmt = select(Invitation).where(Invitation.project_id == project.id)
    if status:
        if status not in STATUSES:
            raise BadRequest(
                f"status: must be one of {', '.join(STATUSES)} (got {status!r})",
                code="invalid_parameter",
            )
        stmt = stmt.where(Invitation.status == status)
    return paginate(s, stmt, INVITATION_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def my_invitations(
    s: Session, ctx: Ctx, *, limit: int | None = None, cursor: str | None = None
) -> Page[Invitation]:
    """The caller's pending invitations (to projects they may not otherwise see), less those
    whose role they hold directly already (accepting one would change nothing). One they can no
    longer accept (see ``standing``) is listed, for them to decline."""
    _expire_stale(s, ctx, invitee_username=ctx.user.username)
    held_already = exists().where(
        ProjectMember.project_id == Invitation.project_id,
        ProjectMember.user_id == ctx.user.id,
        case(_RANKS, value=ProjectMember.role) >= case(_RANKS, value=Invitation.role),
    )
    stmt = (
        select(Invitation)
        .join(Project, Project.id == Invitation.project_id)
        .where(
            Invitation.invitee_username == ctx.user.username,
            Invitation.status == "pending",
            Project.deleted_at.is_(None),
            ~held_already,
        )
    )
    return paginate(s, stmt, INVITATION_SORTS, ctx, sort=None, limit=limit, cursor=cursor)


def _load(s: Session, project: Project, invitation_id: int) -> Invitation:
    """The invitation, locked until the transaction ends: of two answers to one invitation
    (accept and revoke, or two accepts) the second waits and then sees the first's outcome."""
    invitation = s.get(Invitation, invitation_id, with_for_update=True, populate_existing=True)
    if invitation is None or invitation.project_id != project.id:
        raise NotFound(f"invitation {invitation_id} not found")
    return invitation


def revoke(s: Session, ctx: Ctx, slug: str, invitation_id: int) -> Invitation:
    project, _ = require_project(s, ctx, slug, "invitations.manage")
    _expire_stale(s, ctx, project_id=project.id)
    invitation = _load(s, project, invitation_id)
    _pending(invitation)
    invitation.status = "revoked"
    invitation.responded_at = utcnow()
    audit.record(s, ctx, "invitation.revoke", "invitation", invitation.id, project=project)
    s.flush()
    return invitation


def _for_invitee(s: Session, ctx: Ctx, slug: str, invitation_id: int) -> tuple[Project, Invitation]:
    """The invitation if the caller is its invitee; 403 if they only see the project, else 404."""
    project = s.scalar(select(Project).where(Project.slug == slug, Project.deleted_at.is_(None)))
    if project is None:
        raise NotFound(f"invitation {invitation_id} not found")
    invitation = _load(s, project, invitation_id)
    if invitation.invitee_username != ctx.user.username:
        if project_role(s, ctx.user, project) >= Role.VIEWER:
            raise Forbidden(f"invitation {invitation_id} is addressed to someone else")
        raise NotFound(f"invitation {invitation_id} not found")
    _expire_stale(s, ctx, id=invitation.id)
    s.refresh(invitation)
    _pending(invitation)
    return project, invitation


def _pending(invitation: Invitation) -> None:
    """Conflict unless the invitation is pending; one found expired just now stays so (and
    audited), refused though the request is."""
    if invitation.status != "pending":
        raise Conflict(
            f"invitation {invitation.id} is {invitation.status}, not pending",
            code=invitation.status,
            keeps_changes=invitation.status == "expired",
        )


def _inviter_still_grants(s: Session, project: Project, invitation: Invitation) -> None:
    """An invitation stands while whoever sent it could send it now: one from an admin since
    removed or demoted (or a deleted account) is refused on acceptance (409)."""
    role = Role[invitation.role.upper()]
    needed = max(role, PROJECT_RULES["invitations.manage"])
    inviter = s.get(User, invitation.created_by_id) if invitation.created_by_id else None
    if inviter is not None and project_role(s, inviter, project) >= needed:
        return
    who = f"'{inviter.username}'" if inviter is not None else "an account since deleted"
    raise Conflict(
        f"invitation {invitation.id} was sent by {who}, who may no longer grant the "
        f"{role.label} role on project '{project.slug}'; ask one of its admins to invite you again",
        code="inviter_lost_role",
    )


def respond(s: Session, ctx: Ctx, slug: str, invitation_id: int, *, accept: bool) -> Invitation:
    """Accept (join with the invited role, never lowering a role held) or decline; accepting
    needs the inviter to hold a role that grants it still."""
    project, invitation = _for_invitee(s, ctx, slug, invitation_id)
    if accept:
        _inviter_still_grants(s, project, invitation)
    invitation.status = "accepted" if accept else "declined"
    invitation.responded_at = utcnow()
    summary: dict[str, Any] = {"role": invitation.role}
    if accept:
        summary["role_held"] = grant_at_least(s, project, ctx.user, Role[invitation.role.upper()])
    action = "invitation.accept" if accept else "invitation.decline"
    audit.record(s, ctx, action, "invitation", invitation.id, project=project, summary=summary)
    s.flush()
    return invitation


def standing(s: Session, invitation: Invitation) -> tuple[bool, str | None]:
    """Whether the invitee can accept the pending ``invitation`` now and, if not, why (the
    message accepting it would answer with)."""
    project = s.get(Project, invitation.project_id)
    assert project is not None
    try:
        _inviter_still_grants(s, project, invitation)
    except Conflict as refusal:
        return False, refusal.message
    return True, None


def my_invitation_json(s: Session, invitation: Invitation) -> dict[str, Any]:
    """An invitation as its invitee sees it in their list: with whether they can accept it
    (``acceptable``) and, when not, why (``reason``)."""
    acceptable, reason = standing(s, invitation)
    return {**invitation_json(s, invitation), "acceptable": acceptable, "reason": reason}


def invitation_json(s: Session, invitation: Invitation) -> dict[str, Any]:
    project = s.get(Project, invitation.project_id)
    inviter = s.get(User, invitation.created_by_id) if invitation.created_by_id else None
    return {
        "id": invitation.id,
        "project": project.slug if project else None,
        "project_name": project.name if project else None,
        "username": invitation.invitee_username,
        "role": invitation.role,
        "message": invitation.message,
        "status": invitation.status,
        "invited_by": inviter.username if inviter else None,
        "created_at": invitation.created_at.isoformat(),
        "expires_at": invitation.expires_at.isoformat(),
        "responded_at": invitation.responded_at.isoformat() if invitation.responded_at else None,
    }
