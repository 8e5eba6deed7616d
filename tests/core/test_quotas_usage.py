"""Quotas checked at spawn, and usage accounting (server- and GPU-hours) from start/stop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jupyter_workbench.core import quotas, teams, usage
from jupyter_workbench.core.context import Identity
from jupyter_workbench.core.errors import BadRequest, Forbidden, NotFound
from jupyter_workbench.core.quotas import QuotaExceeded

ADMIN = Identity(username="root", display_name="Root", is_admin=True)
T0 = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def spawn(call: Callable[..., Any]) -> Callable[..., int]:
    """``spawn("alice", "gpu-1", gpus=1, name="", at=T0)``: the hub's spawn gate, as one call."""

    def run(
        user: str, profile: str = "cpu", *, gpus: int = 0, name: str = "", at: datetime = T0
    ) -> int:
        def work(s: Any, ctx: Any) -> int:
            quotas.lock_spawns(s)
            quotas.check_spawn(s, ctx.user, profile=profile, gpus=gpus, server_name=name, now=at)
            return usage.start_run(s, ctx, server_name=name, profile=profile, gpus=gpus, now=at).id

        return int(call(user, work))

    return run


@pytest.fixture
def stop(call: Callable[..., Any]) -> Callable[..., int]:
    def run(user: str, name: str = "", *, at: datetime) -> int:
        return int(call(user, lambda s, ctx: usage.stop_run(s, ctx, name, now=at)))

    return run


def set_quota(call: Callable[..., Any], subject: str, **limits: Any) -> dict[str, Any]:
    return call(ADMIN, lambda s, ctx: quotas.put(s, ctx, subject, limits)[0])


def subjects(call: Callable[..., Any], **query: Any) -> list[list[str]]:
    """The quotas' subjects, a list per page."""
    pages, cursor = [], None
    while True:

        def work(s: Any, ctx: Any, cursor: str | None = cursor) -> Any:
            page = quotas.list_quotas(s, ctx, cursor=cursor, **query)
            return [quotas.quota_json(s, x)["subject"] for x in page.items], page.next_cursor

        items, cursor = call(ADMIN, work)
        pages.append(items)
        if cursor is None:
            return pages


