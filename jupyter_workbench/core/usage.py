"""Usage accounting: every server run from start to stop, summed into server- and GPU-hours.

The hub reports each spawn and stop (``start_run``/``stop_run``); reports split the runs that
overlap a time window by user, team (its current members' runs), project or profile, and a
series splits them into hourly or daily buckets for charts. A running server counts up to now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db.models import Project, ServerUsage, Team, TeamMember, User, utcnow
from . import audit
from .context import Ctx
from .errors import BadRequest
from .pagination import Page, SortSpec, paginate

GROUPS = ("user", "team", "project", "profile")
BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 2000
RUNNING_SORTS = SortSpec(
    {"started": ServerUsage.started_at, "user": ServerUsage.username},
    id_column=ServerUsage.id,
    default="started",
)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def hours(run: ServerUsage, start: datetime, end: datetime, now: datetime) -> float:
    """How many hours of ``run`` fall inside [start, end)."""
    stop = run.stopped_at or now
    overlap = (min(stop, end) - max(run.started_at, start)).total_seconds()
    return max(overlap, 0.0) / 3600


def run_json(run: ServerUsage, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "id": run.id,
        "user": run.username,
        "server_name": run.server_name,
        "profile": run.profile,
        "gpus": run.gpus,
        "project": run.project_slug,
        "started_at": run.started_at.isoformat(),
        "stopped_at": run.stopped_at.isoformat() if run.stopped_at else None,
        "hours": round(hours(run, run.started_at, now, now), 4),
    }


# -- recording -------------------------------------------------------------------------------
def open_runs(s: Session, user_ids: Iterable[int] | None = None) -> list[ServerUsage]:
    stmt = select(ServerUsage).where(ServerUsage.stopped_at.is_(None))
    if user_ids is not None:
        stmt = stmt.where(ServerUsage.user_id.in_(list(user_ids)))
    return list(s.scalars(stmt.order_by(ServerUsage.started_at, ServerUsage.id)))


def running(
    s: Session, ctx: Ctx, *, sort: str | None, limit: int | None, cursor: str | None
) -> Page[ServerUsage]:
    """A page of the servers running now (the longest-running first, or by ``user``)."""
    stmt = select(ServerUsage).where(ServerUsage.stopped_at.is_(None))
    return paginate(s, stmt, RUNNING_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def close_open(s: Session, username: str, server_name: str, now: datetime) -> list[ServerUsage]:
    """End the open run of a server (if any); returns the runs closed."""
    stmt = select(ServerUsage).where(
        ServerUsage.username == username,
        ServerUsage.server_name == server_name,
        ServerUsage.stopped_at.is_(None),
    )
    runs = list(s.scalars(stmt.with_for_update()))
    for run in runs:
        run.stopped_at = max(now, run.started_at)
    s.flush()
    return runs


def start_run(
    s: Session,
    ctx: Ctx,
    *,
    server_name: str,
    profile: str,
    gpus: int,
    project: Project | None = None,
    now: datetime | None = None,
) -> ServerUsage:
    """Record that the caller's server ``server_name`` starts (a stale open run is ended)."""
    now = now or utcnow()
    close_open(s, ctx.user.username, server_name, now)
    run = ServerUsage(
        user_id=ctx.user.id,
        username=ctx.user.username,
        server_name=server_name,
        profile=profile,
        gpus=gpus,
        project_id=project.id if project else None,
        project_slug=project.slug if project else None,
        started_at=now,
    )
    s.add(run)
    s.flush()
    audit.record(
        s, ctx, "server.start", "server", f"{ctx.user.username}/{server_name}",
        project=project, summary={"profile": profile, "gpus": gpus},
    )  # fmt: skip
    return run


def stop_run(s: Session, ctx: Ctx, server_name: str, now: datetime | None = None) -> int:
    """Record that the caller's server stopped; how many open runs it ended (0 or 1)."""
    now = now or utcnow()
    runs = close_open(s, ctx.user.username, server_name, now)
    for run in runs:
        audit.record(
            s, ctx, "server.stop", "server", f"{run.username}/{server_name}",
            summary={"profile": run.profile, "gpus": run.gpus,
                     "hours": round(hours(run, run.started_at, run.stopped_at or now, now), 4)},
        )  # fmt: skip
    return len(runs)


def reconcile(
    s: Session,
    ctx: Ctx,
    running: set[tuple[str, str]],
    seen_at: datetime,
    stopped_at: dict[tuple[str, str], datetime] | None = None,
) -> list[dict[str, Any]]:
    """End the open runs of servers the hub says are not running (a stop the workbench never
    heard of: it was down, or the hub's hook failed). ``running`` holds (username, server name)
    pairs listed by the hub at ``seen_at``; runs that started after it are left alone (a spawn
    racing the listing). Each ended run ends when the hub says that server stopped
    (``stopped_at``, e.g. during a hub shutdown that stopped the service first), else at
    ``seen_at``; it is audited."""
    stopped_at = stopped_at or {}
    ended = []
    for run in open_runs(s):
        key = (run.username, run.server_name)
        if key in running or run.started_at >= seen_at:
            continue
        stop = min(seen_at, stopped_at.get(key, seen_at))
        run.stopped_at = max(stop, run.started_at)
        audit.record(
            s, ctx, "server.stop", "server", f"{run.username}/{run.server_name}",
            summary={"profile": run.profile, "gpus": run.gpus, "reason": "not running on the hub",
                     "stop_time": "hub" if key in stopped_at else "listing",
                     "hours": round(hours(run, run.started_at, run.stopped_at, seen_at), 4)},
        )  # fmt: skip
        ended.append(run_json(run, seen_at))
    s.flush()
    return ended


