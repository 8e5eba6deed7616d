"""Teams: maintainers and members, the last-maintainer rule, JupyterHub group mirroring."""

from __future__ import annotations

import pytest

from jupyter_workbench.core import teams
from jupyter_workbench.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from jupyter_workbench.db.models import Team
from tests.conftest import ident


def team(call, user, name):
    return call(user, lambda s, ctx: teams.team_json(s, teams.get(s, ctx, name)))


def roster(call, name, user="alice", **kw):
    def fn(s, ctx):
        page = teams.list_members(s, ctx, name, **kw)
        return {r.user.username: r.role for r in page.items}

    return call(user, fn)


def team_names(call, user, **kw):
    return call(user, lambda s, ctx: [t.name for t in teams.list_teams(s, ctx, **kw).items])


def test_creator_becomes_the_first_maintainer(call):
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml", description="models"))
    data = team(call, "bob", "ml")  # every signed-in user can read teams
    assert data["name"] == "ml"
    assert data["display_name"] == "ml"  # defaults to the name
    assert data["description"] == "models"
    assert data["source"] == "workbench"
    assert data["member_count"] == 1
    assert roster(call, "ml") == {"alice": "maintainer"}
    with pytest.raises(NotFound, match=r"team 'ghosts' not found"):
        team(call, "alice", "ghosts")


def test_team_name_must_be_a_slug_and_unique(call, count_rows):
    for bad in ("ML Team", "-ml", "ml--ops", ""):
        with pytest.raises(BadRequest, match=r"^name: "):
            call("alice", lambda s, ctx, n=bad: teams.create(s, ctx, name=n))
    call("alice", lambda s, ctx: teams.create(s, ctx, name="ml"))
    with pytest.raises(Conflict, match=r"^name: a team named 'ml' already exists"):
        call("bob", lambda s, ctx: teams.create(s, ctx, name="ml"))
    assert count_rows(Team) == 1


def test_maintainers_rename_and_describe(make_team, call):
    make_team("ml", members=("bob",))
    changes = {"name": "ml-ops", "display_name": "ML Ops", "description": "d"}
    call("alice", lambda s, ctx: teams.update(s, ctx, "ml", changes))
    data = team(call, "bob", "ml-ops")
    assert (data["display_name"], data["description"]) == ("ML Ops", "d")
    with pytest.raises(NotFound):
        team(call, "bob", "ml")
    root = ident("root", is_admin=True)  # workbench admins manage any team
    call(root, lambda s, ctx: teams.update(s, ctx, "ml-ops", {"description": "by admin"}))
    assert team(call, "alice", "ml-ops")["description"] == "by admin"


def test_non_maintainers_cannot_manage_a_team(make_team, call):
    make_team("ml", members=("bob",))
    call("carol", lambda s, ctx: None)
    for who in ("bob", "carol"):  # a member, a stranger
        check_cannot_manage(call, who)


def check_cannot_manage(call, who):
    with pytest.raises(Forbidden, match=r"maintainer role in team 'ml'"):
        call(who, lambda s, ctx: teams.update(s, ctx, "ml", {"description": "x"}))
    with pytest.raises(Forbidden):
        call(who, lambda s, ctx: teams.delete(s, ctx, "ml"))
    with pytest.raises(Forbidden):
        call(who, lambda s, ctx: teams.add_member(s, ctx, "ml", username="dave"))
    with pytest.raises(Forbidden):
        call(who, lambda s, ctx: teams.change_member_role(s, ctx, "ml", "alice", "member"))
    with pytest.raises(Forbidden):
        call(who, lambda s, ctx: teams.remove_member(s, ctx, "ml", "alice"))


def test_rename_validation_clash_and_if_match(make_team, call):
    make_team("ml")
    make_team("data")
    with pytest.raises(BadRequest, match=r"^name: "):
        call("alice", lambda s, ctx: teams.update(s, ctx, "ml", {"name": "Not A Slug"}))
    with pytest.raises(Conflict, match=r"^name: a team named 'data' already exists"):
        call("alice", lambda s, ctx: teams.update(s, ctx, "ml", {"name": "data"}))
    with pytest.raises(BadRequest, match=r"^display_name: must not be empty"):
        call("alice", lambda s, ctx: teams.update(s, ctx, "ml", {"display_name": " "}))
    tag = team(call, "alice", "ml")["etag"]
    call("alice", lambda s, ctx: teams.update(s, ctx, "ml", {"description": "1"}, if_match=tag))
    with pytest.raises(PreconditionFailed):
        call("alice", lambda s, ctx: teams.update(s, ctx, "ml", {"description": "2"}, if_match=tag))
    assert team(call, "alice", "ml")["description"] == "1"


def test_deleting_a_team_removes_its_project_roles(
    make_team, make_project, add_member, call, role_of, audit_log
):
    make_team("ml", members=("bob",))
    slug = make_project("carol", "P")
    add_member(slug, team="ml", role="editor", by="carol")
    assert role_of("bob", slug) == "editor"
    call("alice", lambda s, ctx: teams.delete(s, ctx, "ml"))
    with pytest.raises(NotFound):
        team(call, "alice", "ml")
    assert role_of("bob", slug) == "none"
    # the project's own trail tells its admins where the team's role went
    assert audit_log(project_slug=slug)[-1] == {
        "actor": "alice",
        "action": "member.remove",
        "object_type": "member",
        "object_id": "team:ml",
        "project": slug,
        "summary": {"role": "editor", "reason": "team 'ml' deleted"},
    }


