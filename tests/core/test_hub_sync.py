"""Teams = JupyterHub groups, and project-server shares, as core sees them: the events a
subscriber (the hub layer) gets after each commit, the hub's groups applied to teams, and who
should have a share of a project's server. No hub here: tests/hub/ runs the real one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_workbench.core import admin as admin_core
from jupyter_workbench.core import events, hub_groups, members, project_servers, teams, users
from jupyter_workbench.core.errors import Conflict, Forbidden
from jupyter_workbench.core.events import Event
from jupyter_workbench.db.models import utcnow
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

from ..conftest import ident


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Workbench:
    """A workbench running as a hub's service (no hub is contacted by core)."""
    return Workbench(
        config=Config(
            {
                "Workbench": {
                    "database_url": db_url,
                    "data_dir": str(tmp_path / "data"),
                    "hub_api_url": "http://127.0.0.1:9/hub/api",
                    "hub_api_token": "not-used",
                    "hub_group_sync_interval": 60,
                }
            }
        )
    )


@pytest.fixture
def published(service: WorkbenchService) -> Iterator[list[Event]]:
    seen: list[Event] = []
    service.events.subscribe(seen.extend)
    yield seen


def kinds(seen: list[Event], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in seen if e.kind == kind]


def roster(call: Any, name: str) -> dict[str, str]:
    def fn(s: Any, ctx: Any) -> dict[str, str]:
        return {r.user.username: r.role for r in teams.list_members(s, ctx, name).items}

    return call("alice", fn)


def system(service: WorkbenchService) -> Any:
    return service.system_identity()


def apply(service: WorkbenchService, groups: dict[str, list[str]], **kw: Any) -> dict[str, int]:
    return service.call(
        system(service),
        lambda s, ctx: hub_groups.apply_hub_groups(s, ctx, groups, **kw),
        write=True,
    )


def test_a_team_made_in_the_workbench_is_a_hub_group_and_its_changes_are_published(call, published):
    call("bob", lambda s, ctx: None)
    data = call("alice", lambda s, ctx: teams.team_json(s, teams.create(s, ctx, name="ml")))
    assert (data["source"], data["hub_group"]) == ("workbench", "ml")
    call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="bob"))
    call("alice", lambda s, ctx: teams.remove_member(s, ctx, "ml", "bob"))
    assert kinds(published, events.TEAM_CREATED) == [
        {"team": "ml", "hub_group": "ml", "username": "alice"}
    ]
    assert [(e.kind, e.data["username"], e.data["from_hub"]) for e in published
            if e.kind.startswith("team.member")] == [
        (events.TEAM_MEMBER_ADDED, "bob", False), (events.TEAM_MEMBER_REMOVED, "bob", False)
    ]  # fmt: skip
    call("alice", lambda s, ctx: teams.delete(s, ctx, "ml"))
    assert kinds(published, events.TEAM_DELETED) == [
        {"team": "ml", "hub_group": "ml", "from_hub": False}
    ]


def test_a_failed_change_publishes_nothing(call, published):
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    published.clear()
    with pytest.raises(Forbidden):
        call("bob", lambda s, ctx: teams.add_member(s, ctx, "ml", username="bob"))
    with pytest.raises(Conflict):  # rolled back after the member was added: no event
        call("alice", lambda s, ctx: (teams.add_member(s, ctx, "ml", username="bob"),
                                      teams.create(s, ctx, name="ml")))  # fmt: skip
    assert published == []


def test_the_hubs_groups_become_teams_audited_as_the_system(service, call, published, audit_log):
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    published.clear()
    counts = apply(service, {"ml": ["alice", "carol"], "vision": ["dave"], "other": []})
    assert counts == {"teams_created": 2, "teams_deleted": 0, "members_added": 2,
                      "members_removed": 0}  # fmt: skip
    assert roster(call, "ml") == {"alice": "maintainer", "carol": "member"}
    assert roster(call, "vision") == {"dave": "member"}  # dave never visited: known now
    # the hub admin removes alice from 'ml' and deletes 'vision'
    apply(service, {"ml": ["carol"], "other": []})
    assert roster(call, "ml") == {"carol": "member"}
    assert "vision" not in [t.name for t in call("carol", lambda s, ctx: teams.list_teams(
        s, ctx).items)]  # fmt: skip
    assert all(e.data.get("from_hub") for e in published)  # never pushed back to the hub
    hub_made = [
        (e["action"], e["actor"]) for e in audit_log() if e["summary"].get("source") == "hub"
    ]
    assert ("team.member_add", "[system]") in hub_made
    assert ("team.member_remove", "[system]") in hub_made
    assert ("team.delete", "[system]") in hub_made


