"""Users are created on their first request; JupyterHub groups are mirrored as teams."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import Team, TeamMember, User, utcnow
from . import events
from .access import is_superuser
from .context import Ctx, Identity
from .errors import BadRequest, NotFound
from .pagination import Page, SortSpec, paginate
from .text_search import folded, holds_text
from .validation import slugify


def username_of(s: Session, user_id: int | None) -> str | None:
    """The username of a user id (``None`` for none, or a user since deleted)."""
    user = s.get(User, user_id) if user_id is not None else None
    return user.username if user is not None else None


# people, not the workbench's own actors ("[system]": background jobs)
IS_PERSON = ~User.username.startswith("[")

# who background jobs (the trash purge, garbage collection) and the lazy expiry of
# invitations act and are audited as
SYSTEM_IDENTITY = Identity(username="[system]", display_name="Workbench (system)", is_admin=True)


def system_ctx(s: Session, ctx: Ctx) -> Ctx:
    """A context acting as the system (its user row made on first use) within the caller's
    transaction and request: for what the system records on the way of someone's request."""
    user = s.scalar(select(User).where(User.username == SYSTEM_IDENTITY.username))
    if user is None:
        user = ensure_user(s, SYSTEM_IDENTITY)
    return Ctx(user=user, request_id=ctx.request_id, policy=ctx.policy)


USER_SORTS = SortSpec(
    {"username": User.username, "created": User.created_at},
    id_column=User.id,
    default="username",
)


def _profile(identity: Identity) -> dict[str, Any]:
    return {
        "display_name": identity.display_name or identity.username,
        "email": identity.email,
        "avatar_url": identity.avatar_url,
        "color": identity.color,
        "is_admin": identity.is_admin,
    }


def ensure_user(
    s: Session,
    identity: Identity,
    *,
    previous_groups: tuple[str, ...] | None = None,
    group_prefix: str = "",
) -> User:
    """The user row for ``identity``, created or refreshed; groups synced to hub teams.

    ``previous_groups``: the groups of the user's previous identity; when given, only the
    difference is applied (see ``sync_hub_groups``). Only groups starting with
    ``group_prefix`` are teams.
    """
    if not identity.username or len(identity.username) > 255:
        raise BadRequest("username: must be 1-255 characters")
    profile = _profile(identity)
    user = s.scalar(select(User).where(User.username == identity.username))
    if user is None:
        try:
            with s.begin_nested():
                user = User(username=identity.username, **profile)
                s.add(user)
        except IntegrityError:  # created by a concurrent first request
            user = s.scalars(select(User).where(User.username == identity.username)).one()
    for key, value in profile.items():
        if getattr(user, key) != value:
            setattr(user, key, value)
    user.last_seen_at = utcnow()
    if user.left_hub_at is not None:
        user.left_hub_at = None  # a visit: the hub has them (again)
    if identity.groups is not None:
        groups = tuple(g for g in identity.groups if g.startswith(group_prefix))
        since = None
        if previous_groups is not None:
            since = tuple(g for g in previous_groups if g.startswith(group_prefix))
        sync_hub_groups(s, user, groups, since=since, prefix=group_prefix)
    s.flush()
    return user


def ensure_known_user(s: Session, username: str) -> User:
    """The row of a user named by the hub (a group member) who may not have visited yet."""
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, display_name=username)
        s.add(user)
        s.flush()
    return user


def ensure_known_users(
    s: Session, known: dict[str, bool], *, read_at: datetime | None = None
) -> tuple[int, list[str]]:
    """Rows for the users the hub knows (approved or logged in: name -> administrator), so
    administrators see them and can set their quotas before a first visit; the administrator
    flag of every such row follows the hub's.

    ``read_at``: ``known`` is all the hub has, read at that time; a person not in it (and made
    before then) has left the hub (``left_hub_at``), one in it is back. Returns (rows added,
    the names of the users who left now)."""
    names = sorted(known)
    have: dict[str, User] = {}
    for start in range(0, len(names), 500):
        batch = names[start : start + 500]
        have.update(
            (u.username, u) for u in s.scalars(select(User).where(User.username.in_(batch)))
        )
    added = 0
    for username in names:
        user = have.get(username)
        if user is None:
            s.add(User(username=username, display_name=username, is_admin=known[username]))
            added += 1
        else:
            if user.is_admin != known[username]:
                user.is_admin = known[username]
            if user.left_hub_at is not None:
                user.left_hub_at = None
    left: list[str] = []
    if read_at is not None:
        now = utcnow()
        gone = select(User).where(
            IS_PERSON, User.left_hub_at.is_(None), User.created_at < read_at
        )  # fmt: skip
        for user in s.scalars(gone):
            if user.username not in known:
                user.left_hub_at = now
                left.append(user.username)
    s.flush()
    return added, left