def test_maintainers_add_change_and_remove_members(make_team, call):
    make_team("ml")
    for u in ("bob", "carol"):
        call(u, lambda s, ctx: None)
    call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="bob"))
    call(
        "alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="carol", role="maintainer")
    )
    assert roster(call, "ml") == {"alice": "maintainer", "bob": "member", "carol": "maintainer"}
    assert roster(call, "ml", role="maintainer") == {"alice": "maintainer", "carol": "maintainer"}
    call("carol", lambda s, ctx: teams.change_member_role(s, ctx, "ml", "bob", "maintainer"))
    call("bob", lambda s, ctx: teams.remove_member(s, ctx, "ml", "alice"))
    assert roster(call, "ml") == {"bob": "maintainer", "carol": "maintainer"}
    assert team(call, "bob", "ml")["member_count"] == 2
    assert team_names(call, "alice", mine=True) == []


def test_member_management_errors(make_team, call):
    make_team("ml", members=("bob",))
    with pytest.raises(BadRequest, match=r"^username: no user named 'ghost'") as err:
        call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="ghost"))
    assert err.value.code == "unknown_user"
    with pytest.raises(Conflict, match=r"^username: 'bob' is already in team 'ml'"):
        call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="bob"))
    call("carol", lambda s, ctx: None)
    with pytest.raises(BadRequest, match=r"^role: must be one of member, maintainer"):
        call("alice", lambda s, ctx: teams.add_member(s, ctx, "ml", username="carol", role="boss"))
    with pytest.raises(NotFound, match=r"'carol' is not a member of team 'ml'"):
        call("alice", lambda s, ctx: teams.change_member_role(s, ctx, "ml", "carol", "member"))
    with pytest.raises(NotFound):
        call("alice", lambda s, ctx: teams.remove_member(s, ctx, "ml", "carol"))
    with pytest.raises(BadRequest, match=r"^role: "):
        roster(call, "ml", role="owner")


def test_members_leave_but_the_last_maintainer_cannot_leave_or_be_demoted(make_team, call):
    make_team("ml", members=("bob", "carol"))
    call("carol", lambda s, ctx: teams.remove_member(s, ctx, "ml", "carol"))  # members leave
    assert roster(call, "ml") == {"alice": "maintainer", "bob": "member"}
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: teams.remove_member(s, ctx, "ml", "alice"))
    assert err.value.code == "last_maintainer"
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: teams.change_member_role(s, ctx, "ml", "alice", "member"))
    assert err.value.code == "last_maintainer"
    # with a second maintainer, the first may step down or leave
    call("alice", lambda s, ctx: teams.change_member_role(s, ctx, "ml", "bob", "maintainer"))
    call("alice", lambda s, ctx: teams.change_member_role(s, ctx, "ml", "alice", "member"))
    call("alice", lambda s, ctx: teams.remove_member(s, ctx, "ml", "alice"))
    assert roster(call, "ml", user="bob") == {"bob": "maintainer"}


def test_list_teams_search_and_mine(make_team, call):
    make_team("ml", members=("bob",))
    make_team("data-eng", maintainer="carol")
    call("carol", lambda s, ctx: teams.update(s, ctx, "data-eng", {"display_name": "Pipelines"}))
    assert team_names(call, "bob") == ["data-eng", "ml"]
    assert team_names(call, "bob", mine=True) == ["ml"]
    assert team_names(call, "bob", q="PIPE") == ["data-eng"]
    assert team_names(call, "bob", sort="-name") == ["ml", "data-eng"]


# -- JupyterHub groups -----------------------------------------------------------------------
def test_hub_groups_become_teams_that_follow_the_groups(call):
    call(ident("alice", groups=("Data Science", "ops")), lambda s, ctx: None)
    data = team(call, "alice", "data-science")
    assert (data["source"], data["display_name"]) == ("hub", "Data Science")
    assert roster(call, "ops") == {"alice": "member"}
    call(ident("bob", groups=("ops",)), lambda s, ctx: None)
    assert roster(call, "ops") == {"alice": "member", "bob": "member"}
    # alice leaves the 'ops' group and joins 'gpu' on her next identity change
    call(ident("alice", groups=("Data Science", "gpu")), lambda s, ctx: None)
    assert roster(call, "ops") == {"bob": "member"}
    assert roster(call, "gpu") == {"alice": "member"}
    assert team_names(call, "alice", mine=True) == ["data-science", "gpu"]
    # an identity source without groups leaves memberships alone
    call(ident("alice"), lambda s, ctx: None)
    assert team_names(call, "alice", mine=True) == ["data-science", "gpu"]
    call(ident("alice", groups=()), lambda s, ctx: None)
    assert team_names(call, "alice", mine=True) == []


def test_hub_team_membership_grants_project_roles(make_project, add_member, call, role_of):
    alice_hub = ident("alice", groups=("ml",))
    call(alice_hub, lambda s, ctx: None)
    slug = make_project("carol", "P")
    add_member(slug, team="ml", role="editor", by="carol")
    assert role_of(alice_hub, slug) == "editor"
    call(ident("alice", groups=()), lambda s, ctx: None)
    assert role_of(ident("alice", groups=()), slug) == "none"


def test_hub_group_named_like_a_workbench_team_does_not_break_sign_in(make_team, call):
    make_team("ml", members=("bob",))  # a team made in the workbench, not from the hub
    call(ident("bob", groups=("ml",)), lambda s, ctx: None)  # bob is also in hub group 'ml'
    assert roster(call, "ml") == {"alice": "maintainer", "bob": "member"}


def test_hub_group_does_not_join_a_workbench_team_of_the_same_name(
    make_team, make_project, add_member, call, role_of
):
    make_team("ml")
    slug = make_project("alice", "P")
    add_member(slug, team="ml", role="admin")
    eve = ident("eve", groups=("ml",))
    call(eve, lambda s, ctx: None)
    assert roster(call, "ml") == {"alice": "maintainer"}
    assert role_of(eve, slug) == "none"