def test_a_hub_group_with_the_longest_name_the_hub_allows_is_a_team(service, call):
    """The hub takes group names of 255 characters; the team shows the first 200, and the
    other groups of the same poll become teams too (one long name stopped every group)."""
    long = "g" * 255
    counts = apply(service, {long: ["alice"], "ml": ["bob"]})
    assert counts["teams_created"] == 2
    assert roster(call, "ml") == {"bob": "member"}
    mine = call(
        "alice",
        lambda s, ctx: [
            (t.name, t.display_name, t.hub_group) for t in teams.list_teams(s, ctx, mine=True).items
        ],
    )
    assert mine == [("g" * 60, "g" * 200, long)]


def test_a_hub_group_named_without_latin_letters_or_digits_is_a_team_named_team(service, call):
    apply(service, {"日本語": ["alice"], "...": ["alice"]})
    mine = call("alice", lambda s, ctx: [(t.name, t.display_name) for t in teams.list_teams(
        s, ctx, mine=True).items])  # fmt: skip
    assert mine == [("team", "..."), ("team-2", "日本語")]


def test_groups_with_unpushed_workbench_changes_are_skipped(service, call):
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    apply(service, {}, skip=frozenset({"ml"}))  # the hub has not seen 'ml' yet
    assert roster(call, "ml") == {"alice": "maintainer"}
    apply(service, {})  # now the hub says it is gone
    with pytest.raises(Exception, match="not found"):
        roster(call, "ml")


def test_teams_and_members_made_after_the_groups_were_read_are_left_alone(service, call):
    """A poll reads the hub's groups, then applies them: a team made (or a member added) in
    between is not in what it read, and must not be deleted for that."""
    from jupyter_workbench.db.models import utcnow

    call("bob", lambda s, ctx: None)
    call("alice", lambda s, ctx: teams.create(s, ctx, name="old"))
    read_at = utcnow()
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    call("alice", lambda s, ctx: teams.add_member(s, ctx, "old", username="bob"))
    apply(service, {"old": ["alice"]}, read_at=read_at)
    assert roster(call, "ml") == {"alice": "maintainer"}
    assert roster(call, "old") == {"alice": "maintainer", "bob": "member"}
    apply(service, {"old": ["alice"]})  # a later read without them: now they go
    assert roster(call, "old") == {"alice": "maintainer"}
    with pytest.raises(Exception, match="not found"):
        roster(call, "ml")


def test_a_prefix_limits_which_groups_are_teams(db_url, tmp_path):
    settings = Workbench(config=Config({"Workbench": {
        "database_url": db_url, "data_dir": str(tmp_path / "d"), "hub_api_url": "http://x/",
        "hub_api_token": "t", "hub_group_prefix": "wb-"}}))  # fmt: skip
    service = WorkbenchService(settings)
    try:
        apply(service, {"wb-ml": ["bob"], "staff": ["bob"]}, prefix="wb-")
        names = service.call(
            ident("bob"),
            lambda s, ctx: [(t.name, t.hub_group) for t in teams.list_teams(s, ctx).items],
            write=False,
        )
        assert names == [("ml", "wb-ml")]
        made = service.call(ident("bob"), lambda s, ctx: teams.create(s, ctx, name="nlp").hub_group,
                            write=True)  # fmt: skip
        assert made == "wb-nlp"
        # the user's own groups on a request follow the same rule
        service.call(ident("carol", groups=("wb-nlp", "staff")), lambda s, ctx: None, write=True)
        members_of = service.call(ident("carol"), lambda s, ctx: [t.name for t in teams.list_teams(
            s, ctx, mine=True).items], write=False)  # fmt: skip
        assert members_of == ["nlp"]
    finally:
        service.close()


def test_a_stale_group_report_never_undoes_a_newer_change(service, call):
    """With the poll on, a request applies only what changed in the user's groups."""
    call(ident("bob", groups=()), lambda s, ctx: None)
    apply(service, {"ml": ["bob"]})  # the poll saw bob join 'ml' in the hub
    call(ident("bob", groups=(), email="bob@example.org"), lambda s, ctx: None)  # stale groups
    assert roster(call, "ml") == {"bob": "member"}
    call(ident("bob", groups=("ml", "ops")), lambda s, ctx: None)  # a fresh report: joins ops
    call(ident("bob", groups=("ml",)), lambda s, ctx: None)  # ...and leaves it again
    assert roster(call, "ml") == {"bob": "member"}
    assert roster(call, "ops") == {}


# -- project servers ------------------------------------------------------------------------
def plan(service: WorkbenchService, slug: str) -> project_servers.SharePlan | None:
    return service.call(system(service), lambda s, ctx: project_servers.share_plan(s, slug),
                        write=False)  # fmt: skip


