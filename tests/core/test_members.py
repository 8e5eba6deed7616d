"""Project members: users and teams with roles; who may add, change, remove; leaving."""

from __future__ import annotations

import pytest

from jupyter_workbench.core import access_requests, invitations, members
from jupyter_workbench.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from jupyter_workbench.db.models import ProjectMember


def member_list(call, user, slug, **kw):
    def fn(s, ctx):
        return [
            (m["member"], m["role"])
            for m in map(members.member_json, members.list_members(s, ctx, slug, **kw).items)
        ]

    return call(user, fn)


def member(call, user, slug, key):
    return call(user, lambda s, ctx: members.member_json(members.get(s, ctx, slug, key)))


@pytest.fixture
def slug(make_project):
    return make_project("alice", "P")


def test_owner_adds_users_and_teams_with_roles(slug, add_member, make_team, call, role_of):
    add_member(slug, "bob", "editor")
    make_team("ml", maintainer="carol", members=("dave",))
    add_member(slug, team="ml", role="viewer")
    assert member_list(call, "bob", slug) == [
        ("alice", "owner"),
        ("bob", "editor"),
        ("team:ml", "viewer"),
    ]
    data = member(call, "alice", slug, "team:ml")
    assert data["kind"] == "team" and data["team"]["name"] == "ml"
    data = member(call, "alice", slug, "bob")
    assert data["kind"] == "user" and data["user"]["username"] == "bob"
    assert role_of("dave", slug) == "viewer"


def test_list_members_filters_by_role_and_kind(slug, add_member, make_team, call):
    add_member(slug, "bob", "editor")
    add_member(slug, "carol", "viewer")
    make_team("ml", maintainer="alice")
    add_member(slug, team="ml", role="editor")
    assert member_list(call, "alice", slug, role="editor") == [
        ("bob", "editor"),
        ("team:ml", "editor"),
    ]
    assert member_list(call, "alice", slug, role="owner") == [("alice", "owner")]
    assert member_list(call, "alice", slug, kind="team") == [("team:ml", "editor")]
    assert [k for k, _ in member_list(call, "alice", slug, kind="user")] == [
        "alice",
        "bob",
        "carol",
    ]
    with pytest.raises(BadRequest, match=r"^kind: "):
        member_list(call, "alice", slug, kind="robot")
    with pytest.raises(BadRequest, match=r"^role: "):
        member_list(call, "alice", slug, role="boss")


def test_members_are_listed_to_viewers_but_not_to_strangers(slug, add_member, call):
    add_member(slug, "bob", "viewer")
    assert member_list(call, "bob", slug) == [("alice", "owner"), ("bob", "viewer")]
    with pytest.raises(NotFound):
        member_list(call, "carol", slug)


def test_admins_grant_up_to_admin_and_nobody_grants_owner(slug, add_member, call):
    add_member(slug, "bob", "admin")
    add_member(slug, "carol", "admin", by="bob")
    with pytest.raises(BadRequest, match=r"^role: "):
        add_member(slug, "dave", "owner", by="bob")
    with pytest.raises(BadRequest, match=r"^role: "):
        add_member(slug, "dave", "owner", by="alice")
    assert ("dave", "owner") not in member_list(call, "alice", slug)


def test_only_admins_add_members(slug, add_member):
    add_member(slug, "bob", "viewer")
    add_member(slug, "carol", "editor")
    for user in ("bob", "carol"):
        with pytest.raises(Forbidden, match=r"members.manage needs the admin role"):
            add_member(slug, "dave", "viewer", by=user)
    with pytest.raises(NotFound):  # a stranger to the private project
        add_member(slug, "dave", "viewer", by="erin")


def test_add_refuses_duplicates_unknown_names_and_bad_input(
    slug, add_member, make_team, call, count_rows
):
    add_member(slug, "bob", "viewer")
    with pytest.raises(Conflict, match=r"'bob' is already a member"):
        add_member(slug, "bob", "editor")
    make_team("ml", maintainer="alice")
    add_member(slug, team="ml", role="viewer")
    rows = count_rows(ProjectMember)
    with pytest.raises(Conflict, match=r"'team:ml' is already a member"):
        add_member(slug, team="ml", role="editor")
    with pytest.raises(Conflict, match=r"'alice' is already a member"):
        call("alice", lambda s, ctx: members.add(s, ctx, slug, user="alice"))
    with pytest.raises(BadRequest, match=r"^user: no user named 'ghost'") as err:
        call("alice", lambda s, ctx: members.add(s, ctx, slug, user="ghost"))
    assert err.value.code == "unknown_user"
    with pytest.raises(BadRequest, match=r"^team: no team named 'ghosts'") as err:
        call("alice", lambda s, ctx: members.add(s, ctx, slug, team="ghosts"))
    assert err.value.code == "unknown_team"
    with pytest.raises(BadRequest, match=r"exactly one of 'user' or 'team'"):
        call("alice", lambda s, ctx: members.add(s, ctx, slug))
    with pytest.raises(BadRequest, match=r"exactly one of 'user' or 'team'"):
        call("alice", lambda s, ctx: members.add(s, ctx, slug, user="bob", team="ml"))
    with pytest.raises(BadRequest, match=r"^role: must be one of viewer, editor, admin"):
        call("alice", lambda s, ctx: members.add(s, ctx, slug, user="bob", role="superuser"))
    assert count_rows(ProjectMember) == rows


