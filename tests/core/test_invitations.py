"""Invitations: admins invite a username; the invitee accepts or declines before expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from jupyter_workbench.core import invitations, members, projects
from jupyter_workbench.core.errors import BadRequest, Conflict, Forbidden, NotFound
from jupyter_workbench.db.models import Invitation, utcnow


@pytest.fixture
def slug(make_project):
    return make_project("alice", "P")


def invite(call, slug, username, role="viewer", *, by="alice", message=""):
    def fn(s, ctx):
        inv = invitations.create(s, ctx, slug, username=username, role=role, message=message)
        return inv.id

    return call(by, fn)


def respond(call, user, slug, inv_id, accept=True):
    def fn(s, ctx):
        return invitations.invitation_json(
            s, invitations.respond(s, ctx, slug, inv_id, accept=accept)
        )

    return call(user, fn)


def mine(call, user):
    def fn(s, ctx):
        page = invitations.my_invitations(s, ctx)
        return [invitations.invitation_json(s, i) for i in page.items]

    return call(user, fn)


def listing(call, user, slug, **kw):
    def fn(s, ctx):
        page = invitations.list_invitations(s, ctx, slug, **kw)
        return [(i.invitee_username, i.status) for i in page.items]

    return call(user, fn)


def expire(call, inv_id):
    def fn(s, ctx):
        s.execute(
            update(Invitation)
            .where(Invitation.id == inv_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    call("alice", fn)


def test_invite_a_user_who_never_visited_and_they_accept(slug, call, role_of):
    inv = invite(call, slug, "zed", "editor", message="join us")
    [data] = mine(call, "zed")  # zed's first visit: the invitation is waiting
    assert data["id"] == inv
    assert (data["project"], data["project_name"]) == (slug, "P")
    assert (data["role"], data["message"], data["status"]) == ("editor", "join us", "pending")
    assert data["invited_by"] == "alice"
    assert role_of("zed", slug) == "none"
    data = respond(call, "zed", slug, inv)
    assert data["status"] == "accepted" and data["responded_at"] is not None
    assert role_of("zed", slug) == "editor"
    assert mine(call, "zed") == []

    def keys(s, ctx):
        return [(members.member_key(m), m.role) for m in members.list_members(s, ctx, slug).items]

    assert call("alice", keys) == [("alice", "owner"), ("zed", "editor")]


def test_expired_invitation_cannot_be_accepted(slug, call, role_of):
    inv = invite(call, slug, "bob", "editor")

    def lifetime(s, ctx):
        i = s.get(Invitation, inv)
        return i.expires_at - i.created_at - ctx.policy.invitation_ttl

    assert abs(call("alice", lifetime)) < timedelta(seconds=5)
    expire(call, inv)
    with pytest.raises(Conflict, match=r"expired") as err:
        respond(call, "bob", slug, inv)
    assert err.value.code == "expired"
    assert role_of("bob", slug) == "none"
    assert mine(call, "bob") == []
    assert listing(call, "alice", slug) == [("bob", "expired")]
    # an expired invitation no longer blocks a new one
    again = invite(call, slug, "bob", "editor")
    respond(call, "bob", slug, again)
    assert role_of("bob", slug) == "editor"


def test_decline_grants_nothing_and_is_final(slug, call, role_of):
    inv = invite(call, slug, "bob", "editor")
    assert respond(call, "bob", slug, inv, accept=False)["status"] == "declined"
    assert role_of("bob", slug) == "none"
    with pytest.raises(Conflict) as err:
        respond(call, "bob", slug, inv)
    assert err.value.code == "declined"
    assert listing(call, "alice", slug, status="declined") == [("bob", "declined")]


def test_accepting_never_lowers_a_role(slug, call, add_member, role_of):
    inv = invite(call, slug, "bob", "viewer")
    add_member(slug, "bob", "admin")  # bob became admin meanwhile
    respond(call, "bob", slug, inv)
    assert role_of("bob", slug) == "admin"
    # ... while a higher invited role raises a lower one
    add_member(slug, "carol", "viewer")
    inv = invite(call, slug, "carol", "admin")
    respond(call, "carol", slug, inv)
    assert role_of("carol", slug) == "admin"


def test_revoke_only_pending_invitations(slug, call, add_member):
    inv = invite(call, slug, "bob")
    add_member(slug, "carol", "editor")
    with pytest.raises(Forbidden):
        call("carol", lambda s, ctx: invitations.revoke(s, ctx, slug, inv))
    status = call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, inv).status)
    assert status == "revoked"
    with pytest.raises(Conflict) as err:
        respond(call, "bob", slug, inv)
    assert err.value.code == "revoked"
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, inv))
    assert err.value.code == "revoked"
    accepted = invite(call, slug, "dave")
    respond(call, "dave", slug, accepted)
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, accepted))
    assert err.value.code == "accepted"
    with pytest.raises(NotFound, match=r"invitation 999999 not found"):
        call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, 999999))
    stale = invite(call, slug, "erin")
    expire(call, stale)
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, stale))
    assert err.value.code == "expired"


def test_a_username_in_another_case_or_unicode_form_is_refused_naming_the_user_meant(
    slug, call, count_rows
):
    call("bob", lambda s, ctx: None)  # bob has visited
    with pytest.raises(BadRequest, match=r"^username: no user is named 'Bob'; did you mean 'bob'"):
        invite(call, slug, "Bob")
    assert count_rows(Invitation) == 0
    with pytest.raises(BadRequest, match=r"^user: no user is named 'BOB'; did you mean 'bob'"):
        call("alice", lambda s, ctx: members.add(s, ctx, slug, user="BOB"))
    call("jos\u00e9", lambda s, ctx: None)  # 'josé', composed
    with pytest.raises(BadRequest, match=r"^username: no user is named 'jose\u0301'; did you"):
        invite(call, slug, "jose\u0301")  # decomposed, as some keyboards type it
    invite(call, slug, "Zoe")  # nobody like her yet: invited before her first visit


def test_one_pending_invitation_per_user_and_project(slug, make_project, call, count_rows):
    invite(call, slug, "bob")
    with pytest.raises(Conflict, match=r"^username: 'bob' already has a pending invitation"):
        invite(call, slug, "bob", "editor")
    other = make_project("alice", "Q")
    invite(call, other, "bob")  # another project is fine
    assert count_rows(Invitation) == 2


def test_inviting_someone_who_already_has_the_role_is_a_conflict(slug, call, add_member):
    add_member(slug, "bob", "editor")
    with pytest.raises(Conflict, match=r"^username: 'bob' already has the editor role"):
        invite(call, slug, "bob", "viewer")
    invite(call, slug, "bob", "admin")  # a higher role is fine


def test_direct_viewers_of_a_public_project_are_not_invited_as_viewers(
    make_project, add_member, call
):
    slug = make_project("alice", "Open", visibility="public")
    add_member(slug, "bob", "viewer")
    with pytest.raises(Conflict, match=r"^username: 'bob' already has the viewer role"):
        invite(call, slug, "bob", "viewer")


def test_public_viewers_can_be_invited_as_members(make_project, call, role_of):
    slug = make_project("alice", "Open", visibility="public")
    call("bob", lambda s, ctx: None)
    inv = invite(call, slug, "bob", "editor")
    respond(call, "bob", slug, inv)
    assert role_of("bob", slug) == "editor"


def test_who_may_invite_and_with_which_role(slug, call, add_member):
    add_member(slug, "bob", "admin")
    add_member(slug, "carol", "editor")
    invite(call, slug, "dave", "admin", by="bob")
    with pytest.raises(BadRequest, match=r"^role: "):
        invite(call, slug, "erin", "owner")
    with pytest.raises(Forbidden):
        invite(call, slug, "erin", "viewer", by="carol")
    with pytest.raises(NotFound):
        invite(call, slug, "erin", "viewer", by="frank")
    with pytest.raises(BadRequest, match=r"^username: must not be empty"):
        invite(call, slug, "  ")
    with pytest.raises(Forbidden):
        listing(call, "carol", slug)


def test_only_the_invitee_can_respond(slug, make_project, call, add_member):
    inv = invite(call, slug, "bob")
    add_member(slug, "carol", "viewer")
    with pytest.raises(NotFound, match=rf"invitation {inv} not found"):
        respond(call, "dave", slug, inv)  # a stranger
    with pytest.raises(Forbidden, match=r"addressed to someone else"):
        respond(call, "carol", slug, inv)  # a viewer of the project
    with pytest.raises(Forbidden, match=r"addressed to someone else"):
        respond(call, "alice", slug, inv)  # the project's owner
    with pytest.raises(NotFound):
        respond(call, "bob", "no-such-project", inv)
    other = invite(call, make_project("alice", "Q"), "bob")
    with pytest.raises(NotFound):  # the id of an invitation to another project
        respond(call, "bob", slug, other)
    assert listing(call, "alice", slug) == [("bob", "pending")]


def test_my_invitations_lists_only_my_pending_ones(slug, make_project, call):
    other = make_project("carol", "Q")
    a = invite(call, slug, "bob")
    b = invite(call, other, "bob", by="carol")
    invite(call, slug, "dave")
    declined = invite(call, make_project("alice", "R"), "bob")
    respond(call, "bob", "r", declined, accept=False)
    assert sorted(i["id"] for i in mine(call, "bob")) == sorted([a, b])
    assert [i["username"] for i in mine(call, "dave")] == ["dave"]
    assert mine(call, "erin") == []


def test_invitations_of_a_deleted_project_are_not_listed(slug, call):
    inv = invite(call, slug, "bob")
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug))
    with pytest.raises(NotFound):
        respond(call, "bob", slug, inv)
    assert mine(call, "bob") == []


def test_listing_filters_by_status(slug, call):
    invite(call, slug, "bob")
    dave = invite(call, slug, "dave")
    call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, dave))
    assert listing(call, "alice", slug, status="pending") == [("bob", "pending")]
    assert listing(call, "alice", slug, status="revoked") == [("dave", "revoked")]
    with pytest.raises(BadRequest, match=r"^status: "):
        listing(call, "alice", slug, status="lost")


def test_an_invitation_from_an_admin_since_demoted_or_removed_cannot_be_accepted(
    slug, call, add_member, role_of
):
    add_member(slug, "bob", "admin")
    to_admin = invite(call, slug, "zed", "admin", by="bob")
    to_view = invite(call, slug, "yan", "viewer", by="bob")
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "bob", "editor"))
    with pytest.raises(Conflict, match=r"^invitation \d+ was sent by 'bob', who may no longer "
                       r"grant the admin role on project ") as refused:  # fmt: skip
        respond(call, "zed", slug, to_admin)
    assert refused.value.code == "inviter_lost_role"
    assert role_of("zed", slug) == "none"
    assert [i["status"] for i in mine(call, "zed")] == ["pending"]  # nothing written
    call("alice", lambda s, ctx: members.remove(s, ctx, slug, "bob"))
    with pytest.raises(Conflict, match="who may no longer grant the viewer role"):
        respond(call, "yan", slug, to_view)
    assert respond(call, "yan", slug, to_view, accept=False)["status"] == "declined"
    # an admin's invitation stands while they are one (here: bob back as admin)
    add_member(slug, "bob", "admin")
    assert respond(call, "zed", slug, to_admin)["status"] == "accepted"
    assert role_of("zed", slug) == "admin"


def test_an_expiry_is_audited_once_by_the_system_wherever_it_is_found(slug, call, audit_log):
    listed, accepted, declined, revoked = (
        invite(call, slug, name) for name in ("bob", "carol", "dave", "erin")
    )
    for inv in (listed, accepted, declined, revoked):
        expire(call, inv)

    def expiries():
        return [
            (e["actor"], e["object_id"], e["project"], e["summary"]["username"])
            for e in audit_log(action="invitation.expire")
        ]

    assert mine(call, "bob") == []  # found by the invitee's list ...
    assert mine(call, "bob") == []  # (read again: not recorded again)
    assert expiries() == [("[system]", str(listed), slug, "bob")]
    # ... or by an answer, refused as expired: the expiry is kept and recorded all the same
    for user, inv, answer in (("carol", accepted, True), ("dave", declined, False)):
        for _ in range(2):
            with pytest.raises(Conflict) as err:
                respond(call, user, slug, inv, accept=answer)
            assert err.value.code == "expired"
    with pytest.raises(Conflict, match="expired"):
        call("alice", lambda s, ctx: invitations.revoke(s, ctx, slug, revoked))
    assert listing(call, "alice", slug, status="expired") == [
        ("erin", "expired"), ("dave", "expired"), ("carol", "expired"), ("bob", "expired")
    ]  # fmt: skip
    assert sorted(expiries()) == sorted(
        ("[system]", str(inv), slug, name)
        for inv, name in ((listed, "bob"), (accepted, "carol"), (declined, "dave"),
                          (revoked, "erin"))
    )  # fmt: skip
    [event] = audit_log(action="invitation.expire", object_id=str(listed))
    assert event["summary"]["role"] == "viewer" and event["summary"]["expires_at"]


def test_my_invitations_skip_roles_held_directly_and_mark_those_that_cannot_be_accepted(
    slug, call, add_member, make_team
):
    def marked(user):
        def fn(s, ctx):
            page = invitations.my_invitations(s, ctx)
            return [
                (i.role, d["acceptable"], d["reason"])
                for i, d in ((i, invitations.my_invitation_json(s, i)) for i in page.items)
            ]

        return call(user, fn)

    viewer = invite(call, slug, "bob", "viewer")
    add_member(slug, "bob", "editor")  # holds more than it offers, directly: not listed
    assert marked("bob") == []
    respond(call, "bob", slug, viewer)  # (accepting it changes nothing, as before)
    # a role held only through a team is listed: accepting makes it the user's own
    invite(call, slug, "carol", "editor")
    make_team("ml", maintainer="alice", members=("carol",))
    add_member(slug, team="ml", role="editor")
    assert marked("carol") == [("editor", True, None)]
    # one from an inviter who lost the role is listed (to decline) but marked as such
    add_member(slug, "dave", "admin")
    invite(call, slug, "erin", "admin", by="dave")
    call("alice", lambda s, ctx: members.change_role(s, ctx, slug, "dave", "editor"))
    [(role, acceptable, reason)] = marked("erin")
    assert (role, acceptable) == ("admin", False)
    assert reason.startswith("invitation ") and "sent by 'dave', who may no longer grant" in reason
