"""Access requests: users who can see a project ask for a higher role; admins decide."""

from __future__ import annotations

import pytest

from jupyter_workbench.core import access_requests, members, projects
from jupyter_workbench.core.errors import BadRequest, Conflict, Forbidden, NotFound
from jupyter_workbench.db.models import AccessRequest


@pytest.fixture
def public(make_project):
    return make_project("alice", "Open", visibility="public")


def ask(call, user, slug, role="editor", message=""):
    return call(
        user,
        lambda s, ctx: access_requests.create(s, ctx, slug, role=role, message=message).id,
    )


def decide(call, user, slug, req, approve=True, role=None):
    def fn(s, ctx):
        request = access_requests.decide(s, ctx, slug, req, approve=approve, role=role)
        return access_requests.request_json(s, request)

    return call(user, fn)


def view(call, user, slug, req):
    return call(
        user,
        lambda s, ctx: access_requests.request_json(s, access_requests.get(s, ctx, slug, req)),
    )


def listing(call, user, slug, **kw):
    def fn(s, ctx):
        page = access_requests.list_requests(s, ctx, slug, **kw)
        return [(r.user.username, r.role, r.status) for r in page.items]

    return call(user, fn)


def test_viewer_of_a_public_project_asks_and_gets_approved(public, call, role_of):
    req = ask(call, "bob", public, "editor", message="I can help")
    assert listing(call, "alice", public) == [("bob", "editor", "pending")]
    data = view(call, "bob", public, req)  # the requester sees their request
    assert (data["status"], data["message"], data["decided_by"]) == ("pending", "I can help", None)
    data = decide(call, "alice", public, req)
    assert (data["status"], data["granted_role"], data["decided_by"]) == (
        "approved",
        "editor",
        "alice",
    )
    assert data["decided_at"] is not None
    assert role_of("bob", public) == "editor"


def test_approver_may_grant_a_different_role(public, call, role_of, add_member):
    add_member(public, "carol", "admin")
    req = ask(call, "bob", public, "admin")
    data = decide(call, "carol", public, req, role="editor")
    assert data["granted_role"] == "editor"
    assert role_of("bob", public) == "editor"


def test_approving_with_the_owner_role_is_refused(public, call, role_of):
    req = ask(call, "bob", public, "admin")
    with pytest.raises(BadRequest, match=r"^role: "):
        decide(call, "alice", public, req, role="owner")
    assert listing(call, "alice", public, status="pending") == [("bob", "admin", "pending")]
    assert role_of("bob", public) == "viewer"


def test_deny_grants_nothing(public, call, role_of):
    req = ask(call, "bob", public)
    with pytest.raises(BadRequest, match=r"^role: only an approval grants a role"):
        decide(call, "alice", public, req, approve=False, role="viewer")
    assert decide(call, "alice", public, req, approve=False)["status"] == "denied"
    assert role_of("bob", public) == "viewer"
    with pytest.raises(Conflict) as err:
        decide(call, "alice", public, req)
    assert err.value.code == "denied"
    again = ask(call, "bob", public)  # a new request after a denial is fine
    decide(call, "alice", public, again)
    with pytest.raises(Conflict) as err:
        decide(call, "alice", public, again, approve=False)
    assert err.value.code == "approved"


def test_members_of_a_private_project_ask_for_more(make_project, add_member, call, role_of):
    slug = make_project("alice", "Closed")
    add_member(slug, "bob", "viewer")
    req = ask(call, "bob", slug, "admin")
    decide(call, "alice", slug, req)
    assert role_of("bob", slug) == "admin"


def test_strangers_cannot_ask_for_access_to_a_private_project(make_project, call, count_rows):
    slug = make_project("alice", "Closed")
    with pytest.raises(NotFound, match=r"project 'closed' not found"):
        ask(call, "bob", slug)
    with pytest.raises(NotFound):
        ask(call, "bob", "no-such-project")
    assert count_rows(AccessRequest) == 0


def test_asking_for_a_role_you_already_have_or_bad_input_is_refused(public, add_member, call):
    with pytest.raises(Conflict, match=r"^role: you already have the viewer role"):
        ask(call, "bob", public, "viewer")
    add_member(public, "carol", "editor")
    with pytest.raises(Conflict, match=r"already have the editor role"):
        ask(call, "carol", public, "editor")
    with pytest.raises(Conflict, match=r"already have the owner role"):
        ask(call, "alice", public, "admin")
    with pytest.raises(BadRequest, match=r"^role: "):
        ask(call, "bob", public, "owner")
    with pytest.raises(BadRequest, match=r"^message: .*at most 2000"):
        ask(call, "bob", public, message="x" * 2001)


