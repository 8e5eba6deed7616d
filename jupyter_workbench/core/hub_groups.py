"""JupyterHub groups -> teams: apply what the hub's groups say to the teams linked to them.

The hub layer reads ``GET /hub/api/groups`` every ``hub_group_sync_interval`` seconds and hands
the result here. Each group (with the configured prefix) is a team (``Team.hub_group``): created
on first sight, its members made equal to the group's, deleted when the group is deleted. Every
change is audited as the acting (system) user with ``"source": "hub"``, and emitted as an event
marked ``from_hub`` (the hub layer never pushes those back: no ping-pong).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Team, TeamMember, User
from . import audit, events, teams
from .context import Ctx
from .project_servers import touch_team
from .users import ensure_known_user, hub_team


def apply_hub_groups(
    s: Session,
    ctx: Ctx,
    groups: dict[str, list[str]],
    *,
    prefix: str = "",
    skip: frozenset[str] = frozenset(),
    read_at: datetime | None = None,
) -> dict[str, int]:
    """Make the linked teams match ``groups`` ({group: [usernames]}); groups in ``skip`` (with
    workbench changes not yet in the hub) are left alone, and so are teams and members made
    at or after ``read_at``, when the groups were read (the hub cannot have them yet). Returns
    counts of what changed."""
    counts = {"teams_created": 0, "teams_deleted": 0, "members_added": 0, "members_removed": 0}
    linked = list(s.scalars(select(Team).where(Team.hub_group.is_not(None)).order_by(Team.id)))
    for team in linked:
        group = team.hub_group or ""
        if read_at is not None and team.created_at >= read_at:
            continue
        if group.startswith(prefix) and group not in groups and group not in skip:
            teams.delete(s, ctx, team.name, from_hub=True)
            counts["teams_deleted"] += 1
    for group in sorted(groups):
        if not group.startswith(prefix) or group in skip:
            continue
        team, created = hub_team(s, group, prefix)
        if created:
            audit.record(s, ctx, "team.create", "team", team.name,
                         summary={"hub_group": group, "source": "hub"})  # fmt: skip
            counts["teams_created"] += 1
        current = {
            username: row
            for row, username in s.execute(
                select(TeamMember, User.username)
                .join(User, User.id == TeamMember.user_id)
                .where(TeamMember.team_id == team.id)
            )
        }
        wanted = set(groups[group])
        for username in sorted(wanted - set(current)):
            user = ensure_known_user(s, username)
            s.add(TeamMember(team_id=team.id, user_id=user.id, role="member"))
            added = {"username": username, "role": "member", "source": "hub"}
            audit.record(s, ctx, "team.member_add", "team", team.name, summary=added)
            events.emit(s, events.TEAM_MEMBER_ADDED, team=team.name, hub_group=group,
                        username=username, from_hub=True)  # fmt: skip
            counts["members_added"] += 1
        for username in sorted(set(current) - wanted):
            if read_at is not None and current[username].created_at >= read_at:
                continue
            s.delete(current[username])
            audit.record(s, ctx, "team.member_remove", "team", team.name,
                         summary={"username": username, "source": "hub"})  # fmt: skip
            events.emit(s, events.TEAM_MEMBER_REMOVED, team=team.name, hub_group=group,
                        username=username, from_hub=True)  # fmt: skip
            counts["members_removed"] += 1
        if wanted != set(current):
            s.flush()
            touch_team(s, team.id)
    s.flush()
    return counts