def test_change_role(slug, add_member, make_team, call, role_of):
    add_member(slug, "bob", "viewer")
    make_team("ml", maintainer="carol")
    add_member(slug, team="ml", role="viewer")
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "admin"))
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "team:ml", "editor"))
    assert role_of("bob", slug) == "admin"
    assert role_of("carol", slug) == "editor"
    with pytest.raises(BadRequest, match=r"^role: "):
        call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "owner"))
    with pytest.raises(NotFound, match=r"'dave' is not a member"):
        call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "dave", "viewer"))


def test_the_owners_role_never_changes(slug, add_member, call):
    add_member(slug, "bob", "admin")
    for by in ("alice", "bob"):
        with pytest.raises(Conflict, match=r"owner's role cannot change") as err:
            call(by, lambda s, ctx: members.change_role(s, ctx, slug, "alice", "admin"))
        assert err.value.code == "owner"


def test_editors_cannot_change_roles_or_remove_members(slug, add_member, call):
    add_member(slug, "bob", "editor")
    add_member(slug, "carol", "viewer")
    with pytest.raises(Forbidden):
        call("bob", lambda s, ctx: members.change_role(s, ctx, slug, "carol", "editor"))
    with pytest.raises(Forbidden):
        call("bob", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "admin"))
    with pytest.raises(Forbidden):
        call("bob", lambda s, ctx: members.remove(s, ctx, slug, "carol"))


def test_admins_manage_other_admins_but_not_the_owner(slug, add_member, call, role_of):
    """Admins act on every member up to admin (the rule in members.py); the owner is off limits."""
    add_member(slug, "bob", "admin")
    add_member(slug, "carol", "admin")
    call("bob", lambda s, ctx: members.change_role(s, ctx, slug, "carol", "editor"))
    assert role_of("carol", slug) == "editor"
    call("bob", lambda s, ctx: members.remove(s, ctx, slug, "carol"))
    assert role_of("carol", slug) == "none"
    with pytest.raises(Conflict, match=r"owner cannot be removed") as err:
        call("bob", lambda s, ctx: members.remove(s, ctx, slug, "alice"))
    assert err.value.code == "owner"


def test_change_role_honours_if_match(slug, add_member, call):
    add_member(slug, "bob", "viewer")
    tag = member(call, "alice", slug, "bob")["etag"]
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "editor", if_match=tag))
    with pytest.raises(PreconditionFailed):
        call(
            "alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "admin", if_match=tag)
        )
    assert member(call, "alice", slug, "bob")["role"] == "editor"


def test_setting_the_same_role_changes_nothing(slug, add_member, call, audit_log):
    add_member(slug, "bob", "editor")
    tag = member(call, "alice", slug, "bob")["etag"]
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "editor"))
    assert member(call, "alice", slug, "bob")["etag"] == tag
    assert [e["action"] for e in audit_log()] == ["project.create", "member.add"]