def test_one_pending_request_per_user(public, call):
    ask(call, "bob", public, "editor")
    with pytest.raises(Conflict, match=r"already have a pending access request"):
        ask(call, "bob", public, "admin")
    ask(call, "carol", public, "editor")  # other users are independent
    assert len(listing(call, "alice", public, status="pending")) == 2


def test_only_the_requester_withdraws(public, call, add_member, make_project):
    req = ask(call, "bob", public)
    with pytest.raises(Forbidden):
        call("alice", lambda s, ctx: access_requests.withdraw(s, ctx, public, req))
    with pytest.raises(Forbidden):
        call("carol", lambda s, ctx: access_requests.withdraw(s, ctx, public, req))
    status = call("bob", lambda s, ctx: access_requests.withdraw(s, ctx, public, req).status)
    assert status == "withdrawn"
    with pytest.raises(Conflict) as err:
        call("bob", lambda s, ctx: access_requests.withdraw(s, ctx, public, req))
    assert err.value.code == "withdrawn"
    with pytest.raises(Conflict):
        decide(call, "alice", public, req)
    other = make_project("alice", "Other", visibility="public")
    with pytest.raises(NotFound, match=rf"access request {req} not found"):
        call("bob", lambda s, ctx: access_requests.withdraw(s, ctx, other, req))


def test_only_admins_list_and_decide(public, call, add_member):
    req = ask(call, "bob", public)
    add_member(public, "carol", "editor")
    with pytest.raises(Forbidden):
        decide(call, "carol", public, req)
    with pytest.raises(Forbidden):
        listing(call, "carol", public)
    with pytest.raises(Forbidden, match=r"belongs to someone else"):
        view(call, "carol", public, req)
    add_member(public, "dave", "admin")
    assert view(call, "dave", public, req)["username"] == "bob"
    assert decide(call, "dave", public, req)["status"] == "approved"


def test_listing_filters_by_status(public, call):
    bob = ask(call, "bob", public)
    ask(call, "carol", public)
    decide(call, "alice", public, bob, approve=False)
    assert listing(call, "alice", public, status="denied") == [("bob", "editor", "denied")]
    assert listing(call, "alice", public, status="pending") == [("carol", "editor", "pending")]
    with pytest.raises(BadRequest, match=r"^status: "):
        listing(call, "alice", public, status="lost")


def test_a_requester_still_sees_and_withdraws_their_request_once_the_project_turns_private(
    public, call
):
    req = ask(call, "bob", public)
    call("alice", lambda s, ctx: projects.update(s, ctx, public, {"visibility": "private"}))
    assert view(call, "bob", public, req)["status"] == "pending"
    # anyone else, and bob for a request number not his, learn nothing of the project
    with pytest.raises(NotFound, match=rf"project '{public}' not found"):
        view(call, "carol", public, req)
    with pytest.raises(NotFound, match=rf"project '{public}' not found"):
        view(call, "bob", public, req + 1)
    with pytest.raises(NotFound, match=rf"project '{public}' not found"):
        call("carol", lambda s, ctx: access_requests.withdraw(s, ctx, public, req))
    status = call("bob", lambda s, ctx: access_requests.withdraw(s, ctx, public, req).status)
    assert status == "withdrawn"
    assert listing(call, "alice", public, status="pending") == []


def test_approving_someone_who_meanwhile_holds_a_higher_role_never_demotes_them(
    public, call, add_member, make_team, role_of, audit_log
):
    req = ask(call, "bob", public, role="editor")
    add_member(public, "bob", "admin")  # promoted another way meanwhile
    data = decide(call, "alice", public, req)
    assert (data["status"], data["granted_role"]) == ("approved", "admin")  # what bob holds
    assert role_of("bob", public) == "admin"
    [event] = audit_log(action="access_request.approve")
    assert event["summary"] == {
        "requested": "editor", "user": "bob", "granted": "admin", "already_held": True
    }  # fmt: skip
    # held only through a team: the approved role becomes carol's own, so that removing
    # the team from the project does not take away the access just approved
    make_team("ml", maintainer="alice", members=("carol",))
    req = ask(call, "carol", public, role="editor")
    add_member(public, team="ml", role="admin")
    data = decide(call, "alice", public, req, role="editor")
    assert data["granted_role"] == "editor"

    def direct(s, ctx):
        return {members.member_key(m): m.role for m in members.list_members(s, ctx, public).items}

    assert call("alice", direct)["carol"] == "editor"
    assert role_of("carol", public) == "admin"  # the team's, while it lasts
    # a lower role held is raised as before, and recorded as granted
    add_member(public, "dave", "viewer")
    req = ask(call, "dave", public, role="editor")
    data = decide(call, "alice", public, req)
    assert data["granted_role"] == "editor" and role_of("dave", public) == "editor"
