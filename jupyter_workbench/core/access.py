"""Every access rule of the workbench, in one place.

A project action needs a minimum role on the project (``PROJECT_RULES``); a team action needs a
team role (``TEAM_RULES``); a few actions are about the caller themselves (``SELF_RULES``).
Callers who may not see a project get ``NotFound`` (its existence is never revealed), callers who
may see it but lack the role get ``Forbidden``. The route table names one of these actions for
every route and method; the access-matrix test derives its expectations from these tables.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from ..db.models import Project, ProjectMember, Team, TeamMember, User
from .context import Ctx
from .errors import BadRequest, Conflict, Forbidden, NotFound


class Role(IntEnum):
    """Project roles, ordered: each includes the rights of those below it."""

    NONE = 0
    VIEWER = 1
    EDITOR = 2
    ADMIN = 3
    OWNER = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, field: str = "role", *, allow_owner: bool = False) -> Role:
        allowed = ["viewer", "editor", "admin"] + (["owner"] if allow_owner else [])
        if not isinstance(value, str) or value not in allowed:
            raise BadRequest(
                f"{field}: must be one of {', '.join(allowed)} (got {value!r})",
                code="invalid_field",
            )
        return cls[value.upper()]


TEAM_ROLES = ("member", "maintainer")

# Minimum project role for each project action.
PROJECT_RULES: dict[str, Role] = {
    "project.read": Role.VIEWER,
    "project.update": Role.ADMIN,
    "project.archive": Role.ADMIN,
    "project.delete": Role.OWNER,
    "project.restore": Role.OWNER,
    "project.transfer": Role.OWNER,
    "members.read": Role.VIEWER,
    "members.manage": Role.ADMIN,
    "invitations.read": Role.ADMIN,
    "invitations.manage": Role.ADMIN,
    "access_requests.read": Role.ADMIN,
    "access_requests.decide": Role.ADMIN,
    "model_configs.read": Role.VIEWER,
    "model_configs.write": Role.EDITOR,
    "model_configs.delete": Role.ADMIN,
    "audit.read": Role.ADMIN,
    "datasets.read": Role.VIEWER,
    "datasets.write": Role.EDITOR,
    "datasets.delete": Role.ADMIN,
    "datasets.gc": Role.ADMIN,
    # re-reading a whole version: an operation that costs the server a read of every byte
    "datasets.verify": Role.EDITOR,
    "experiments.read": Role.VIEWER,
    "experiments.write": Role.EDITOR,
    "experiments.delete": Role.ADMIN,
    "models.promote": Role.ADMIN,
    # collaborative documents (README, notes, cards, reports) and their snapshots
    "documents.read": Role.VIEWER,
    "documents.write": Role.EDITOR,
    "documents.delete": Role.ADMIN,
    # the project's shared JupyterHub server (hub service mode)
    "server.read": Role.EDITOR,
    "server.start": Role.EDITOR,
    "server.stop": Role.EDITOR,
}

# The least role that gets a share of the project's server.
PROJECT_SERVER_ROLE = Role.EDITOR

# Actions refused with 409 while a project is archived (it is read-only then).
BLOCKED_WHEN_ARCHIVED = frozenset(
    {
        "project.update",
        "model_configs.write",
        "model_configs.delete",
        "datasets.write",
        "datasets.delete",
        "experiments.write",
        "experiments.delete",
        "documents.write",
        "documents.delete",
        "models.promote",
        "server.start",
    }
)

# Team actions: 'maintainer' needs that team role; 'user' is any signed-in user.
TEAM_RULES: dict[str, str] = {
    "team.read": "user",
    "team.manage": "maintainer",
}

# Actions whose rule is about the caller themselves, checked by the domain module named here.
SELF_RULES: dict[str, str] = {
    # any signed-in user
    "user.read": "any signed-in user",
    "projects.list": "any signed-in user (lists only what they may see)",
    "projects.create": "any signed-in user",
    "teams.create": "any signed-in user",
    "audit.list": "any signed-in user; sees events of projects they administer and their own",
    "notifications.own": "any signed-in user (what waits for them: invitations to answer, and"
    " access and promotion requests to decide in the projects they administer)",
    "activity.list": "any signed-in user; sees events of the projects they belong to (invitations,"
    " access requests, secrets and quotas only where they are admins) and their own",
    # rules that depend on the object
    "members.leave": "the member themselves (the owner cannot leave)",
    "invitations.respond": "the invited user only (others who see the project get 403)",
    "access_requests.create": "a user who can see the project and lacks the requested role",
    "access_requests.view": "project admins, or the requesting user (also once the project"
    " turned private)",
    "access_requests.withdraw": "the requesting user only (others who see the project get 403)",
    "datasets.search": "any signed-in user (finds datasets of projects they may see)",
    "runs.search": "any signed-in user (finds runs of projects they may see)",
    "lineage.read": "any signed-in user (sees versions of projects they may see)",
    "operations.read": "the user who started the operation (or an administrator); a version's"
    " verify also its project's editors",
    "storage.admin": "workbench administrators only",
    "secrets.own": "any signed-in user (only their own secrets)",
    "usage.own": "any signed-in user (only their own usage and quota)",
    "usage.admin": "workbench administrators only",
    "quotas.admin": "workbench administrators only",
    "admin.read": "workbench administrators only",
    "signups.admin": "workbench administrators only (sign-ups live in JupyterHub)",
    "hub.internal": "the hub itself (Workbench.hub_internal_token), never a user",
}

ALL_ACTIONS = frozenset(PROJECT_RULES) | frozenset(TEAM_RULES) | frozenset(SELF_RULES)
# for workbench administrators only: anyone else is refused before being told what is wrong
ADMIN_ACTIONS = frozenset(
    action for action, rule in SELF_RULES.items() if rule.startswith("workbench administrators")
)


def is_superuser(user: User) -> bool:
    return bool(user.is_admin)


def require_admin(ctx: Ctx, what: str) -> None:
    """Forbidden unless the caller is a workbench administrator; ``what`` completes
    "only workbench administrators may ..."."""
    if not is_superuser(ctx.user):
        raise Forbidden(f"only workbench administrators may {what}")


def team_ids_of(s: Session, user_id: int) -> list[int]:
    return list(s.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def member_project_ids(user: User) -> Any:
    """A subquery of the ids of the projects ``user`` is a member of, directly or by a team."""
    team_ids = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    return union(
        select(ProjectMember.project_id).where(ProjectMember.user_id == user.id),
        select(ProjectMember.project_id).where(ProjectMember.team_id.in_(team_ids)),
    )


def administered_project_ids(user: User) -> Any:
    """A subquery of the ids of the projects ``user`` is an admin or owner of (or by a team)."""
    team_ids = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    return select(ProjectMember.project_id).where(
        ProjectMember.role.in_(("admin", "owner")),
        (ProjectMember.user_id == user.id) | ProjectMember.team_id.in_(team_ids),
    )


def direct_role(s: Session, user: User, project: Project) -> Role:
    """The role the user holds as a member in their own name (not through a team)."""
    role = s.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
        )
    )
    return Role[role.upper()] if role else Role.NONE


def membership_role(s: Session, user: User, project: Project) -> Role:
    """The highest role the user holds as a member, directly or through a team."""
    team_ids = select(TeamMember.team_id).where(TeamMember.user_id == user.id)
    roles = s.scalars(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project.id,
            (ProjectMember.user_id == user.id) | ProjectMember.team_id.in_(team_ids),
        )
    ).all()
    return max((Role[r.upper()] for r in roles), default=Role.NONE)


def project_role(s: Session, user: User, project: Project) -> Role:
    """The caller's effective role: owner/direct/team membership, visibility, admin rights."""
    if is_superuser(user):
        return Role.OWNER
    role = membership_role(s, user, project)
    if role == Role.NONE and project.deleted_at is None:
        if project.visibility == "public":
            role = Role.VIEWER
        elif project.visibility == "team" and project.team_id is not None:
            in_team = s.scalar(
                select(TeamMember.user_id).where(
                    TeamMember.team_id == project.team_id, TeamMember.user_id == user.id
                )
            )
            if in_team is not None:
                role = Role.VIEWER
    return role


