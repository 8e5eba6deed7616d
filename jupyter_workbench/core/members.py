"""Project members: users and teams with roles viewer < editor < admin < owner.

A member is addressed as ``alice`` (a user) or ``team:ml`` (a team).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import (
    AccessRequest,
    Invitation,
    Project,
    ProjectMember,
    Team,
    TeamMember,
    User,
    utcnow,
)
from . import audit
from .access import Role, can_grant, require_project
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .etags import check_etag, etag
from .pagination import Page, SortSpec, paginate
from .project_servers import touch_project
from .users import find_user

TEAM_PREFIX = "team:"

MEMBER_SORTS = SortSpec(
    {"added": ProjectMember.created_at},
    id_column=ProjectMember.id,
    default="added",
)


def member_key(row: ProjectMember) -> str:
    if row.team is not None:
        return f"{TEAM_PREFIX}{row.team.name}"
    assert row.user is not None
    return row.user.username


def _find(s: Session, project: Project, key: str, *, for_update: bool = False) -> ProjectMember:
    stmt = select(ProjectMember).where(ProjectMember.project_id == project.id)
    if for_update:
        stmt = stmt.with_for_update(of=ProjectMember)
    if key.startswith(TEAM_PREFIX):
        stmt = stmt.join(Team, Team.id == ProjectMember.team_id).where(
            Team.name == key.removeprefix(TEAM_PREFIX)
        )
    else:
        stmt = stmt.join(User, User.id == ProjectMember.user_id).where(User.username == key)
    row = s.scalar(stmt)
    if row is None:
        raise NotFound(f"'{key}' is not a member of project '{project.slug}'")
    return row


def list_members(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    role: str | None = None,
    kind: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ProjectMember]:
    project, _ = require_project(s, ctx, slug, "members.read")
    stmt = select(ProjectMember).where(ProjectMember.project_id == project.id)
    if role:
        stmt = stmt.where(ProjectMember.role == Role.parse(role, allow_owner=True).label)
    if kind == "user":
        stmt = stmt.where(ProjectMember.user_id.is_not(None))
    elif kind == "team":
        stmt = stmt.where(ProjectMember.team_id.is_not(None))
    elif kind:
        raise BadRequest(f"kind: must be 'user' or 'team' (got {kind!r})", code="invalid_parameter")
    return paginate(s, stmt, MEMBER_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def add(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    user: str | None = None,
    team: str | None = None,
    role: str = "viewer",
) -> ProjectMember:
    """Add a user or a team with a role (admin+; admins grant up to admin)."""
    project, my_role = require_project(s, ctx, slug, "members.manage")
    if (user is None) == (team is None):
        raise BadRequest("give exactly one of 'user' or 'team'", code="invalid_field")
    new_role = Role.parse(role)
    can_grant(my_role, new_role)
    row = ProjectMember(project_id=project.id, role=new_role.label, added_by_id=ctx.user.id)
    if user is not None:
        row.user = find_user(s, user, "user")
    else:
        found = s.scalar(select(Team).where(Team.name == team))
        if found is None:
            raise BadRequest(f"team: no team named '{team}'", code="unknown_team")
        row.team = found
    key = member_key(row)
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        raise Conflict(f"'{key}' is already a member of project '{slug}'") from None
    audit.record(
        s, ctx, "member.add", "member", key, project=project, summary={"role": new_role.label}
    )
    touch_project(s, project)
    s.flush()
    return row


def get(s: Session, ctx: Ctx, slug: str, key: str) -> ProjectMember:
    project, _ = require_project(s, ctx, slug, "members.read")
    return _find(s, project, key)


def change_role(
    s: Session, ctx: Ctx, slug: str, key: str, role: str, *, if_match: str | None = None
) -> ProjectMember:
    project, my_role = require_project(s, ctx, slug, "members.manage")
    row = _find(s, project, key, for_update=True)
    check_etag(row, if_match)
    new_role = Role.parse(role)
    if row.role == "owner":
        raise Conflict(
            "role: the owner's role cannot change; transfer ownership first", code="owner"
        )
    can_grant(my_role, new_role)
    if Role[row.role.upper()] > my_role:
        raise Forbidden(f"a {my_role.label} cannot change the role of a {row.role}")
    if row.role != new_role.label:
        audit.record(
            s,
            ctx,
            "member.update",
            "member",
            key,
            project=project,
            summary={"role": {"from": row.role, "to": new_role.label}},
        )
        lowered = new_role < Role[row.role.upper()]
        row.role = new_role.label
        row.updated_at = utcnow()
        if lowered and row.user is not None:
            _close_pending(s, ctx, project, row.user, above=new_role)
        touch_project(s, project)
    s.flush()
    return row


def remove(
    s: Session, ctx: Ctx, slug: str, key: str, *, if_match: str | None = None
) -> dict[str, Any]:
    """Remove a member (admin+), or leave a project yourself (any member but the owner).

    Returns what was removed and what a removed user still holds through their teams:
    ``{"member", "removed_role", "remaining_role", "remaining_teams": [{"team", "role"}]}``
    (``remaining_role``: their highest role left as a member, or ``None``)."""
    leaving = key == ctx.user.username
    project, my_role = require_project(
        s, ctx, slug, "project.read" if leaving else "members.manage"
    )
    try:
        row = _find(s, project, key)
    except NotFound:
        if leaving:
            _refuse_leaving_a_team_role(s, project, ctx.user)
        raise
    check_etag(row, if_match)
    if row.role == "owner":
        raise Conflict("the owner cannot be removed; transfer ownership first", code="owner")
    if not leaving and Role[row.role.upper()] > my_role:
        raise Forbidden(f"a {my_role.label} cannot remove a {row.role}")
    audit.record(
        s,
        ctx,
        "member.leave" if leaving else "member.remove",
        "member",
        key,
        project=project,
        summary={"role": row.role},
    )
    user = row.user
    remaining = _team_roles(s, project, user) if user is not None else []
    if not leaving and user is not None:
        _close_pending(s, ctx, project, user)
    removed_role = row.role
    s.delete(row)
    touch_project(s, project)
    s.flush()
    kept = max((Role[role.upper()] for _, role in remaining), default=Role.NONE)
    return {
        "member": key,
        "removed_role": removed_role,
        "remaining_role": kept.label if kept > Role.NONE else None,
        "remaining_teams": [{"team": name, "role": role} for name, role in remaining],
    }


def _team_roles(s: Session, project: Project, user: User) -> list[tuple[str, str]]:
    """The teams through which ``user`` holds a role on ``project``, with those roles, by name."""
    rows = s.execute(
        select(Team.name, ProjectMember.role)
        .join(ProjectMember, ProjectMember.team_id == Team.id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(ProjectMember.project_id == project.id, TeamMember.user_id == user.id)
        .order_by(Team.name)
    ).all()
    return [(name, role) for name, role in rows]


def _refuse_leaving_a_team_role(s: Session, project: Project, user: User) -> None:
    """Conflict when ``user`` holds a role on ``project`` only through teams: that role is
    the team's, left by leaving the team (or removed with the team's membership)."""
    via = _team_roles(s, project, user)
    if via:
        teams = ", ".join(f"'{name}' ({role})" for name, role in via)
        raise Conflict(
            f"you are a member of project '{project.slug}' only through team {teams}: leave "
            "the team, or ask a project admin to remove the team from the project",
            code="member_through_team",
        )


def _close_pending(
    s: Session, ctx: Ctx, project: Project, user: User, *, above: Role = Role.NONE
) -> None:
    """A removed (or demoted) user's way back in is closed too: their pending invitations to
    the project, and their pending access requests there, for a role above ``above`` (the one
    they are left with) are revoked and denied (each audited as such: events only the project's
    admins see)."""
    now = utcnow()
    if above == Role.NONE:
        reason = {"reason": f"'{user.username}' was removed from the project"}
    else:
        reason = {"reason": f"'{user.username}' was given the {above.label} role"}
    higher = [r.label for r in Role if r > above and r < Role.OWNER]
    revoked = s.scalars(
        update(Invitation)
        .where(
            Invitation.project_id == project.id,
            Invitation.invitee_username == user.username,
            Invitation.status == "pending",
            Invitation.expires_at >= now,  # (expired ones are marked so when touched)
            Invitation.role.in_(higher),
        )
        .values(status="revoked", responded_at=now)
        .returning(Invitation.id)
    ).all()
    for invitation_id in sorted(revoked):
        audit.record(
            s, ctx, "invitation.revoke", "invitation", invitation_id, project=project,
            summary=reason,
        )  # fmt: skip
    denied = s.scalars(
        update(AccessRequest)
        .where(
            AccessRequest.project_id == project.id,
            AccessRequest.user_id == user.id,
            AccessRequest.status == "pending",
            AccessRequest.role.in_(higher),
        )
        .values(status="denied", decided_by_id=ctx.user.id, decided_at=now)
        .returning(AccessRequest.id)
    ).all()
    for request_id in sorted(denied):
        audit.record(
            s, ctx, "access_request.deny", "access_request", request_id, project=project,
            summary={"user": user.username, **reason},
        )  # fmt: skip


def grant_at_least(s: Session, project: Project, user: User, role: Role) -> str:
    """Give ``user`` at least ``role`` directly (never lowers a role); returns the role held.

    Two grants to one user at once (an accepted invitation and an approved request) both
    hold: the one that finds the other's new row raises it instead of adding a second."""
    mine = select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
    )
    row = s.scalar(mine)
    if row is None:
        try:
            with s.begin_nested():
                s.add(ProjectMember(project_id=project.id, user_id=user.id, role=role.label))
                s.flush()
        except IntegrityError:  # added meanwhile by a concurrent grant
            row = s.scalars(mine.with_for_update().execution_options(populate_existing=True)).one()
        else:
            touch_project(s, project)
            return role.label
    if Role[row.role.upper()] < role:
        row.role = role.label
        row.updated_at = utcnow()
        touch_project(s, project)
    return row.role


def member_json(row: ProjectMember) -> dict[str, Any]:
    data: dict[str, Any] = {
        "member": member_key(row),
        "kind": "team" if row.team_id is not None else "user",
        "role": row.role,
        "added_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "etag": etag(row),
    }
    if row.user is not None:
        data["user"] = {"username": row.user.username, "display_name": row.user.display_name}
    if row.team is not None:
        data["team"] = {"name": row.team.name, "display_name": row.team.display_name}
    return data