def test_quotas_list_a_page_at_a_time_and_find_names(
    call: Callable[..., Any], make_team: Any
) -> None:
    make_team("vision", maintainer="alice", members=("bob",))
    make_team("nlp", maintainer="carol")
    for subject in ("user:carol", "team:nlp", "default", "user:alice", "team:vision"):
        set_quota(call, subject, max_gpus=2)
    pages = subjects(call, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [x for p in pages for x in p]
    # the default first, then the teams', then the users'
    assert flat[0] == "default" and set(flat[1:3]) == {"team:nlp", "team:vision"}
    assert set(flat[3:]) == {"user:alice", "user:carol"}
    assert [x for p in subjects(call, sort="-updated") for x in p] == [
        "team:vision", "user:alice", "default", "team:nlp", "user:carol"
    ]  # fmt: skip
    assert subjects(call, q="CAR") == [["user:carol"]]
    assert subjects(call, q="vis") == [["team:vision"]]
    assert subjects(call, q="50%") == [[]]
    with pytest.raises(Forbidden):
        call("alice", lambda s, ctx: quotas.list_quotas(s, ctx))
    with pytest.raises(BadRequest, match="sort"):
        subjects(call, sort="gpus")


def test_usage_adds_up_server_and_gpu_hours_by_user_profile_and_team(
    call: Callable[..., Any], spawn: Any, stop: Any, make_team: Any
) -> None:
    make_team("vision", maintainer="alice", members=("bob",))
    spawn("alice", "gpu-4", gpus=4, at=T0)
    stop("alice", at=T0 + timedelta(hours=2))
    spawn("bob", "cpu", at=T0 + timedelta(hours=1))
    stop("bob", at=T0 + timedelta(hours=4))
    spawn("carol", "gpu-1", gpus=1, name="exp", at=T0)  # still running
    now = T0 + timedelta(hours=10)
    start, end = T0 - timedelta(days=1), now

    def rep(group: str) -> dict[str, Any]:
        return call(ADMIN, lambda s, ctx: usage.report(s, group, start, end, now=now))

    by_user = {i["key"]: (i["server_hours"], i["gpu_hours"]) for i in rep("user")["items"]}
    assert by_user == {"alice": (2.0, 8.0), "bob": (3.0, 0.0), "carol": (10.0, 10.0)}
    assert rep("user")["total"] == {"server_hours": 15.0, "gpu_hours": 18.0}
    by_profile = {i["key"]: i["gpu_hours"] for i in rep("profile")["items"]}
    assert by_profile == {"gpu-4": 8.0, "cpu": 0.0, "gpu-1": 10.0}
    by_team = {i["key"]: i["server_hours"] for i in rep("team")["items"]}
    assert by_team == {"vision": 5.0, "": 10.0}
    # a window cuts runs at its edges
    cut = call(ADMIN, lambda s, ctx: usage.report(s, "user", T0 + timedelta(hours=1),
                                                   T0 + timedelta(hours=2), now=now))  # fmt: skip
    assert {i["key"]: i["gpu_hours"] for i in cut["items"]} == {
        "alice": 4.0,
        "carol": 1.0,
        "bob": 0.0,
    }
    # hourly series for charts
    series = call(
        ADMIN, lambda s, ctx: usage.series(s, "hour", T0, T0 + timedelta(hours=3), now=now)
    )
    assert [p["server_hours"] for p in series["points"]] == [2.0, 3.0, 2.0]
    assert [p["gpu_hours"] for p in series["points"]] == [5.0, 5.0, 1.0]


def test_concurrent_server_and_gpu_limits_refuse_with_a_clear_message(
    call: Callable[..., Any], spawn: Any, stop: Any
) -> None:
    call("alice", lambda s, ctx: None)
    set_quota(call, "default", max_servers=2, max_gpus=1)
    spawn("alice", "gpu-1", gpus=1)
    with pytest.raises(QuotaExceeded, match=r"at most 1 GPU\(s\) at a time; 1 is in use and "
                       r"profile 'gpu-4' asks for 4"):  # fmt: skip
        spawn("alice", "gpu-4", gpus=4, name="big")
    spawn("alice", "cpu", name="notebook")  # CPU servers do not count against GPUs
    with pytest.raises(QuotaExceeded, match=r"at most 2 server\(s\) at a time, and 2 are running"):
        spawn("alice", "cpu", name="third")
    # restarting the same server replaces its run rather than counting twice
    spawn("alice", "cpu", name="notebook")
    stop("alice", at=T0 + timedelta(hours=1))
    spawn("alice", "gpu-1", gpus=1, name="again")
    # a user's own quota overrides the default field by field
    set_quota(call, "user:alice", max_gpus=5)
    assert call("alice", lambda s, ctx: quotas.effective(s, ctx.user)) == {
        "max_servers": 2, "max_gpus": 5, "gpu_hours_per_month": None,
    }  # fmt: skip
    with pytest.raises(QuotaExceeded, match="at most 2 server"):  # still the default's 2
        spawn("alice", "gpu-4", gpus=4, name="big")
    set_quota(call, "user:alice", max_gpus=5, max_servers=3)
    spawn("alice", "gpu-4", gpus=4, name="big")  # 1 + 4 <= 5 GPUs, 3 servers


def test_monthly_gpu_budget_counts_running_servers_and_renews(
    call: Callable[..., Any], spawn: Any, stop: Any
) -> None:
    call("bob", lambda s, ctx: None)
    set_quota(call, "user:bob", gpu_hours_per_month=10)
    spawn("bob", "gpu-4", gpus=4, at=T0)
    stop("bob", at=T0 + timedelta(hours=2))  # 8 GPU-hours
    spawn("bob", "gpu-1", gpus=1, at=T0 + timedelta(hours=3))  # running: counts up to now
    later = T0 + timedelta(hours=6)  # 8 + 3 = 11 >= 10
    with pytest.raises(QuotaExceeded, match=r"used 11.0 of 10 GPU-hours this month .*2026-12-01"):
        spawn("bob", "gpu-1", gpus=1, name="more", at=later)
    spawn("bob", "cpu", name="cpu-ok", at=later)  # CPU profiles are not budgeted
    stop("bob", at=later)
    next_month = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    stop("bob", "cpu-ok", at=later)
    spawn("bob", "gpu-1", gpus=1, name="december", at=next_month)


def test_team_quotas_count_members_together(
    call: Callable[..., Any], spawn: Any, make_team: Any
) -> None:
    make_team("nlp", maintainer="alice", members=("bob",))
    set_quota(call, "team:nlp", max_gpus=2)
    spawn("alice", "gpu-1", gpus=1)
    spawn("bob", "gpu-1", gpus=1)
    with pytest.raises(
        QuotaExceeded, match=r"team 'nlp' \(2 member\(s\) together\) may use at most 2"
    ):
        spawn("bob", "gpu-1", gpus=1, name="x")
    spawn("carol", "gpu-1", gpus=1)  # not in the team


def test_a_quota_removed_is_audited_with_its_limits_also_with_its_team(
    call: Callable[..., Any], make_team: Any, audit_log: Any
) -> None:
    make_team("nlp", maintainer="alice")
    set_quota(call, "team:nlp", max_gpus=2)
    set_quota(call, "default", max_servers=4)
    call(ADMIN, lambda s, ctx: quotas.delete(s, ctx, "default"))
    # the team's maintainer deletes the team: its quota goes too, and the audit log says so
    call("alice", lambda s, ctx: teams.delete(s, ctx, "nlp"))
    removed = [(e["actor"], e["object_id"], e["summary"]) for e in audit_log(action="quota.delete")]
    limits = dict.fromkeys(quotas.LIMITS)
    assert removed == [
        ("root", "default", {"removed": {**limits, "max_servers": 4}}),
        ("alice", "team:nlp", {"removed": {**limits, "max_gpus": 2},
                               "reason": "team 'nlp' deleted"}),
    ]  # fmt: skip


def test_only_administrators_manage_quotas_and_subjects_are_checked(
    call: Callable[..., Any], audit_log: Any
) -> None:
    with pytest.raises(Forbidden):
        call("alice", lambda s, ctx: quotas.put(s, ctx, "default", {"max_gpus": 1}))
    with pytest.raises(NotFound, match="user 'ghost' not found"):
        set_quota(call, "user:ghost", max_gpus=1)
    with pytest.raises(BadRequest, match="subject: must be"):
        set_quota(call, "group:x", max_gpus=1)
    set_quota(call, "default", max_gpus=1)
    set_quota(call, "default", max_gpus=3)
    assert subjects(call) == [["default"]]
    events = [e for e in audit_log(action="quota.set")]
    assert events[-1]["summary"] == {"max_gpus": {"from": 1, "to": 3}}
    call(ADMIN, lambda s, ctx: quotas.delete(s, ctx, "default"))
    assert subjects(call) == [[]]


def test_reconcile_ends_runs_of_servers_the_hub_no_longer_has(
    call: Callable[..., Any], spawn: Any, audit_log: Any
) -> None:
    spawn("alice", "gpu-1", gpus=1, at=T0)  # its stop was never reported
    spawn("bob", at=T0)  # still running on the hub
    seen = T0 + timedelta(hours=2)
    spawn("carol", name="late", at=seen + timedelta(seconds=5))  # started after the listing
    ended = call(ADMIN, lambda s, ctx: usage.reconcile(s, ctx, {("bob", "")}, seen))
    assert [(r["user"], r["hours"]) for r in ended] == [("alice", 2.0)]
    running = call(ADMIN, lambda s, ctx: sorted(r.username for r in usage.open_runs(s)))
    assert running == ["bob", "carol"]
    # alice's two GPU-hours are accounted, no more
    report = call(ADMIN, lambda s, ctx: usage.report(s, "user", T0, seen + timedelta(hours=5)))
    alice = next(row for row in report["items"] if row["key"] == "alice")
    assert alice["gpu_hours"] == 2.0
    stops = [e for e in audit_log(action="server.stop")]
    assert stops[-1]["summary"]["reason"] == "not running on the hub"
    assert stops[-1]["summary"]["stop_time"] == "listing"


def test_reconcile_ends_runs_when_the_hub_says_they_stopped(
    call: Callable[..., Any], spawn: Any, audit_log: Any
) -> None:
    """A hub shutdown stops the service before the servers, so their stops go unheard; the
    hub still knows when it stopped each: the runs end then, not when the hub is back."""
    for user in ("alice", "bob", "carol"):
        spawn(user, "gpu-1", gpus=1, at=T0)
    back = T0 + timedelta(days=2)  # a weekend later
    hub_says = {
        ("alice", ""): T0 + timedelta(minutes=30),
        ("bob", ""): T0 - timedelta(hours=1),  # a clock off: never before the start
        ("carol", ""): back + timedelta(hours=1),  # nor after the listing
    }
    ended = call(ADMIN, lambda s, ctx: usage.reconcile(s, ctx, set(), back, hub_says))
    assert sorted((r["user"], r["hours"]) for r in ended) == [
        ("alice", 0.5), ("bob", 0.0), ("carol", 48.0),
    ]  # fmt: skip
    stops = audit_log(action="server.stop")
    assert {e["summary"]["stop_time"] for e in stops[-3:]} == {"hub"}