def test_a_project_server_is_shared_with_editors_and_follows_membership(
    service, call, make_project, add_member, published
):
    slug = make_project("alice", "Vision")
    add_member(slug, "bob", "editor")
    add_member(slug, "carol", "viewer")
    assert plan(service, slug) is None  # no server yet
    with pytest.raises(Forbidden):
        call("carol", lambda s, ctx: project_servers.start(s, ctx, slug))
    with pytest.raises(Forbidden):
        call("carol", lambda s, ctx: project_servers.plan_start(s, ctx, slug))
    # the plan names the server the hub is to start, and records nothing
    assert call("bob", lambda s, ctx: project_servers.plan_start(s, ctx, slug)) == (
        "bob", f"project-{slug}")  # fmt: skip
    assert plan(service, slug) is None
    row = call("bob", lambda s, ctx: project_servers.project_server_json(
        project_servers.start(s, ctx, slug)))  # fmt: skip
    assert (row["owner"], row["server_name"]) == ("bob", f"project-{slug}")
    assert plan(service, slug).users == {"alice"}  # the owner of the project is an editor+
    assert call("alice", lambda s, ctx: project_servers.plan_start(s, ctx, slug)) == (
        "bob", f"project-{slug}")  # fmt: skip
    published.clear()
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "carol", "editor"))
    assert kinds(published, events.PROJECT_ACCESS_CHANGED) == [{"project": slug}]
    assert plan(service, slug).users == {"alice", "carol"}
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "carol", "viewer"))
    assert plan(service, slug).users == {"alice"}
    # a team holding editor shares the server with its members, as they come and go
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    add_member(slug, team="ml", role="editor")
    call("dave", lambda s, ctx: None)
    published.clear()
    call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="dave"))
    assert kinds(published, events.PROJECT_ACCESS_CHANGED) == [{"project": slug}]
    assert plan(service, slug).users == {"alice", "dave"}
    apply(service, {"ml": ["alice"]})  # the hub admin took dave out of the group
    assert plan(service, slug).users == {"alice"}
    # the server's owner demoted: no one gets a share; the next editor to start owns a new one
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "viewer"))
    assert plan(service, slug).active is False and plan(service, slug).users == frozenset()
    assert call("alice", lambda s, ctx: project_servers.plan_start(s, ctx, slug)) == (
        "alice", f"project-{slug}")  # fmt: skip
    published.clear()
    row = call("alice", lambda s, ctx: project_servers.project_server_json(
        project_servers.start(s, ctx, slug)))  # fmt: skip
    assert row["owner"] == "alice"
    revoke = [e for e in kinds(published, events.PROJECT_ACCESS_CHANGED) if "revoke" in e]
    assert revoke == [
        {"project": slug, "revoke": {"owner": "bob", "server_name": f"project-{slug}"}}
    ]
    assert plan(service, slug).users == set()  # bob is a viewer now; dave left the team


def test_project_server_usage_is_accounted_to_the_project(service, call, make_project, add_member):
    slug = make_project("alice", "P")
    add_member(slug, "carol", "viewer")

    def which(s: Any, ctx: Any) -> list[str | None]:
        found = project_servers.run_project(s, ctx.user, f"project-{slug}")
        other = project_servers.run_project(s, ctx.user, "mine")
        return [found.slug if found else None, other.slug if other else None]

    # the hub spawns before the start is recorded: an editor+'s project-{slug} is the project's
    assert call("alice", which) == [slug, None]
    assert call("carol", which) == [None, None]  # a viewer may not start it
    call("alice", lambda s, ctx: project_servers.start(s, ctx, slug))
    assert call("alice", which) == [slug, None]
    assert call("bob", which) == [None, None]  # not bob's server


def test_users_the_hub_no_longer_has_leave_the_people_list_and_come_back(service, call):
    for name in ("alice", "bob", "carol"):
        call(name, lambda s, ctx: None)  # they visited
    read_at = utcnow()
    call("erin", lambda s, ctx: None)  # visits after the hub's list was read: not gone
    admin = ident("root", is_admin=True)
    known = {"alice": False, "dave": True, "root": True}
    added, left = call(admin, lambda s, ctx: users.ensure_known_users(s, known, read_at=read_at))
    assert (added, left) == (1, ["bob", "carol"])
    service.forget_actors(left)  # as the hub sync does

    def listed(left: bool = False) -> tuple[list[str], dict[str, Any]]:
        page = call(admin, lambda s, ctx: admin_core.people(s, ctx, left=left, sort="name"))
        return [p["username"] for p in page["items"]], page["totals"]

    names, totals = listed()
    assert names == ["alice", "dave", "erin", "root"]
    assert (totals["users"], totals["left_hub"]) == (4, 2)
    gone, _ = listed(left=True)
    assert gone == ["bob", "carol"]
    found = call(admin, lambda s, ctx: [u.username for u in users.list_users(s, ctx).items])
    assert "bob" not in found and "alice" in found
    # a visit brings bob back; the hub listing carol again brings her back
    call("bob", lambda s, ctx: None)
    assert listed(left=True)[0] == ["carol"]
    known.update(carol=False, bob=False, erin=False)
    call(admin, lambda s, ctx: users.ensure_known_users(s, known, read_at=utcnow()))
    assert listed(left=True)[0] == []
    # without read_at (a partial list) no one is marked
    assert call(admin, lambda s, ctx: users.ensure_known_users(s, {"alice": False})) == (0, [])
