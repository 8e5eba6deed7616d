"""Quotas: limits on concurrent servers, concurrent GPUs and monthly GPU-hours, checked at spawn.

A quota belongs to everyone (``default``), a user (``user:<name>``) or a team (``team:<name>``,
counting its members together). A user's own limit replaces the default one field by field
(null: the default's); a team's null field means no team limit. Only administrators set them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.locks import lock_name
from ..db.models import Quota, Team, TeamMember, User, utcnow
from . import audit, usage
from .access import require_admin
from .context import Ctx
from .errors import BadRequest, Forbidden, NotFound
from .pagination import Page, SortSpec, paginate
from .text_search import holds_text

LIMITS = ("max_servers", "max_gpus", "gpu_hours_per_month")
ADMIN_WHAT = "manage quotas and usage"


class QuotaExceeded(Forbidden):
    code = "quota_exceeded"


def resolve(s: Session, subject: str) -> tuple[str, User | None, Team | None]:
    """``default`` / ``user:<name>`` / ``team:<name>`` -> (stored key, user, team)."""
    if subject == "default":
        return "default", None, None
    kind, _, name = subject.partition(":")
    if kind == "user" and name:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            raise NotFound(
                f"user '{name}' not found (on a hub, users appear once approved or logged in)"
            )
        return f"user:{user.id}", user, None
    if kind == "team" and name:
        team = s.scalar(select(Team).where(Team.name == name))
        if team is None:
            raise NotFound(f"team '{name}' not found")
        return f"team:{team.id}", None, team
    raise BadRequest(
        f"subject: must be 'default', 'user:<name>' or 'team:<name>' (got {subject[:100]!r})",
        code="invalid_parameter",
    )


def quota_json(s: Session, quota: Quota) -> dict[str, Any]:
    subject = "default"
    if quota.user_id is not None:
        user = s.get(User, quota.user_id)
        subject = f"user:{user.username if user else quota.user_id}"
    elif quota.team_id is not None:
        team = s.get(Team, quota.team_id)
        subject = f"team:{team.name if team else quota.team_id}"
    out: dict[str, Any] = {"subject": subject}
    out.update({name: getattr(quota, name) for name in LIMITS})
    out["updated_at"] = quota.updated_at.isoformat()
    return out


QUOTA_SORTS = SortSpec(
    {"subject": Quota.subject, "updated": Quota.updated_at}, id_column=Quota.id, default="subject"
)


def list_quotas(
    s: Session,
    ctx: Ctx,
    *,
    q: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Quota]:
    """A page of the quotas: by ``subject`` (its stored key: the default first, then teams',
    then users', each kind by internal id as text), or by ``updated``; ``q`` keeps those of
    users and teams whose name holds it."""
    require_admin(ctx, ADMIN_WHAT)
    stmt = select(Quota)
    if q:
        stmt = (
            stmt.outerjoin(User, User.id == Quota.user_id)
            .outerjoin(Team, Team.id == Quota.team_id)
            .where(holds_text(q, User.username, User.display_name, Team.name))
        )
    return paginate(s, stmt, QUOTA_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def get(s: Session, ctx: Ctx, subject: str) -> dict[str, Any]:
    require_admin(ctx, ADMIN_WHAT)
    key, _, _ = resolve(s, subject)
    quota = s.scalar(select(Quota).where(Quota.subject == key))
    if quota is None:
        raise NotFound(f"no quota for {subject}")
    return quota_json(s, quota)


def put(s: Session, ctx: Ctx, subject: str, limits: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Set (replace) the limits of ``subject``; ``(quota, created)``."""
    require_admin(ctx, ADMIN_WHAT)
    key, user, team = resolve(s, subject)
    for name, value in limits.items():
        if name not in LIMITS:
            raise BadRequest(f"{name}: unknown field", code="invalid_field")
        if value is not None and (isinstance(value, bool) or value < 0):
            raise BadRequest(f"{name}: must be a number >= 0, or null", code="invalid_field")
    lock_name(s, f"quota:{key}")  # two first PUTs of a subject: one creates, one updates
    quota = s.scalar(select(Quota).where(Quota.subject == key).with_for_update())
    created = quota is None
    before = {} if quota is None else limits_of(quota)
    if quota is None:
        quota = Quota(
            subject=key, user_id=user.id if user else None, team_id=team.id if team else None
        )
        s.add(quota)
    for name in LIMITS:
        setattr(quota, name, limits.get(name))
    quota.updated_at = utcnow()
    quota.updated_by_id = ctx.user.id
    s.flush()
    after = limits_of(quota)
    audit.record(
        s, ctx, "quota.set", "quota", subject,
        summary=audit.changes(before, after) if before else {"set": after},
    )  # fmt: skip
    return quota_json(s, quota), created


def delete(s: Session, ctx: Ctx, subject: str) -> None:
    require_admin(ctx, ADMIN_WHAT)
    key, _, _ = resolve(s, subject)
    quota = s.scalar(select(Quota).where(Quota.subject == key))
    if quota is None:
        raise NotFound(f"no quota for {subject}")
    s.delete(quota)
    audit.record(s, ctx, "quota.delete", "quota", subject, summary={"removed": limits_of(quota)})


def team_deleted(s: Session, ctx: Ctx, team: Team) -> None:
    """Audit the removal of the team's quota, which the database drops with the team."""
    quota = s.scalar(select(Quota).where(Quota.team_id == team.id))
    if quota is not None:
        summary = {"removed": limits_of(quota), "reason": f"team '{team.name}' deleted"}
        audit.record(s, ctx, "quota.delete", "quota", f"team:{team.name}", summary=summary)


def limits_of(quota: Quota) -> dict[str, Any]:
    return {name: getattr(quota, name) for name in LIMITS}


def effective(s: Session, user: User) -> dict[str, Any]:
    """The limits that apply to ``user`` alone: their own, else the default's, per field."""
    rows = {
        q.subject: q
        for q in s.scalars(select(Quota).where(Quota.subject.in_(["default", f"user:{user.id}"])))
    }
    own, fallback = rows.get(f"user:{user.id}"), rows.get("default")
    out: dict[str, Any] = {}
    for name in LIMITS:
        value = getattr(own, name) if own is not None else None
        if value is None and fallback is not None:
            value = getattr(fallback, name)
        out[name] = value
    return out


def _team_quotas(s: Session, user: User) -> list[tuple[Team, Quota]]:
    rows = s.execute(
        select(Team, Quota)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .join(Quota, Quota.team_id == Team.id)
        .where(TeamMember.user_id == user.id)
        .order_by(Team.name)
    )
    return [(team, quota) for team, quota in rows]


def _check(
    s: Session,
    who: str,
    user_ids: list[int],
    limits: dict[str, Any],
    *,
    profile: str,
    gpus: int,
    now: datetime,
    replacing: tuple[str, str],
) -> None:
    # a server that starts again replaces its own stale run: it does not count twice
    running = [r for r in usage.open_runs(s, user_ids) if (r.username, r.server_name) != replacing]
    max_servers = limits.get("max_servers")
    if max_servers is not None and len(running) + 1 > max_servers:
        names = ", ".join(f"{r.username}/{r.server_name or 'default'}" for r in running)
        raise QuotaExceeded(
            f"Quota reached: {who} may run at most {max_servers} server(s) at a time, and "
            f"{len(running)} {'is' if len(running) == 1 else 'are'} running ({names}). "
            "Stop one first, or ask an administrator to raise the limit."
        )
    if gpus <= 0:
        return
    max_gpus = limits.get("max_gpus")
    in_use = sum(r.gpus for r in running)
    if max_gpus is not None and in_use + gpus > max_gpus:
        raise QuotaExceeded(
            f"Quota reached: {who} may use at most {max_gpus} GPU(s) at a time; {in_use} "
            f"{'is' if in_use == 1 else 'are'} in use and profile '{profile}' asks for {gpus}. "
            "Choose a smaller profile, stop a GPU server, or ask an administrator."
        )
    budget = limits.get("gpu_hours_per_month")
    if budget is not None:
        start = usage.month_start(now)
        used = usage.gpu_hours_of(s, user_ids, start, now, now)
        if used >= budget:
            resets = usage.next_month(now).strftime("%Y-%m-%d")
            raise QuotaExceeded(
                f"Quota reached: {who} used {used:.1f} of {budget:g} GPU-hours this month "
                f"(the budget renews on {resets}). Choose a CPU profile, or ask an "
                "administrator to raise the budget."
            )


def check_spawn(
    s: Session,
    user: User,
    *,
    profile: str,
    gpus: int,
    server_name: str = "",
    now: datetime | None = None,
) -> None:
    """Raise QuotaExceeded (its message is shown on the spawn page) if this spawn breaks a
    limit of the user's own or of a team they belong to. Call under ``lock_spawns``."""
    now = now or utcnow()
    spec: dict[str, Any] = {"profile": profile, "gpus": gpus, "now": now,
                            "replacing": (user.username, server_name)}  # fmt: skip
    _check(s, user.username, [user.id], effective(s, user), **spec)
    for team, quota in _team_quotas(s, user):
        members = list(s.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id)))
        limits = {name: getattr(quota, name) for name in LIMITS}
        _check(
            s, f"team '{team.name}' ({len(members)} member(s) together)", members, limits, **spec
        )


def lock_spawns(s: Session) -> None:
    """Serialize spawn checks (team sums span users), until the transaction ends."""
    lock_name(s, "workbench:spawn-gate")


def remaining(s: Session, user: User, now: datetime | None = None) -> dict[str, Any]:
    """The user's effective limits and what is left of each (for the user's own view)."""
    now = now or utcnow()
    limits = effective(s, user)
    running = usage.open_runs(s, [user.id])
    used = usage.gpu_hours_of(s, [user.id], usage.month_start(now), now, now)
    return {
        "limits": limits,
        "servers_running": len(running),
        "gpus_in_use": sum(r.gpus for r in running),
        "gpu_hours_this_month": round(used, 4),
        "teams": [
            {"team": team.name, **{n: getattr(quota, n) for n in LIMITS}}
            for team, quota in _team_quotas(s, user)
        ],
    }


def admin_only(ctx: Ctx) -> None:
    """For usage reports: administrators only."""
    require_admin(ctx, ADMIN_WHAT)