def hub_team(s: Session, group: str, prefix: str = "") -> tuple[Team, bool]:
    """The team mirroring hub ``group``, created on first sight under a free name (the group's
    name without ``prefix``); returns (team, created)."""
    team = s.scalar(select(Team).where(Team.hub_group == group))
    if team is not None:
        return team, False
    base = slugify(group.removeprefix(prefix) or group, fallback="team")[:60]
    name, n = base, 1
    while s.scalar(select(Team.id).where(Team.name == name)) is not None:
        n += 1
        name = f"{base[: 60 - len(str(n))]}-{n}"  # a workbench team already has the name
    # a hub group's name may be 255 characters long, a team's display name 200
    display_name = (group.removeprefix(prefix) or group)[: Team.display_name.type.length]
    team = Team(name=name, display_name=display_name, source="hub", hub_group=group)
    s.add(team)
    s.flush()
    return team, True


def sync_hub_groups(
    s: Session,
    user: User,
    groups: tuple[str, ...],
    *,
    since: tuple[str, ...] | None = None,
    prefix: str = "",
) -> None:
    """Make the user's hub-mirrored team memberships follow their JupyterHub groups.

    Without ``since`` the memberships become exactly ``groups``. With ``since`` (the groups
    reported before) only the change is applied: groups that appeared are joined, groups that
    disappeared are left -- a stale report then never undoes what the hub poll or the workbench
    changed meanwhile. Hub groups map to their own teams (``Team.hub_group``); a workbench team
    that happens to have the same name is never joined through a hub group.
    """
    from .project_servers import touch_team  # shares of project servers follow the team

    wanted = set(groups)
    current = {
        str(team.hub_group): (membership, team.name)
        for membership, team in s.execute(
            select(TeamMember, Team)
            .join(Team, Team.id == TeamMember.team_id)
            .where(
                TeamMember.user_id == user.id,
                Team.hub_group.is_not(None),
                Team.hub_group.startswith(prefix, autoescape=True),
            )
        )
    }
    leave = set(current) - wanted
    join = wanted - set(current)
    if since is not None:
        leave &= set(since)
        join -= set(since)
    for group in sorted(leave):
        membership, team_name = current[group]
        team_id = membership.team_id
        s.delete(membership)
        s.flush()
        events.emit(s, events.TEAM_MEMBER_REMOVED, team=team_name, hub_group=group,
                    username=user.username, from_hub=True)  # fmt: skip
        touch_team(s, team_id)
    for group in sorted(join):
        team, _ = hub_team(s, group, prefix)
        s.add(TeamMember(team_id=team.id, user_id=user.id, role="member"))
        s.flush()
        events.emit(s, events.TEAM_MEMBER_ADDED, team=team.name, hub_group=group,
                    username=user.username, from_hub=True)  # fmt: skip
        touch_team(s, team.id)


def get_user(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user '{username}' not found")
    return user


def refuse_near_miss(s: Session, username: str, field: str) -> None:
    """BadRequest when ``username`` is no user's but another's in another case or Unicode form
    ('Alice' for 'alice', 'José' typed decomposed): usernames match exactly, so it would name
    no one."""
    spellings = {unicodedata.normalize(form, username).lower() for form in ("NFC", "NFD")}
    other = s.scalar(
        select(User.username)
        .where(folded(User.username).in_(spellings), User.username != username, IS_PERSON)
        .order_by(User.username)
        .limit(1)
    )
    if other is not None:
        raise BadRequest(
            f"{field}: no user is named '{username}'; did you mean '{other}'? (usernames match "
            "exactly, in case and Unicode form too)",
            code="unknown_user",
        )


def find_user(s: Session, username: str, field: str) -> User:
    """A user named in a request body; unknown names are a 400 that names the field."""
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        refuse_near_miss(s, username, field)
        raise BadRequest(
            f"{field}: no user named '{username}' has used the workbench yet "
            "(invite them instead: invitations work before their first visit)",
            code="unknown_user",
        )
    return user


def list_users(
    s: Session,
    ctx: Ctx,
    *,
    q: str | None = None,
    admins: bool | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[User]:
    stmt = select(User).where(IS_PERSON, User.left_hub_at.is_(None))
    if q:
        stmt = stmt.where(holds_text(q, User.username, User.display_name))
    if admins is not None:
        stmt = stmt.where(User.is_admin.is_(admins))
    return paginate(s, stmt, USER_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def user_json(user: User, *, private: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
        "color": user.color,
        "is_admin": is_superuser(user),
    }
    if private:
        data["email"] = user.email
        data["created_at"] = user.created_at.isoformat()
        data["last_seen_at"] = user.last_seen_at.isoformat()
    return data