def test_removed_member_loses_access(slug, add_member, make_team, call, role_of):
    add_member(slug, "bob", "editor")
    make_team("ml", maintainer="carol")
    add_member(slug, team="ml", role="viewer")
    call("alice", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    call("alice", lambda s, ctx: members.remove(s, ctx, slug, "team:ml"))
    assert role_of("bob", slug) == "none"
    assert role_of("carol", slug) == "none"
    assert member_list(call, "alice", slug) == [("alice", "owner")]
    with pytest.raises(NotFound):
        call("alice", lambda s, ctx: members.remove(s, ctx, slug, "bob"))


def test_a_removed_member_cannot_come_back_through_a_pending_invitation_or_request(
    slug, add_member, call, role_of, audit_log
):
    add_member(slug, "bob", "editor")
    request = call("bob", lambda s, ctx: access_requests.create(s, ctx, slug, role="admin").id)
    invitation = call(
        "alice",
        lambda s, ctx: invitations.create(s, ctx, slug, username="bob", role="admin").id,
    )
    call("alice", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    with pytest.raises(Conflict, match=r"is revoked, not pending"):
        call("bob", lambda s, ctx: invitations.respond(s, ctx, slug, invitation, accept=True))
    with pytest.raises(Conflict, match=r"is denied, not pending"):  # another admin's click
        call("alice", lambda s, ctx: access_requests.decide(s, ctx, slug, request, approve=True))
    assert role_of("bob", slug) == "none"
    # one event each; only the member's removal is for every member's eyes (activity feed)
    removed = {"reason": "'bob' was removed from the project"}
    assert [(e["action"], e["object_id"], e["summary"]) for e in audit_log()[-3:]] == [
        ("member.remove", "bob", {"role": "editor"}),
        ("invitation.revoke", str(invitation), removed),
        ("access_request.deny", str(request), {"user": "bob", **removed}),
    ]


def test_a_demoted_member_cannot_climb_back_through_a_pending_invitation_or_request(
    slug, add_member, call, role_of, audit_log
):
    add_member(slug, "bob", "editor")
    request = call("bob", lambda s, ctx: access_requests.create(s, ctx, slug, role="admin").id)
    invitation = call(
        "alice",
        lambda s, ctx: invitations.create(s, ctx, slug, username="bob", role="admin").id,
    )
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "viewer"))
    with pytest.raises(Conflict, match=r"is revoked, not pending"):
        call("bob", lambda s, ctx: invitations.respond(s, ctx, slug, invitation, accept=True))
    with pytest.raises(Conflict, match=r"is denied, not pending"):
        call("alice", lambda s, ctx: access_requests.decide(s, ctx, slug, request, approve=True))
    assert role_of("bob", slug) == "viewer"
    demoted = {"reason": "'bob' was given the viewer role"}
    assert [(e["action"], e["summary"]) for e in audit_log()[-3:]] == [
        ("member.update", {"role": {"from": "editor", "to": "viewer"}}),
        ("invitation.revoke", demoted),
        ("access_request.deny", {"user": "bob", **demoted}),
    ]
    # an invitation within the role he keeps is left alone
    again = call(
        "alice",
        lambda s, ctx: invitations.create(s, ctx, slug, username="bob", role="editor").id,
    )
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "admin"))
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "editor"))
    accepted = call("bob", lambda s, ctx: invitations.respond(s, ctx, slug, again, accept=True))
    assert accepted.status == "accepted" and role_of("bob", slug) == "editor"


def test_members_can_leave_but_the_owner_cannot(slug, add_member, call, role_of, audit_log):
    add_member(slug, "bob", "viewer")
    call("bob", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    assert role_of("bob", slug) == "none"
    assert audit_log()[-1]["action"] == "member.leave"
    with pytest.raises(Conflict, match=r"owner cannot be removed"):
        call("alice", lambda s, ctx: members.remove(s, ctx, slug, "alice"))
    assert role_of("alice", slug) == "owner"


def test_leaving_a_project_you_belong_to_through_a_team_says_how(
    slug, make_team, add_member, call, role_of
):
    make_team("ml", maintainer="carol", members=("bob",))
    add_member(slug, team="ml", role="editor")
    with pytest.raises(Conflict, match=r"only through team 'ml' \(editor\): leave the team"):
        call("bob", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    assert role_of("bob", slug) == "editor"


def test_leaving_a_project_you_are_not_a_member_of(make_project, call):
    public = make_project("alice", "Open", visibility="public")
    with pytest.raises(NotFound, match=r"'bob' is not a member"):
        call("bob", lambda s, ctx: members.remove(s, ctx, public, "bob"))
    private = make_project("alice", "Closed")
    with pytest.raises(NotFound, match=r"project 'closed' not found"):
        call("bob", lambda s, ctx: members.remove(s, ctx, private, "bob"))


def test_removing_a_user_says_which_role_their_teams_still_give(
    slug, add_member, make_team, call, role_of
):
    add_member(slug, "bob", "admin")
    make_team("ml", maintainer="carol", members=("bob",))
    make_team("ops", maintainer="carol", members=("bob",))
    add_member(slug, team="ml", role="editor")
    add_member(slug, team="ops", role="viewer")
    removed = call("alice", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    assert removed == {
        "member": "bob",
        "removed_role": "admin",
        "remaining_role": "editor",
        "remaining_teams": [{"team": "ml", "role": "editor"}, {"team": "ops", "role": "viewer"}],
    }
    assert role_of("bob", slug) == "editor"  # ... as the answer said
    # nothing left: said so too (and likewise for a team removed, or a member who leaves)
    add_member(slug, "dave", "viewer")
    assert call("alice", lambda s, ctx: members.remove(s, ctx, slug, "dave")) == {
        "member": "dave", "removed_role": "viewer", "remaining_role": None, "remaining_teams": []
    }  # fmt: skip
    assert call("alice", lambda s, ctx: members.remove(s, ctx, slug, "team:ops")) == {
        "member": "team:ops",
        "removed_role": "viewer",
        "remaining_role": None,
        "remaining_teams": [],
    }
    add_member(slug, "bob", "viewer")
    left = call("bob", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    assert (left["remaining_role"], left["remaining_teams"]) == (
        "editor",
        [{"team": "ml", "role": "editor"}],
    )
