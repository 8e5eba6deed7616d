"""Teams: named groups of users (member or maintainer) that can hold project roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import Project, ProjectMember, Team, TeamMember, User, utcnow
from . import audit, events, quotas
from .access import TEAM_ROLES, require_team
from .context import Ctx
from .errors import BadRequest, Conflict, NotFound
from .etags import check_etag, etag
from .pagination import Page, SortSpec, paginate
from .project_servers import touch_team
from .text_search import holds_text
from .users import find_user
from .validation import check_name, check_slug, check_text

TEAM_SORTS = SortSpec(
    {"name": Team.name, "created": Team.created_at}, id_column=Team.id, default="name"
)
TEAM_MEMBER_SORTS = SortSpec(
    {"added": TeamMember.created_at}, id_column=TeamMember.user_id, default="added"
)


def _team_role(value: object) -> str:
    if value not in TEAM_ROLES:
        raise BadRequest(
            f"role: must be one of {', '.join(TEAM_ROLES)} (got {value!r})", code="invalid_field"
        )
    return str(value)


def create(
    s: Session, ctx: Ctx, *, name: str, display_name: str = "", description: str = ""
) -> Team:
    """A new team; its creator is its first maintainer. On a hub it is also the JupyterHub
    group ``hub_group_prefix + name`` (created there after the commit)."""
    check_slug(name, "name")
    prefix = ctx.policy.hub_group_prefix
    team = Team(
        name=name,
        display_name=check_name(display_name or name, "display_name", max_length=200),
        description=check_text(description, "description", max_length=10_000, allow_empty=True),
        hub_group=None if prefix is None else prefix + name,
    )
    try:
        with s.begin_nested():
            s.add(team)
            s.flush()
    except IntegrityError:
        taken = "team" if s.scalar(select(Team.id).where(Team.name == name)) else "hub group"
        raise Conflict(f"name: a {taken} named '{name}' already exists") from None
    s.add(TeamMember(team_id=team.id, user_id=ctx.user.id, role="maintainer"))
    summary = {"display_name": team.display_name}
    if team.hub_group:
        summary["hub_group"] = team.hub_group
    audit.record(s, ctx, "team.create", "team", name, summary=summary)
    events.emit(s, events.TEAM_CREATED, team=name, hub_group=team.hub_group,
                username=ctx.user.username)  # fmt: skip
    s.flush()
    return team


def get(s: Session, ctx: Ctx, name: str) -> Team:
    return require_team(s, ctx, name, "team.read")


def list_teams(
    s: Session,
    ctx: Ctx,
    *,
    q: str | None = None,
    mine: bool = False,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Team]:
    stmt = select(Team)
    if q:
        stmt = stmt.where(holds_text(q, Team.name, Team.display_name))
    if mine:
        stmt = stmt.where(
            Team.id.in_(select(TeamMember.team_id).where(TeamMember.user_id == ctx.user.id))
        )
    return paginate(s, stmt, TEAM_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def update(
    s: Session, ctx: Ctx, name: str, changes: dict[str, Any], *, if_match: str | None = None
) -> Team:
    """Rename (``name``), or change display name or description (maintainers)."""
    team = require_team(s, ctx, name, "team.manage", for_update=True)
    check_etag(team, if_match)
    before = {"name": team.name, "display_name": team.display_name, "description": team.description}
    if "display_name" in changes:
        team.display_name = check_name(changes["display_name"], "display_name", max_length=200)
    if "description" in changes:
        team.description = check_text(
            changes["description"], "description", max_length=10_000, allow_empty=True
        )
    if "name" in changes and changes["name"] != team.name:
        new_name = check_slug(changes["name"], "name")
        taken = Conflict(f"name: a team named '{new_name}' already exists")
        if s.scalar(select(Team.id).where(Team.name == new_name)):
            raise taken
        team.name = new_name
        try:
            s.flush()
        except IntegrityError:  # taken meanwhile by a concurrent rename or create
            raise taken from None
    after = {"name": team.name, "display_name": team.display_name, "description": team.description}
    summary = audit.changes(before, after)
    if summary:
        team.updated_at = utcnow()
        audit.record(s, ctx, "team.update", "team", team.name, summary=summary)
    s.flush()
    return team


def delete(
    s: Session, ctx: Ctx, name: str, *, if_match: str | None = None, from_hub: bool = False
) -> None:
    """Delete a team; projects it made visible ('team' visibility) become private.
    ``from_hub``: its hub group is gone already (the hub layer leaves the hub alone)."""
    team = require_team(s, ctx, name, "team.manage", for_update=True)
    check_etag(team, if_match)
    owned = list(
        s.scalars(select(Project).where(Project.team_id == team.id, Project.visibility == "team"))
    )
    for project in owned:
        project.visibility = "private"
        project.updated_at = utcnow()
        audit.record(
            s,
            ctx,
            "project.update",
            "project",
            project.slug,
            project=project,
            summary={
                "visibility": {"from": "team", "to": "private"},
                "reason": f"team '{name}' deleted",
            },
        )
    # its roles on projects go with it: each project's trail says so (its admins read it there)
    roles = s.execute(
        select(Project, ProjectMember.role)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(ProjectMember.team_id == team.id)
        .order_by(Project.id)
    ).all()
    for project, role in roles:
        audit.record(
            s, ctx, "member.remove", "member", f"team:{name}", project=project,
            summary={"role": role, "reason": f"team '{name}' deleted"},
        )  # fmt: skip
    summary: dict[str, Any] = {"made_private": [p.slug for p in owned]}
    if from_hub:
        summary["source"] = "hub"
    audit.record(s, ctx, "team.delete", "team", name, summary=summary)
    quotas.team_deleted(s, ctx, team)
    touch_team(s, team.id)
    events.emit(s, events.TEAM_DELETED, team=name, hub_group=team.hub_group, from_hub=from_hub)
    s.delete(team)
    s.flush()


def list_members(
    s: Session,
    ctx: Ctx,
    name: str,
    *,
    role: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[TeamMember]:
    team = require_team(s, ctx, name, "team.read")
    stmt = select(TeamMember).where(TeamMember.team_id == team.id)
    if role:
        stmt = stmt.where(TeamMember.role == _team_role(role))
    return paginate(s, stmt, TEAM_MEMBER_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def _membership(s: Session, team: Team, username: str) -> TeamMember:
    row = s.scalar(
        select(TeamMember)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team.id, User.username == username)
    )
    if row is None:
        raise NotFound(f"'{username}' is not a member of team '{team.name}'")
    return row


def _keep_a_maintainer(s: Session, team: Team, leaving: TeamMember) -> None:
    if leaving.role != "maintainer":
        return
    others = s.scalar(
        select(func.count()).where(
            TeamMember.team_id == team.id,
            TeamMember.role == "maintainer",
            TeamMember.user_id != leaving.user_id,
        )
    )
    if not others:
        raise Conflict(
            f"team '{team.name}' needs at least one maintainer; make someone else maintainer first",
            code="last_maintainer",
        )


def add_member(
    s: Session, ctx: Ctx, name: str, *, username: str, role: str = "member"
) -> TeamMember:
    team = require_team(s, ctx, name, "team.manage")
    row = TeamMember(
        team_id=team.id, user=find_user(s, username, "username"), role=_team_role(role)
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        raise Conflict(f"username: '{username}' is already in team '{name}'") from None
    audit.record(
        s, ctx, "team.member_add", "team", name, summary={"username": username, "role": role}
    )
    events.emit(s, events.TEAM_MEMBER_ADDED, team=name, hub_group=team.hub_group,
                username=username, from_hub=False)  # fmt: skip
    touch_team(s, team.id)
    s.flush()
    return row


def change_member_role(s: Session, ctx: Ctx, name: str, username: str, role: str) -> TeamMember:
    # the team row is locked: two maintainers demoting each other at once queue here, so the
    # second sees the first's change and the team keeps a maintainer
    team = require_team(s, ctx, name, "team.manage", for_update=True)
    row = _membership(s, team, username)
    new_role = _team_role(role)
    if new_role != row.role:
        if new_role == "member":
            _keep_a_maintainer(s, team, row)
        audit.record(
            s,
            ctx,
            "team.member_update",
            "team",
            name,
            summary={"username": username, "role": {"from": row.role, "to": new_role}},
        )
        row.role = new_role
    s.flush()
    return row


def remove_member(s: Session, ctx: Ctx, name: str, username: str) -> None:
    """Maintainers remove anyone; every member may leave (a team keeps one maintainer)."""
    leaving = username == ctx.user.username
    team = require_team(s, ctx, name, "team.read" if leaving else "team.manage", for_update=True)
    row = _membership(s, team, username)
    _keep_a_maintainer(s, team, row)
    audit.record(
        s,
        ctx,
        "team.member_leave" if leaving else "team.member_remove",
        "team",
        name,
        summary={"username": username},
    )
    s.delete(row)
    events.emit(s, events.TEAM_MEMBER_REMOVED, team=name, hub_group=team.hub_group,
                username=username, from_hub=False)  # fmt: skip
    touch_team(s, team.id)
    s.flush()


def team_json(s: Session, team: Team) -> dict[str, Any]:
    count = s.scalar(select(func.count()).where(TeamMember.team_id == team.id))
    return {
        "name": team.name,
        "display_name": team.display_name,
        "description": team.description,
        "source": team.source,
        "hub_group": team.hub_group,
        "member_count": count,
        "created_at": team.created_at.isoformat(),
        "updated_at": team.updated_at.isoformat(),
        "etag": etag(team),
    }


def team_member_json(row: TeamMember) -> dict[str, Any]:
    return {
        "username": row.user.username,
        "display_name": row.user.display_name,
        "role": row.role,
        "added_at": row.created_at.isoformat(),
    }
