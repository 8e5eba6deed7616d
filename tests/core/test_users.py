"""Users: created on first use, refreshed from the identity source, listed and looked up."""

from __future__ import annotations

import pytest

from jupyter_workbench.core import users
from jupyter_workbench.core.context import Identity
from jupyter_workbench.core.errors import BadRequest, NotFound
from jupyter_workbench.db.models import User
from tests.conftest import ident


def me(call, identity):
    return call(identity, lambda s, ctx: users.user_json(ctx.user, private=True))


def usernames(call, **kw):
    return call("alice", lambda s, ctx: [u.username for u in users.list_users(s, ctx, **kw).items])


def test_first_call_creates_the_user_from_the_identity(call, count_rows):
    data = me(call, ident("alice", email="alice@example.org", color="#f00"))
    assert data["username"] == "alice"
    assert data["display_name"] == "Alice"
    assert (data["email"], data["color"], data["is_admin"]) == ("alice@example.org", "#f00", False)
    assert data["created_at"] and data["last_seen_at"]
    me(call, "alice")
    assert count_rows(User) == 1


def test_profile_and_admin_flag_follow_the_identity_source(call):
    me(call, ident("alice", email="old@example.org"))
    data = me(call, Identity(username="alice", display_name="Alice A.", email="new@example.org"))
    assert (data["display_name"], data["email"]) == ("Alice A.", "new@example.org")
    assert me(call, Identity(username="alice"))["display_name"] == "alice"  # falls back
    assert me(call, ident("alice", is_admin=True))["is_admin"] is True
    assert me(call, ident("alice"))["is_admin"] is False


def test_public_profile_and_unknown_users(call):
    call(ident("bob", email="bob@example.org"), lambda s, ctx: None)
    data = call("alice", lambda s, ctx: users.user_json(users.get_user(s, "bob")))
    assert data["username"] == "bob"
    assert "email" not in data and "last_seen_at" not in data
    with pytest.raises(NotFound, match=r"user 'ghost' not found"):
        call("alice", lambda s, ctx: users.get_user(s, "ghost"))
    with pytest.raises(BadRequest, match=r"^invitee: no user named 'ghost'") as err:
        call("alice", lambda s, ctx: users.find_user(s, "ghost", "invitee"))
    assert err.value.code == "unknown_user"


def test_username_length_is_checked(service):
    for name in ("", "x" * 256):
        with (
            pytest.raises(BadRequest, match=r"^username: must be 1-255 characters"),
            service.db.transaction(write=True) as s,
        ):
            users.ensure_user(s, Identity(username=name))


def test_list_users_search_filter_and_sort(call):
    call("alice", lambda s, ctx: None)
    call(ident("bob", is_admin=True), lambda s, ctx: None)
    call(Identity(username="carol", display_name="Carol Bobbins"), lambda s, ctx: None)
    assert usernames(call) == ["alice", "bob", "carol"]
    assert usernames(call, q="BOB") == ["bob", "carol"]  # username or display name
    assert usernames(call, admins=True) == ["bob"]
    assert usernames(call, admins=False) == ["alice", "carol"]
    assert usernames(call, sort="-username") == ["carol", "bob", "alice"]
    assert usernames(call, sort="created") == ["alice", "bob", "carol"]
