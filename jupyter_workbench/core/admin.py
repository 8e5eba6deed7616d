"""The administrators' overview: every user with their teams, servers and this month's hours."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.models import ServerUsage, Team, TeamMember, User, utcnow
from . import usage
from .access import require_admin
from .context import Ctx
from .pagination import SortSpec, paginate
from .text_search import holds_text
from .users import IS_PERSON

PEOPLE_SORTS = SortSpec(
    {"last_seen": User.last_seen_at, "name": User.username}, id_column=User.id, default="-last_seen"
)


def people(
    s: Session,
    ctx: Ctx,
    *,
    q: str | None = None,
    left: bool = False,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A page of the users (most recently seen first, or by ``name``) with their teams, running
    servers and this month's server- and GPU-hours; plus totals for the whole hub.
    ``left``: those the hub no longer has instead (deleted there; their history stays)."""
    require_admin(ctx, "use the admin panel")
    now = now or utcnow()
    present = User.left_hub_at.is_(None)
    stmt = select(User).where(IS_PERSON, ~present if left else present)
    if q:
        stmt = stmt.where(holds_text(q, User.username, User.display_name))
    page = paginate(s, stmt, PEOPLE_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)
    users = page.items
    ids = [u.id for u in users]

    teams: dict[int, list[dict[str, str]]] = defaultdict(list)
    if ids:
        rows = s.execute(
            select(TeamMember.user_id, Team.name, TeamMember.role)
            .join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.user_id.in_(ids))
            .order_by(Team.name)
        )
        for user_id, team, role in rows:
            teams[user_id].append({"team": team, "role": role})

    start = usage.month_start(now)
    running: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in usage.open_runs(s, ids):
        if run.user_id is not None:
            running[run.user_id].append(usage.run_json(run, now))
    server_h: dict[int, float] = defaultdict(float)
    gpu_h: dict[int, float] = defaultdict(float)
    for run in usage.runs_between(s, start, now + timedelta(seconds=1), ids):
        if run.user_id is None:
            continue
        h = usage.hours(run, start, now, now)
        server_h[run.user_id] += h
        gpu_h[run.user_id] += h * run.gpus

    items = [
        {
            "username": u.username,
            "display_name": u.display_name,
            "is_admin": bool(u.is_admin),
            "last_seen_at": u.last_seen_at.isoformat(),
            "left_hub_at": u.left_hub_at.isoformat() if u.left_hub_at else None,
            "teams": teams[u.id],
            "servers": running[u.id],
            "gpus_in_use": sum(r["gpus"] for r in running[u.id]),
            "server_hours_this_month": round(server_h[u.id], 4),
            "gpu_hours_this_month": round(gpu_h[u.id], 4),
        }
        for u in users
    ]
    servers_running, gpus_in_use = s.execute(
        select(func.count(), func.coalesce(func.sum(ServerUsage.gpus), 0)).where(
            ServerUsage.stopped_at.is_(None)
        )
    ).one()
    people = select(func.count()).select_from(User).where(IS_PERSON)
    totals = {
        "users": s.scalar(people.where(present)) or 0,
        "left_hub": s.scalar(people.where(~present)) or 0,
        "teams": s.scalar(select(func.count()).select_from(Team)) or 0,
        "servers_running": servers_running,
        "gpus_in_use": int(gpus_in_use),
        "month": start.strftime("%Y-%m"),
    }
    return {"items": items, "next_cursor": page.next_cursor, "totals": totals}