def users_with_role(s: Session, project: Project, role: Role) -> set[str]:
    """Usernames holding at least ``role`` on ``project`` as members, directly or through a
    team (administrators without a membership are not counted)."""
    labels = [r.label for r in Role if r >= role and r != Role.NONE]
    direct = (
        select(User.username)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project.id, ProjectMember.role.in_(labels))
    )
    via_team = (
        select(User.username)
        .join(TeamMember, TeamMember.user_id == User.id)
        .join(ProjectMember, ProjectMember.team_id == TeamMember.team_id)
        .where(ProjectMember.project_id == project.id, ProjectMember.role.in_(labels))
    )
    return set(s.scalars(direct)) | set(s.scalars(via_team))


def roles_for_projects(s: Session, user: User, projects: list[Project]) -> dict[int, Role]:
    """``project_role`` for many projects in two queries (for list pages)."""
    if not projects:
        return {}
    if is_superuser(user):
        return {p.id: Role.OWNER for p in projects}
    ids = [p.id for p in projects]
    my_teams = team_ids_of(s, user.id)
    result: dict[int, Role] = {pid: Role.NONE for pid in ids}
    rows = s.execute(
        select(ProjectMember.project_id, ProjectMember.role).where(
            ProjectMember.project_id.in_(ids),
            (ProjectMember.user_id == user.id) | ProjectMember.team_id.in_(my_teams),
        )
    )
    for pid, role in rows:
        result[pid] = max(result[pid], Role[role.upper()])
    for p in projects:
        if result[p.id] == Role.NONE and p.deleted_at is None:
            visible = p.visibility == "public" or (
                p.visibility == "team" and p.team_id is not None and p.team_id in my_teams
            )
            if visible:
                result[p.id] = Role.VIEWER
    return result