# -- reading ---------------------------------------------------------------------------------
def gpu_hours_of(
    s: Session, user_ids: Iterable[int], start: datetime, end: datetime, now: datetime
) -> float:
    return sum(hours(r, start, end, now) * r.gpus for r in runs_between(s, start, end, user_ids))


def runs_between(
    s: Session, start: datetime, end: datetime, user_ids: Iterable[int] | None = None
) -> list[ServerUsage]:
    """Runs overlapping [start, end)."""
    stmt = select(ServerUsage).where(
        ServerUsage.started_at < end,
        or_(ServerUsage.stopped_at.is_(None), ServerUsage.stopped_at > start),
    )
    if user_ids is not None:
        stmt = stmt.where(ServerUsage.user_id.in_(list(user_ids)))
    return list(s.scalars(stmt.order_by(ServerUsage.id)))


def window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The report window: defaults to this month so far."""
    end = end or now
    if start is None and end <= month_start(now):
        raise BadRequest(
            f"from: the default, the first of this month ({month_start(now).date()}), is not "
            f"before 'to' ({end.isoformat()}); give 'from' too",
            code="invalid_parameter",
        )
    start = start or month_start(now)
    if start >= end:
        raise BadRequest("from: must be before 'to'", code="invalid_parameter")
    return start, end


def _teams_of_users(s: Session, user_ids: set[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not user_ids:
        return out
    rows = s.execute(
        select(TeamMember.user_id, Team.name)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.user_id.in_(user_ids))
        .order_by(Team.name)
    )
    for user_id, name in rows:
        out[user_id].append(name)
    return out


def _keys(run: ServerUsage, group_by: str, teams: dict[int, list[str]]) -> list[str]:
    if group_by == "user":
        return [run.username]
    if group_by == "profile":
        return [run.profile]
    if group_by == "project":
        return [run.project_slug or ""]
    return teams.get(run.user_id or -1) or [""]


def report(
    s: Session,
    group_by: str,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Server- and GPU-hours in the window, per user/team/project/profile (largest first).

    By team, each run counts for every team its user belongs to now; '' collects runs of users
    in no team (and, by project, runs of personal servers).
    """
    if group_by not in GROUPS:
        raise BadRequest(f"group_by: must be one of {', '.join(GROUPS)}", code="invalid_parameter")
    now = now or utcnow()
    start, end = window(start, end, now)
    runs = runs_between(s, start, end)
    teams = _teams_of_users(s, {r.user_id for r in runs if r.user_id}) if group_by == "team" else {}
    sums: dict[str, dict[str, float]] = {}
    for run in runs:
        h = hours(run, start, end, now)
        for key in _keys(run, group_by, teams):
            row = sums.setdefault(key, {"server_hours": 0.0, "gpu_hours": 0.0, "runs": 0})
            row["server_hours"] += h
            row["gpu_hours"] += h * run.gpus
            row["runs"] += 1
    items: list[dict[str, Any]] = [
        {"key": key, "server_hours": round(v["server_hours"], 4),
         "gpu_hours": round(v["gpu_hours"], 4), "runs": int(v["runs"])}
        for key, v in sums.items()
    ]  # fmt: skip
    items.sort(key=lambda i: (-i["gpu_hours"], -i["server_hours"], i["key"]))
    return {
        "group_by": group_by,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "items": items,
        "total": {
            "server_hours": round(sum(hours(r, start, end, now) for r in runs), 4),
            "gpu_hours": round(sum(hours(r, start, end, now) * r.gpus for r in runs), 4),
        },
    }


def series(
    s: Session,
    bucket: str,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Server- and GPU-hours per hour or day in the window (for charts)."""
    if bucket not in BUCKETS:
        raise BadRequest(f"bucket: must be one of {', '.join(BUCKETS)}", code="invalid_parameter")
    now = now or utcnow()
    start, end = window(start, end, now)
    step = BUCKETS[bucket]
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        first = first.replace(hour=0)
    count = int((end - first) / step) + 1
    if count > MAX_BUCKETS:
        raise BadRequest(
            f"from: the window holds {count} {bucket}s, more than {MAX_BUCKETS}; "
            "narrow it or use a larger bucket",
            code="invalid_parameter",
        )
    edges = [first + i * step for i in range(count)]
    runs = runs_between(s, start, end)
    points = []
    for edge in edges:
        # (edge + step may pass datetime.max in the year 9999)
        lo, hi = max(edge, start), end if end - edge <= step else edge + step
        if lo >= hi:
            continue
        server_h = gpu_h = 0.0
        for run in runs:
            h = hours(run, lo, hi, now)
            server_h += h
            gpu_h += h * run.gpus
        points.append(
            {"start": edge.isoformat(), "server_hours": round(server_h, 4),
             "gpu_hours": round(gpu_h, 4)}
        )  # fmt: skip
    return {"bucket": bucket, "from": start.isoformat(), "to": end.isoformat(), "points": points}


def of_user(s: Session, user: User, now: datetime | None = None) -> dict[str, Any]:
    """A user's running servers and this month's hours."""
    now = now or utcnow()
    start = month_start(now)
    runs = runs_between(s, start, now + timedelta(seconds=1), [user.id])
    return {
        "month": start.strftime("%Y-%m"),
        "server_hours": round(sum(hours(r, start, now, now) for r in runs), 4),
        "gpu_hours": round(sum(hours(r, start, now, now) * r.gpus for r in runs), 4),
        "running": [run_json(r, now) for r in open_runs(s, [user.id])],
    }
