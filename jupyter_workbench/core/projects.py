"""Projects: create, list, rename, describe, archive, soft-delete/restore/purge, transfer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.locks import lock_name
from ..db.models import Project, ProjectMember, Team, TeamMember, User, utcnow
from . import audit, events
from .access import Role, member_project_ids, require_project, roles_for_projects, team_role
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden
from .etags import check_etag, etag
from .pagination import Page, SortSpec, paginate
from .project_servers import touch_project
from .text_search import holds_text
from .validation import SLUG_MAX, check_name, check_slug, check_text, slugify

VISIBILITIES = ("private", "team", "public")
NAME_MAX = 200
DESCRIPTION_MAX = 10_000

PROJECT_SORTS = SortSpec(
    {"name": Project.name, "created": Project.created_at, "updated": Project.updated_at},
    id_column=Project.id,
    default="name",
    any_case=frozenset({"name"}),
)


def _check_visibility(value: str) -> str:
    if value not in VISIBILITIES:
        raise BadRequest(
            f"visibility: must be one of {', '.join(VISIBILITIES)} (got {value!r})",
            code="invalid_field",
        )
    return value


def _owning_team(s: Session, ctx: Ctx, name: str | None) -> Team | None:
    if name is None:
        return None
    team = s.scalar(select(Team).where(Team.name == name))
    if team is None or (team_role(s, ctx.user, team) is None and not ctx.user.is_admin):
        raise BadRequest(
            f"team: you are not a member of a team named '{name}'", code="unknown_team"
        )
    return team


def _check_team_visibility(visibility: str, team: Team | None) -> None:
    if visibility == "team" and team is None:
        raise BadRequest("team: visibility 'team' needs an owning team", code="invalid_field")


def _numbered(base: str, n: int) -> str:
    if n == 1:
        return base
    return f"{base[: SLUG_MAX - len(str(n)) - 1].rstrip('-')}-{n}"


def _free_slug(s: Session, base: str) -> str:
    """``base``, else the first free ``base-2``, ``base-3`` ... (looked up 50 at a time)."""
    for start in range(1, 10_000, 50):
        candidates = [_numbered(base, n) for n in range(start, start + 50)]
        taken = set(s.scalars(select(Project.slug).where(Project.slug.in_(candidates))))
        for candidate in candidates:
            if candidate not in taken:
                return candidate
    raise Conflict(f"slug: too many projects are called '{base}'; give a slug")  # pragma: no cover


def create(
    s: Session,
    ctx: Ctx,
    *,
    name: str,
    description: str = "",
    visibility: str = "private",
    slug: str | None = None,
    team: str | None = None,
) -> Project:
    """A new project owned by the caller; the slug is derived from the name unless given."""
    name = check_name(name, "name", max_length=NAME_MAX)
    description = check_text(
        description, "description", max_length=DESCRIPTION_MAX, allow_empty=True
    )
    _check_visibility(visibility)
    owning_team = _owning_team(s, ctx, team)
    _check_team_visibility(visibility, owning_team)
    explicit = slug is not None
    base = check_slug(slug, "slug") if slug is not None else slugify(name)
    # Creators of the same base slug queue here, so each sees the slugs taken before it.
    lock_name(s, f"project-slug:{base}")
    for _attempt in range(20):
        candidate = base if explicit else _free_slug(s, base)
        project = Project(
            slug=candidate,
            name=name,
            description=description,
            visibility=visibility,
            team_id=owning_team.id if owning_team else None,
        )
        try:
            with s.begin_nested():
                s.add(project)
                s.flush()
            break
        except IntegrityError:  # taken meanwhile by a concurrent request
            if explicit:
                raise Conflict(f"slug: a project with slug '{candidate}' already exists") from None
    else:  # pragma: no cover - needs 20 lost races in a row
        raise Conflict(f"slug: could not find a free slug for '{name}'; try again")
    s.add(ProjectMember(project_id=project.id, user_id=ctx.user.id, role="owner"))
    audit.record(
        s,
        ctx,
        "project.create",
        "project",
        project.slug,
        project=project,
        summary={"name": name, "visibility": visibility, "team": team},
    )
    s.flush()
    return project


def get(s: Session, ctx: Ctx, slug: str) -> tuple[Project, Role]:
    return require_project(s, ctx, slug, "project.read")


def visible_project_ids(user: User) -> Any:
    """A subquery of the live projects ``user`` can see (members, public, team-visible)."""
    my_teams = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    return select(Project.id).where(
        Project.deleted_at.is_(None),
        or_(
            Project.id.in_(member_project_ids(user)),
            Project.visibility == "public",
            (Project.visibility == "team") & Project.team_id.in_(my_teams),
        ),
    )


def list_projects(
    s: Session,
    ctx: Ctx,
    *,
    scope: str = "member",
    q: str | None = None,
    visibility: str | None = None,
    archived: bool | None = None,
    deleted: bool = False,
    min_role: Role | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[tuple[Project, Role]]:
    """Projects of the caller: ``scope=member`` (default) or ``all`` they can see."""
    stmt = select(Project)
    user = ctx.user
    if scope == "member" or (scope == "all" and not user.is_admin):
        mine: ColumnElement[bool] = Project.id.in_(member_project_ids(user))
        if scope == "all":
            my_teams = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
            mine = or_(
                mine,
                Project.visibility == "public",
                (Project.visibility == "team") & Project.team_id.in_(my_teams),
            )
        stmt = stmt.where(mine)
    elif scope != "all":
        raise BadRequest(
            f"scope: must be 'member' or 'all' (got {scope!r})", code="invalid_parameter"
        )
    if deleted:
        owned = select(ProjectMember.project_id).where(
            ProjectMember.user_id == user.id, ProjectMember.role == "owner"
        )
        stmt = stmt.where(Project.deleted_at.is_not(None))
        if not user.is_admin:
            stmt = stmt.where(Project.id.in_(owned))
    else:
        stmt = stmt.where(Project.deleted_at.is_(None))
    if q:
        stmt = stmt.where(holds_text(q, Project.name, Project.slug))
    if visibility:
        stmt = stmt.where(Project.visibility == _check_visibility(visibility))
    if archived is not None:
        stmt = stmt.where(
            Project.archived_at.is_not(None) if archived else Project.archived_at.is_(None)
        )
    if min_role is not None and min_role > Role.VIEWER and not user.is_admin:
        labels = [r.label for r in Role if r >= min_role]
        team_ids = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
        stmt = stmt.where(
            Project.id.in_(
                select(ProjectMember.project_id).where(
                    ProjectMember.role.in_(labels),
                    (ProjectMember.user_id == user.id) | ProjectMember.team_id.in_(team_ids),
                )
            )
        )
    page = paginate(s, stmt, PROJECT_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)
    roles = roles_for_projects(s, user, page.items)
    if deleted:
        roles = {p.id: Role.OWNER for p in page.items}
    return Page([(p, roles[p.id]) for p in page.items], page.next_cursor)


def _snapshot(s: Session, project: Project) -> dict[str, Any]:
    """What an update may change, as its audit event names it (the owning team by name)."""
    team = s.get(Team, project.team_id) if project.team_id is not None else None
    return {
        "name": project.name,
        "description": project.description,
        "visibility": project.visibility,
        "slug": project.slug,
        "team": team.name if team is not None else None,
    }


def update(
    s: Session, ctx: Ctx, slug: str, changes: dict[str, Any], *, if_match: str | None = None
) -> Project:
    """Rename, describe, re-slug, change visibility or owning team (admin+)."""
    project, _role = require_project(s, ctx, slug, "project.update", for_update=True)
    check_etag(project, if_match)
    before = _snapshot(s, project)
    if "name" in changes:
        project.name = check_name(changes["name"], "name", max_length=NAME_MAX)
    if "description" in changes:
        project.description = check_text(
            changes["description"], "description", max_length=DESCRIPTION_MAX, allow_empty=True
        )
    if "team" in changes:
        team = _owning_team(s, ctx, changes["team"])
        project.team_id = team.id if team else None
    if "visibility" in changes:
        project.visibility = _check_visibility(changes["visibility"])
    _check_team_visibility(project.visibility, project.team)
    after = _snapshot(s, project)
    if (after["visibility"], after["team"]) != (before["visibility"], before["team"]):
        events.emit(s, events.PROJECT_MEMBERS_CHANGED, project=project.slug)  # open documents
    if "slug" in changes and changes["slug"] != project.slug:
        new_slug = check_slug(changes["slug"], "slug")
        taken = Conflict(f"slug: a project with slug '{new_slug}' already exists")
        if s.scalar(select(Project.id).where(Project.slug == new_slug)):
            raise taken
        project.slug = new_slug
        try:
            s.flush()
        except IntegrityError:  # taken meanwhile by a concurrent rename or create
            raise taken from None
    summary = audit.changes(before, _snapshot(s, project))
    if summary:
        project.updated_at = utcnow()
        audit.record(
            s, ctx, "project.update", "project", project.slug, project=project, summary=summary
        )
    s.flush()
    return project


def set_archived(s: Session, ctx: Ctx, slug: str, archived: bool) -> Project:
    project, _role = require_project(s, ctx, slug, "project.archive", for_update=True)
    if (project.archived_at is not None) == archived:
        raise Conflict(
            f"project '{slug}' is {'already' if archived else 'not'} archived",
            code="already_archived" if archived else "not_archived",
        )
    project.archived_at = utcnow() if archived else None
    project.updated_at = utcnow()
    action = "project.archive" if archived else "project.unarchive"
    audit.record(s, ctx, action, "project", project.slug, project=project)
    events.emit(s, events.PROJECT_MEMBERS_CHANGED, project=project.slug)  # open documents
    s.flush()
    return project


def soft_delete(s: Session, ctx: Ctx, slug: str, *, if_match: str | None = None) -> Project:
    """Move a project to the trash: hidden everywhere, restorable until purged."""
    project, _role = require_project(s, ctx, slug, "project.delete", for_update=True)
    check_etag(project, if_match)
    project.deleted_at = utcnow()
    audit.record(
        s,
        ctx,
        "project.delete",
        "project",
        project.slug,
        project=project,
        summary={"restorable_until": (project.deleted_at + ctx.policy.trash_retention).isoformat()},
    )
    touch_project(s, project)  # a project in the trash shares its server with no one
    s.flush()
    return project


def restore(s: Session, ctx: Ctx, slug: str) -> Project:
    project, _role = require_project(
        s, ctx, slug, "project.restore", include_deleted=True, for_update=True
    )
    if project.deleted_at is None:
        raise Conflict(f"project '{slug}' is not deleted", code="not_deleted")
    project.deleted_at = None
    project.updated_at = utcnow()
    audit.record(s, ctx, "project.restore", "project", project.slug, project=project)
    touch_project(s, project)
    s.flush()
    return project


def purge_expired(s: Session, ctx: Ctx, *, now: datetime | None = None) -> list[str]:
    """Delete for good the projects whose trash retention has passed; returns their slugs."""
    if not ctx.user.is_admin:
        raise Forbidden("only the system or an administrator purges the trash")
    cutoff = (now or utcnow()) - ctx.policy.trash_retention
    doomed = list(
        s.scalars(
            select(Project).where(Project.deleted_at.is_not(None), Project.deleted_at < cutoff)
        )
    )
    for project in doomed:
        audit.record(s, ctx, "project.purge", "project", project.slug, project=project)
    if doomed:
        s.execute(delete(Project).where(Project.id.in_([p.id for p in doomed])))
    s.flush()
    return [p.slug for p in doomed]


def owner_of(s: Session, project: Project) -> User:
    return s.scalars(
        select(User)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project.id, ProjectMember.role == "owner")
    ).one()


def transfer(s: Session, ctx: Ctx, slug: str, new_owner: User) -> Project:
    """Give ownership to another user; the previous owner stays on as admin."""
    project, _role = require_project(s, ctx, slug, "project.transfer", for_update=True)
    old = s.scalars(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.role == "owner"
        )
    ).one()
    if old.user_id == new_owner.id:
        raise Conflict(f"owner: '{new_owner.username}' already owns project '{slug}'")
    if ctx.user.id != old.user_id and not ctx.user.is_admin:  # pragma: no cover - rule says owner
        raise Forbidden("only the owner can transfer ownership")
    previous = old.user.username if old.user is not None else None
    old.role = "admin"
    old.updated_at = utcnow()
    s.flush()
    row = s.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == new_owner.id
        )
    )
    if row is None:
        row = ProjectMember(project_id=project.id, user_id=new_owner.id, role="owner")
        s.add(row)
    else:
        row.role = "owner"
        row.updated_at = utcnow()
    audit.record(
        s,
        ctx,
        "project.transfer",
        "project",
        project.slug,
        project=project,
        summary={"owner": {"from": previous, "to": new_owner.username}},
    )
    touch_project(s, project)
    s.flush()
    return project


def _json(project: Project, role: Role, owner: str | None, team: str | None) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "visibility": project.visibility,
        "team": team,
        "owner": owner,
        "my_role": role.label,
        "archived": project.archived_at is not None,
        "archived_at": project.archived_at.isoformat() if project.archived_at else None,
        "deleted_at": project.deleted_at.isoformat() if project.deleted_at else None,
        "created_at": project.created_at.isoformat(),
        "updated_at": project.updated_at.isoformat(),
        "etag": etag(project),
    }


def project_json(s: Session, project: Project, role: Role) -> dict[str, Any]:
    team = project.team.name if project.team else None
    return _json(project, role, owner_of(s, project).username, team)


def projects_json(s: Session, page: Page[tuple[Project, Role]]) -> list[dict[str, Any]]:
    """Serialise a page with one query for all owners and one for teams (not one per project)."""
    ids = [p.id for p, _ in page.items]
    if not ids:
        return []
    owners = dict(
        s.execute(
            select(ProjectMember.project_id, User.username)
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project_id.in_(ids), ProjectMember.role == "owner")
        ).all()
    )
    team_ids = {p.team_id for p, _ in page.items if p.team_id}
    teams = dict(s.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))).all())
    return [
        _json(p, role, owners.get(p.id), teams.get(p.team_id) if p.team_id else None)
        for p, role in page.items
    ]