def require_project(
    s: Session,
    ctx: Ctx,
    slug: str,
    action: str,
    *,
    include_deleted: bool = False,
    for_update: bool = False,
) -> tuple[Project, Role]:
    """Load a project for ``action`` or raise NotFound/Forbidden/Conflict.

    ``for_update`` locks the row (PostgreSQL) so concurrent writers of it queue instead of
    failing their optimistic version check.
    """
    stmt = select(Project).where(Project.slug == slug)
    project = s.scalar(stmt.with_for_update() if for_update else stmt)
    if project is None:
        raise NotFound(f"project '{slug}' not found")
    role = check_project(s, ctx, project, action, include_deleted=include_deleted)
    return project, role


def check_project(
    s: Session, ctx: Ctx, project: Project, action: str, *, include_deleted: bool = False
) -> Role:
    """The caller's role on ``project`` if it allows ``action``; else NotFound/Forbidden."""
    needed = PROJECT_RULES[action]
    slug = project.slug
    role = project_role(s, ctx.user, project)
    if project.deleted_at is not None and not (include_deleted and role >= Role.OWNER):
        raise NotFound(f"project '{slug}' not found")
    if role == Role.NONE:
        raise NotFound(f"project '{slug}' not found")
    if role < needed:
        raise Forbidden(
            f"{action} needs the {needed.label} role on project '{slug}'; yours is {role.label}"
        )
    if project.archived_at is not None and action in BLOCKED_WHEN_ARCHIVED:
        raise Conflict(
            f"project '{slug}' is archived and read-only; unarchive it first", code="archived"
        )
    return role


def can_grant(granter: Role, role: Role) -> None:
    """Admins grant up to admin; only the owner role is never granted (it is transferred)."""
    if role >= Role.OWNER:
        raise BadRequest("role: the owner role is only given by transferring ownership")
    if role > granter:
        raise Forbidden(f"a {granter.label} cannot grant the {role.label} role")


def team_role(s: Session, user: User, team: Team) -> str | None:
    return s.scalar(
        select(TeamMember.role).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id)
    )


def require_team(s: Session, ctx: Ctx, name: str, action: str, *, for_update: bool = False) -> Team:
    """Load a team for ``action``: every signed-in user sees teams; maintainers manage them."""
    stmt = select(Team).where(Team.name == name)
    team = s.scalar(stmt.with_for_update() if for_update else stmt)
    if team is None:
        raise NotFound(f"team '{name}' not found")
    needs_maintainer = TEAM_RULES[action] == "maintainer" and not is_superuser(ctx.user)
    if needs_maintainer and team_role(s, ctx.user, team) != "maintainer":
        raise Forbidden(f"{action} needs the maintainer role in team '{name}'")
    return team
